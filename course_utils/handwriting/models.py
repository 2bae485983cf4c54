"""Graves' handwriting prediction network (2013, section 4): stacked LSTM with skip connections
and a mixture density output over the next pen offset."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..train import TrainConfig
from . import mdn
from .strokes import PEN_UP


@dataclass
class PredictionConfig:
    hidden_size: int = 400  # LSTM units per layer (Graves: 400)
    num_layers: int = 3  # stacked layers (Graves: 3)
    num_mixtures: int = 20  # M, bivariate Gaussians in the output (Graves: 20)
    lstm_clip: float = 10.0  # clip d(loss)/d(h_t) of every layer to [-lstm_clip, lstm_clip] (Graves: 10)
    output_clip: float = 100.0  # clip d(loss)/d(y_hat) to [-output_clip, output_clip] (Graves: 100)


def _clip_grad(tensor: torch.Tensor, limit: float, scale: float) -> None:
    """Clip the gradient flowing back into `tensor` elementwise (Graves' derivative clipping).

    The loss is a mean over `1 / scale` points while Graves clips derivatives of the summed loss,
    so the limit is scaled by the same factor.
    """
    if tensor.requires_grad and limit is not None:
        tensor.register_hook(lambda g: g.clamp(-limit * scale, limit * scale))


class HandwritingPredictor(nn.Module):
    """``forward(x, targets, mask, state) -> (y_hat, loss, state)``: x (B, T, 3) offsets, y_hat (B, T, 1 + 6M).

    The loss is the mean negative log-likelihood in nats per (unmasked) point.
    """

    def __init__(self, config: PredictionConfig):
        super().__init__()
        self.config = config
        H, L = config.hidden_size, config.num_layers
        # skip connections: the input feeds every layer, every layer feeds the output
        self.layers = nn.ModuleList(nn.LSTM(3 if l == 0 else 3 + H, H, batch_first=True) for l in range(L))
        self.head = nn.Linear(L * H, mdn.output_size(config.num_mixtures))

    def forward(self, x, targets=None, mask=None, state=None):
        if x.ndim != 3 or x.shape[-1] != 3:
            raise ValueError(f"x must have shape (B, T, 3) = (dx, dy, end_of_stroke), got {tuple(x.shape)}.")
        scale = 1.0
        if targets is not None:
            count = float(mask.sum()) if mask is not None else x.shape[0] * x.shape[1]
            scale = 1.0 / max(count, 1.0)
        states = state if state is not None else [None] * len(self.layers)
        outputs, new_state, below = [], [], None
        for layer, s in zip(self.layers, states):
            h, s = layer(x if below is None else torch.cat([x, below], -1), s)
            _clip_grad(h, self.config.lstm_clip, scale)
            outputs.append(h)
            new_state.append(s)
            below = h
        y_hat = self.head(torch.cat(outputs, -1))  # (B, T, 1 + 6M)
        loss = None
        if targets is not None:
            _clip_grad(y_hat, self.config.output_clip, scale)
            nll = mdn.mixture_nll(y_hat, targets, mask)  # (B, T)
            loss = nll.sum() * scale
        return y_hat, loss, new_state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


@torch.no_grad()
def sample(model: HandwritingPredictor, num_points: int = 700, *, bias: float = 0.0,
           prime: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Write `num_points` new points, one at a time, each fed back in: -> (num_points, 3) offsets.

    `prime` (T, 3), in the network's (scaled) units, is read first so the sample continues it;
    `bias` >= 0 makes the writing neater (Graves section 5.4).
    """
    if num_points < 1:
        raise ValueError(f"num_points must be at least 1, got {num_points}.")
    mdn.check_bias(bias)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    x = torch.tensor([[PEN_UP]], device=device)
    if prime is not None:
        x = torch.cat([x, prime.to(device).float()[None]], dim=1)
    y_hat, _, state = model(x)
    points = []
    for _ in range(num_points):
        point = mdn.sample_step(y_hat[:, -1], bias=bias, generator=generator)  # (1, 3)
        points.append(point)
        y_hat, _, state = model(point[:, None], state=state)
    model.train(was_training)
    return torch.cat(points).cpu()


# ---------------------------------------------------------------- profiles
@dataclass
class PredictionRun:
    """Everything one profile trains: corpus size, model, loop and batches."""

    num_lines: int  # synthetic lines to generate (ignored for IAM)
    model: PredictionConfig
    train: TrainConfig
    batch_size: int = 16  # lines per update
    max_len: int = 300  # points per training window (a line has about 1000)


def run_settings(profile: str) -> PredictionRun:
    """Quick: a small network for a few minutes on a laptop CPU. Full: Graves' 3 x 400 network."""
    if profile == "quick":
        return PredictionRun(
            num_lines=1000,
            model=PredictionConfig(hidden_size=128, num_layers=3, num_mixtures=20),
            train=TrainConfig(steps=450, lr=3e-3, clip_norm=None, valid_every=150, checkpoint_every=150),
        )
    if profile == "full":
        return PredictionRun(
            num_lines=10_000,
            model=PredictionConfig(hidden_size=400, num_layers=3, num_mixtures=20),
            train=TrainConfig(steps=30_000, lr=1e-3, lr_decay=0.5, lr_decay_every=10_000, clip_norm=None,
                              valid_every=1000, checkpoint_every=500),
            batch_size=32, max_len=1200,
        )
    raise ValueError(f"profile={profile!r} is not a profile; use 'quick' or 'full'.")
