"""A drawing pad: a line written with the mouse (or a finger) becomes the pen offsets of the course.

The browser reports the pointer in canvas pixels, y down, whenever it moves (so the points are unevenly
spaced). `pad_offsets` turns the strokes into the format of the synthetic writers, which the recognizer
and the writer know: y up, scaled to their size (the standard deviation of y over a line) and resampled
along the pen path at a tablet's pace (`synthetic.resample_like_a_tablet`: slower in curves).
`DrawingPad` is the canvas (`ipycanvas`), for notebook 03's "your own hand".
"""
from __future__ import annotations

import numpy as np

from .strokes import from_stroke_list
from .synthetic import densify, resample_like_a_tablet

# Sizes of the synthetic writers' lines (40 random writers, "We walked along the river today"): the
# standard deviation of y along the pen path (points every 0.1 units) is 6.0 font units (10% to 90%: 5.1
# to 6.7); a pen step is 1.8 units (median).
LINE_HEIGHT = 6.0
PEN_SPEED = 1.8


def pad_offsets(strokes, *, height: float = LINE_HEIGHT, speed: float = PEN_SPEED) -> np.ndarray:
    """Strokes drawn on a canvas -> (T, 3) pen offsets (dx, dy, end_of_stroke) in the synthetic writers' units.

    strokes: one (n, 2) sequence of (x, y) canvas points per pen-down, y pointing down. The line is
    flipped (y up), scaled so that the standard deviation of its y is `height`, and every stroke is
    resampled at `speed` units per point; a click without a move becomes a dot."""
    lines = [np.asarray(s, dtype=np.float64).reshape(-1, 2) * [1.0, -1.0] for s in strokes if len(s)]  # y up
    if not lines:
        raise ValueError("the pad is empty: write a line on it first (press, move, release for each stroke).")
    if not all(np.isfinite(s).all() for s in lines):
        raise ValueError("a stroke holds a point that is not a finite number.")
    points = np.concatenate(lines)
    extent = max(np.ptp(points, axis=0).max(), 1e-12)
    # the size is measured along the pen path, not over the mouse events (dense where the hand was slow)
    path = np.concatenate([densify(s, extent / 1000) for s in lines])
    spread = path[:, 1].std()
    if spread < 1e-3 * extent:
        raise ValueError("the line has no height (a single dot or a flat dash): write at least one letter.")
    centre, factor = path.mean(0), height / spread
    out = []
    for s in lines:
        s = (s - centre) * factor
        # densify first, as the synthetic writers do: the pen slows where the path turns, not at every mouse event
        out.append(resample_like_a_tablet(densify(s, 0.5), speed) if len(s) > 1 else np.repeat(s, 2, axis=0))
    return from_stroke_list(out)


def simulate_mouse(offsets, rng: np.random.Generator, *, pixels_per_unit: float = 4.0, max_gap: int = 3,
                   origin=(300.0, 120.0)) -> list[list[tuple[float, float]]]:
    """A written line, (T, 3) offsets, as a browser would report it while someone traced it on the pad:
    canvas pixels, y down, one event every 1 to `max_gap` of its points (drawn by `rng`), both ends of
    every stroke kept. For demonstrations and tests without a mouse."""
    from .strokes import to_stroke_list

    if max_gap < 1:
        raise ValueError(f"max_gap must be at least 1, got {max_gap}.")
    out = []
    for s in to_stroke_list(np.asarray(offsets, dtype=np.float64)):
        if not len(s):
            continue
        keep = np.unique(np.concatenate([[0], np.cumsum(rng.integers(1, max_gap + 1, len(s))), [len(s) - 1]]))
        keep = keep[keep < len(s)]
        out.append([(origin[0] + pixels_per_unit * x, origin[1] - pixels_per_unit * y) for x, y in s[keep]])
    return out


class DrawingPad:
    """A canvas to write one line on: `pad.widget` to display, `pad.strokes` (canvas points per stroke),
    `pad.offsets()` for the recognizer and the writer, `pad.clear()`. Needs `ipycanvas` and a live kernel."""

    def __init__(self, width: int = 900, height: int = 200, line_width: float = 3.0):
        try:
            from ipycanvas import Canvas
        except ImportError as err:  # pragma: no cover - ipycanvas is a dependency of the course
            raise ImportError("the drawing pad needs ipycanvas: pip install ipycanvas") from err
        self.canvas = Canvas(width=width, height=height, layout={"border": "1px solid #999"})
        self.canvas.line_width, self.line_width = line_width, line_width
        self.strokes: list[list[tuple[float, float]]] = []
        self._down = False
        self.canvas.on_mouse_down(self._start)
        self.canvas.on_mouse_move(self._move)
        self.canvas.on_mouse_up(self._end)
        self.canvas.on_mouse_out(self._end)
        self.canvas.on_touch_start(lambda touches: self._start(*touches[0]))
        self.canvas.on_touch_move(lambda touches: self._move(*touches[0]))
        self.canvas.on_touch_end(lambda touches: self._end(0, 0))
        self.clear()

    @property
    def widget(self):
        return self.canvas

    def clear(self) -> None:
        """Wipe the pad and draw the guide line."""
        self.strokes, self._down = [], False
        c = self.canvas
        c.clear()
        c.stroke_style, c.line_width = "#cccccc", 1.0
        c.stroke_line(10, 0.68 * c.height, c.width - 10, 0.68 * c.height)  # where the letters sit
        c.stroke_style, c.line_width = "black", self.line_width

    def _start(self, x: float, y: float) -> None:
        self._down = True
        self.strokes.append([(float(x), float(y))])

    def _move(self, x: float, y: float) -> None:
        if self._down:
            x0, y0 = self.strokes[-1][-1]
            self.strokes[-1].append((float(x), float(y)))
            self.canvas.stroke_line(x0, y0, x, y)

    def _end(self, x: float, y: float) -> None:
        self._down = False

    def offsets(self) -> np.ndarray:
        """What is on the pad as (T, 3) pen offsets in the synthetic writers' units (`pad_offsets`)."""
        return pad_offsets(self.strokes)
