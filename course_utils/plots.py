"""Figures that several notebooks share: learning curves."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .train import History


def smooth(values, window: int = 25) -> np.ndarray:
    """Moving average over `window` points (shorter at the start), for noisy per-step losses."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0 or window <= 1:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    for i in range(len(values)):
        lo = max(0, i + 1 - window)
        out[i] = (cumsum[i + 1] - cumsum[lo]) / (i + 1 - lo)
    return out


def learning_curves(history: History, *, valid_metric: str | None = None, scale: float = 1.0,
                    ylabel: str = "loss", x: str = "step", baselines: dict[str, float] | None = None,
                    ax=None, label: str = "", color=None, legend: bool = True):
    """Training loss (times `scale`, smoothed) and a validation metric against steps or seconds.

    `baselines` draws horizontal reference lines, e.g. {"unigram": 4.4}. With `color`, training
    (thin) and validation (dots) share it, so several runs can share one axis. `legend=False` leaves
    the legend to the caller (one legend for several panels).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    xs = history.step if x == "step" else history.seconds
    ax.plot(xs, smooth(np.asarray(history.loss) * scale), label=f"{label} train".strip(), alpha=0.8 if color is None else 0.4,
            color=color, linewidth=1.5 if color is None else 1.0)
    if valid_metric and history.valid:
        vx = history.valid_step if x == "step" else history.valid_seconds
        ax.plot(vx, history.valid_metric(valid_metric), "o-", label=f"{label} valid".strip(), color=color,
                markersize=4 if color is not None else 6)
    for name, value in (baselines or {}).items():
        ax.axhline(value, color="gray", linestyle="--", linewidth=1)
        ax.text(xs[-1] if xs else 0, value, f" {name}", va="bottom", ha="right", color="gray")
    ax.set_xlabel("update" if x == "step" else "training time (s)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend()
    return ax


def compare_learning_curves(histories: dict[str, History], colors: dict[str, str], *, valid_metric: str,
                            ylabel: str, baseline: tuple[str, float] | None = None, title: str = "",
                            ylim_top: float | None = None):
    """Several runs (e.g. one per recurrent unit) side by side: against updates (left) and seconds of
    training (right), one colour per run, a dotted `baseline` = (label, value), one legend below both panels."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True, layout="constrained")
    for name, history in histories.items():
        for ax, x in zip(axes, ("step", "seconds")):
            learning_curves(history, valid_metric=valid_metric, x=x, ax=ax, label=name, ylabel=ylabel,
                            color=colors.get(name), legend=False)
    for ax in axes:
        if baseline is not None:
            ax.axhline(baseline[1], color="k", linestyle=":", linewidth=1, label=baseline[0])
        if ylim_top is not None:
            ax.set_ylim(top=ylim_top)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=7, fontsize=8)
    axes[0].set_title(f"{title}: against updates" if title else "against updates")
    axes[1].set_title("against seconds of training")
    return fig
