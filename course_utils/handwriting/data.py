"""Handwriting lines as training data: split, scaled to unit offsets, padded into batches."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .strokes import PEN_UP, OffsetScale
from ..runtime import step_seed


@dataclass
class HandwritingSet:
    """Lines of one split in the network's units: `strokes[i]` (T_i, 3) offsets scaled by `scale`."""

    texts: list[str]
    strokes: list[torch.Tensor]
    scale: OffsetScale

    def __len__(self) -> int:
        return len(self.texts)

    def points(self) -> int:
        return sum(len(s) for s in self.strokes)

    def __getitem__(self, lines: slice) -> "HandwritingSet":
        """Some of the lines as a set of their own: `valid_set[:40]`."""
        if not isinstance(lines, slice):
            raise TypeError(f"a HandwritingSet takes a slice such as [:40], not {lines!r}; "
                            "use .texts[i] and .strokes[i] for one line.")
        return HandwritingSet(self.texts[lines], self.strokes[lines], self.scale)


def split_lines(texts: list[str], strokes: list[np.ndarray], *, valid_fraction: float = 0.1, seed: int = 0,
                scale: OffsetScale | None = None) -> tuple[HandwritingSet, HandwritingSet]:
    """A seeded train/valid split; the offset scale is fitted on the training lines (unless given)."""
    if len(texts) != len(strokes):
        raise ValueError(f"{len(texts)} texts but {len(strokes)} stroke sequences: they must pair up.")
    if len(texts) < 2:
        raise ValueError("need at least 2 lines to split into training and validation.")
    order = np.random.default_rng(seed).permutation(len(texts))
    n_valid = max(1, int(round(valid_fraction * len(texts))))
    parts = order[n_valid:], order[:n_valid]
    scale = scale or OffsetScale.fit([strokes[i] for i in parts[0]])
    return tuple(
        HandwritingSet([texts[i] for i in idx], [torch.from_numpy(scale.apply(strokes[i])) for i in idx], scale)
        for idx in parts
    )


def pad_batch(sequences: list[torch.Tensor], max_len: int | None = None):
    """Pad (T_i, 3) sequences into inputs and next-point targets: x, y (B, T, 3) and mask (B, T).

    The input starts with a pen-up (0, 0, 1) so the first real point is predicted too.
    """
    start = torch.tensor([PEN_UP])
    seqs = [torch.cat([start, s[: max_len]]) for s in sequences]
    T = max(len(s) for s in seqs) - 1
    x = torch.zeros(len(seqs), T, 3)
    y = torch.zeros(len(seqs), T, 3)
    mask = torch.zeros(len(seqs), T)
    for b, s in enumerate(seqs):
        n = len(s) - 1
        x[b, :n], y[b, :n], mask[b, :n] = s[:-1], s[1:], 1.0
    return x, y, mask


def random_batches(data: HandwritingSet, batch_size: int, *, max_len: int | None = None, seed: int = 0):
    """`batch_fn(step)` for `train.fit`: random lines, each cut to a random window of at most
    `max_len` points; the same batch for the same step."""
    def batch_fn(step: int):
        g = torch.Generator().manual_seed(step_seed(seed, step))
        idx = torch.randint(len(data), (batch_size,), generator=g).tolist()
        windows = []
        for i in idx:
            s = data.strokes[i]
            start = 0 if max_len is None or len(s) <= max_len else int(torch.randint(len(s) - max_len + 1, (1,), generator=g))
            windows.append(s[start:start + max_len] if max_len else s)
        return pad_batch(windows)

    return batch_fn


@torch.no_grad()
def line_nll(model, data: HandwritingSet, loss_fn, *, batch_size: int = 32) -> dict[str, float]:
    """Negative log-likelihood of whole lines, in batches: nats per sequence (Graves' unit) and per point.

    `loss_fn(x, y, mask, texts)` -> the model's mean nats per unmasked point for one padded batch (on the
    model's device); the prediction and the synthesis networks differ only there."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, points = 0.0, 0
    for i in range(0, len(data), batch_size):
        x, y, mask = pad_batch(data.strokes[i:i + batch_size])
        loss = loss_fn(x.to(device), y.to(device), mask.to(device), data.texts[i:i + batch_size])
        total += loss.item() * mask.sum().item()
        points += int(mask.sum().item())
    model.train(was_training)
    return {"nats_per_sequence": total / len(data), "nats_per_point": total / points}


def evaluate_nll(model, data: HandwritingSet, *, batch_size: int = 32) -> dict[str, float]:
    """Negative log-likelihood of whole lines under the prediction network (it never sees the text)."""
    return line_nll(model, data, lambda x, y, mask, texts: model(x, y, mask)[1], batch_size=batch_size)
