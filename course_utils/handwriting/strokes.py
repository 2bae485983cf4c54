"""The stroke format of the lecture: rows (dx, dy, end_of_stroke), pen offsets from the previous point.

    x_t = (dx_t, dy_t, e_t),   e_t = 1 on the last point of a stroke (the pen lifts after it)

Row 0 holds the offset of the first point from itself, (0, 0), so that the absolute points are
the cumulative sum of the offsets. Arrays are NumPy float32, shape (T, 3); y points up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# The input before the first point: as if the pen had just lifted. Networks read it first, so that the
# first real point is predicted too.
PEN_UP = (0.0, 0.0, 1.0)


def _check_offsets(offsets) -> np.ndarray:
    offsets = np.asarray(offsets, dtype=np.float32)
    if offsets.ndim != 2 or offsets.shape[1] != 3:
        raise ValueError(f"strokes must have shape (T, 3) = (dx, dy, end_of_stroke) rows, got {offsets.shape}.")
    if len(offsets) and not np.isin(offsets[:, 2], (0.0, 1.0)).all():
        raise ValueError("the end_of_stroke column must hold only 0 and 1.")
    return offsets


def from_stroke_list(strokes: list) -> np.ndarray:
    """A list of strokes, each (n_i, 2) absolute points, to (T, 3) offsets with end-of-stroke flags."""
    strokes = [np.asarray(s, dtype=np.float32).reshape(-1, 2) for s in strokes]
    strokes = [s for s in strokes if len(s)]
    if not strokes:
        raise ValueError("there are no points: every stroke is empty.")
    points = np.concatenate(strokes)
    eos = np.zeros(len(points), dtype=np.float32)
    eos[np.cumsum([len(s) for s in strokes]) - 1] = 1.0
    offsets = np.zeros((len(points), 3), dtype=np.float32)
    offsets[1:, :2] = np.diff(points, axis=0)
    offsets[:, 2] = eos
    return offsets


def to_points(offsets) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) offsets to absolute points (T, 2), starting at the origin, and the end flags (T,)."""
    offsets = _check_offsets(offsets)
    return np.cumsum(offsets[:, :2], axis=0), offsets[:, 2]


def to_stroke_list(offsets) -> list[np.ndarray]:
    """(T, 3) offsets to a list of strokes of absolute points; a last stroke without its flag is kept."""
    points, eos = to_points(offsets)
    ends = np.flatnonzero(eos) + 1
    return [s for s in np.split(points, ends) if len(s)]


def clip_jumps(offsets, max_jump: float) -> np.ndarray:
    """Limit each offset's length to `max_jump`: removes the outlier jumps of a noisy pen tablet."""
    offsets = _check_offsets(offsets).copy()
    length = np.linalg.norm(offsets[:, :2], axis=1, keepdims=True)
    offsets[:, :2] *= np.minimum(1.0, max_jump / np.maximum(length, 1e-12))
    return offsets


@dataclass
class OffsetScale:
    """Scale of the pen offsets: the network sees (dx / std_x, dy / std_y); `invert` draws in original units."""

    std_x: float = 1.0
    std_y: float = 1.0

    @classmethod
    def fit(cls, sequences) -> "OffsetScale":
        """The standard deviation of dx and dy over all points of all sequences (means are kept)."""
        rows = np.concatenate([_check_offsets(s) for s in sequences])
        std = rows[:, :2].std(axis=0)
        if not np.all(std > 0):
            raise ValueError("the offsets do not vary: cannot scale sequences with no movement.")
        return cls(float(std[0]), float(std[1]))

    def apply(self, offsets) -> np.ndarray:
        out = _check_offsets(offsets).copy()
        out[:, 0] /= self.std_x
        out[:, 1] /= self.std_y
        return out

    def invert(self, offsets) -> np.ndarray:
        out = _check_offsets(offsets).copy()
        out[:, 0] *= self.std_x
        out[:, 1] *= self.std_y
        return out


def draw(offsets, ax=None, *, color="black", linewidth: float = 1.5, title: str | None = None):
    """Draw (T, 3) offsets as pen strokes (the pen lifts after each end-of-stroke point)."""
    import matplotlib.pyplot as plt

    if ax is None:
        points, _ = to_points(offsets)
        width = np.ptp(points[:, 0]) if len(points) else 1.0
        height = np.ptp(points[:, 1]) if len(points) else 1.0
        _, ax = plt.subplots(figsize=(min(14, 1 + 10 * width / max(height, 1e-6) / 4), 1.8))
    for stroke in to_stroke_list(offsets):
        ax.plot(stroke[:, 0], stroke[:, 1], color=color, linewidth=linewidth, solid_capstyle="round")
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return ax


def to_svg(offsets, path=None, *, height: float = 80.0, stroke_width: float = 2.0, margin: float = 6.0) -> str:
    """The line as an SVG document (one path per stroke, `height` pixels tall); written to `path` if given."""
    strokes = to_stroke_list(offsets)
    if not strokes:
        raise ValueError("there are no points to draw.")
    points = np.concatenate(strokes)
    lo, hi = points.min(0), points.max(0)
    scale = (height - 2 * margin) / max(hi[1] - lo[1], 1e-9)
    width = (hi[0] - lo[0]) * scale + 2 * margin
    paths = []
    for s in strokes:
        xy = [(margin + (x - lo[0]) * scale, margin + (hi[1] - y) * scale) for x, y in s]  # SVG's y points down
        d = "M " + " L ".join(f"{x:.1f} {y:.1f}" for x, y in xy)
        paths.append(f'<path d="{d}"/>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.1f} {height:.1f}">\n'
           f'<g fill="none" stroke="black" stroke-width="{stroke_width}" stroke-linecap="round" stroke-linejoin="round">\n'
           + "\n".join(paths) + "\n</g>\n</svg>\n")
    if path is not None:
        from pathlib import Path

        Path(path).write_text(svg)
    return svg
