"""Handwriting figures: the predicted mixture densities over a line (Graves 2013, Figure 4)."""
from __future__ import annotations

import math

import numpy as np
import torch

from . import mdn
from .strokes import PEN_UP, to_points


@torch.no_grad()
def density_map(model, strokes: torch.Tensor, *, resolution: int = 400, chunk: int = 64):
    """Sum over time of the predicted densities of the next pen position, on a grid over the line.

    strokes (T, 3) in the network's units. Returns (density (H, W), extent (x0, x1, y0, y1),
    eos probability per point (T,)): the heat map of where the network expects the pen next.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    x = torch.cat([torch.tensor([PEN_UP]), strokes.float().cpu()])[None].to(device)
    y_hat, _, _ = model(x[:, :-1])
    model.train(was_training)
    p = mdn.split_params(y_hat[0].cpu())  # each (T, M)
    points, _ = to_points(strokes.cpu().numpy())
    before = np.vstack([[0.0, 0.0], points[:-1]])  # the pen position each prediction starts from
    pad = 3.0
    x0, x1 = points[:, 0].min() - pad, points[:, 0].max() + pad
    y0, y1 = points[:, 1].min() - pad, points[:, 1].max() + pad
    width = resolution
    height = max(8, int(resolution * (y1 - y0) / (x1 - x0)))
    gx, gy = np.meshgrid(np.linspace(x0, x1, width), np.linspace(y0, y1, height))
    grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], -1)).float()  # (G, 2)
    density = torch.zeros(len(grid))
    origin = torch.from_numpy(before).float()
    for a in range(0, len(origin), chunk):
        sl = slice(a, a + chunk)
        rel = grid[None] - origin[sl, None]  # (t, G, 2): offsets from each step's pen position
        log_n = mdn.bivariate_normal_log_density(
            rel[..., :1], rel[..., 1:], p.mu_x[sl, None], p.mu_y[sl, None],
            p.log_sigma_x[sl, None], p.log_sigma_y[sl, None], p.rho_hat[sl, None])  # (t, G, M)
        density += torch.logsumexp(p.log_pi[sl, None] + log_n, -1).exp().sum(0)
    eos = torch.sigmoid(p.eos_logit).numpy()
    return density.view(height, width).numpy(), (x0, x1, y0, y1), eos


def plot_density(model, strokes: torch.Tensor, title: str = ""):
    """Graves' Figure 4: the line, the heat map of predicted pen positions, and the end-of-stroke probabilities."""
    import matplotlib.pyplot as plt

    density, extent, eos = density_map(model, strokes)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 4.5), gridspec_kw={"height_ratios": [3, 1]})
    top.imshow(np.log1p(density / density.max() * 50), origin="lower", extent=extent, cmap="magma", aspect="equal")
    top.set_title(title or "predicted density of the next pen position (summed over time)", fontsize=10, loc="left")
    top.axis("off")
    bottom.plot(eos, linewidth=0.8)
    ends = np.flatnonzero(strokes[:, 2].cpu().numpy())
    bottom.plot(ends, eos[ends], "r.", markersize=4, label="true end of stroke")
    bottom.set_xlabel("point")
    bottom.set_ylabel("Pr(end of stroke)")
    bottom.set_xlim(0, len(eos))
    bottom.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_attention(writing, scale=None, *, title: str = ""):
    """A written line with the window that wrote it (Graves' Figure 13): the line, phi(t, u) as a
    heat map of characters by time, and the window vector w_t over the alphabet characters it used."""
    import matplotlib.pyplot as plt

    from .strokes import draw

    strokes = writing.strokes.numpy()
    if scale is not None:
        strokes = scale.invert(strokes)
    text, phi, window = writing.text, writing.phi.numpy(), writing.window.numpy()
    used = [i for i in range(window.shape[1]) if window[:, i].max() > 1e-3]
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(12, 7), gridspec_kw={"height_ratios": [1.3, 2, 2]})
    draw(strokes, ax=top)
    top.set_title(title or repr(text), fontsize=10, loc="left")
    middle.imshow(phi.T, aspect="auto", origin="lower", cmap="Greys", interpolation="nearest")
    step = max(1, math.ceil(len(text) / 16))  # at most about 16 labels, so that they never overlap
    rows = list(range(0, len(text), step))
    middle.set_yticks(rows + [len(text)])
    middle.set_yticklabels([f"{u + 1} {text[u] if text[u] != ' ' else 'space'}" for u in rows] + ["end"], fontsize=7)
    middle.set_ylabel("character u" if step == 1 else f"character u (one label every {step})")
    middle.set_title(r"$\phi(t, u)$: where the window looks", fontsize=9, loc="left")
    bottom.imshow(window[:, used].T, aspect="auto", origin="lower", cmap="Greys", interpolation="nearest")
    bottom.set_yticks(range(len(used)))
    bottom.set_yticklabels([writing.alphabet[i] if writing.alphabet[i] != " " else "space" for i in used],
                           fontsize=min(7.0, 120 / max(len(used), 1)))  # about 130 points of height for the rows
    bottom.set_ylabel("alphabet")
    bottom.set_xlabel("time step t (pen points)")
    bottom.set_title(r"$w_t$: the window vector (alphabet characters it uses)", fontsize=9, loc="left")
    fig.tight_layout()
    return fig
