"""Graves' handwriting synthesis network (2013, section 5): the prediction network of notebook 02
conditioned on a text through a soft window that slides along the characters.

    w_t       = sum_u phi(t, u) c_u                                  soft window into c at time t
    phi(t, u) = sum_k alpha_t^k exp(-beta_t^k (kappa_t^k - u)^2)      weight of character u
    (alpha_hat, beta_hat, kappa_hat)_t = W h^1_t + b                  from the first layer
    alpha = exp(alpha_hat), beta = exp(beta_hat), kappa_t = kappa_{t-1} + exp(kappa_hat)

The first LSTM layer reads the pen input x_t and the previous window w_{t-1}; the window w_t is
computed from its output and fed, with x_t and the layer below, to the deeper layers (skip
connections); all layers feed the mixture density output of notebook 02.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from . import mdn
from .models import _clip_grad
from .strokes import PEN_UP
from .window import DEFAULT_ALPHABET, Attention, encode_texts, has_finished, soft_window


@dataclass
class SynthesisConfig:
    alphabet: str = DEFAULT_ALPHABET  # the characters c_u can be, one-hot coded in this order
    hidden_size: int = 400  # LSTM units per layer (Graves: 400)
    num_layers: int = 3  # stacked layers (Graves: 3)
    num_mixtures: int = 20  # M, output Gaussians (Graves: 20)
    num_window: int = 10  # K, window Gaussians (Graves: 10)
    # exp(kappa_hat) is how many characters the window moves per pen point. A bias of -3 starts it
    # at about 1/20 of a character per point, the pace of handwriting, instead of 1 per point.
    kappa_bias: float = -3.0
    lstm_clip: float = 10.0  # as in notebook 02 (Graves: 10)
    output_clip: float = 100.0  # (Graves: 100)


class HandwritingSynthesizer(nn.Module):
    """``forward(x, chars, char_mask, targets, mask, state) -> (y_hat, loss, state, attention)``.

    x (B, T, 3) pen offsets; chars (B, U, C) one-hot text and char_mask (B, U) from `encode_texts`;
    y_hat (B, T, 1 + 6M); the loss is the mean negative log-likelihood in nats per unmasked point.
    The state (h1, c1, kappa, w, upper layers' states) lets a sampler go on one point at a time.
    """

    def __init__(self, config: SynthesisConfig):
        super().__init__()
        self.config = config
        C, H, K, L = len(config.alphabet), config.hidden_size, config.num_window, config.num_layers
        if L < 1 or K < 1:
            raise ValueError(f"need at least one layer and one window Gaussian, got {L} and {K}.")
        self.cell = nn.LSTMCell(3 + C, H)  # layer 1: pen input and the previous window
        self.window = nn.Linear(H, 3 * K)  # alpha_hat, beta_hat, kappa_hat
        with torch.no_grad():
            self.window.bias[2 * K:] = config.kappa_bias
        self.upper = nn.ModuleList(nn.LSTM(3 + C + H, H, batch_first=True) for _ in range(L - 1))
        self.head = nn.Linear(L * H, mdn.output_size(config.num_mixtures))

    def initial_state(self, batch_size: int, device=None):
        H, K, C = self.config.hidden_size, self.config.num_window, len(self.config.alphabet)
        z = lambda *shape: torch.zeros(*shape, device=device)  # noqa: E731
        return (z(batch_size, H), z(batch_size, H), z(batch_size, K), z(batch_size, C), [None] * len(self.upper))

    def forward(self, x, chars, char_mask, targets=None, mask=None, state=None):
        if x.ndim != 3 or x.shape[-1] != 3:
            raise ValueError(f"x must have shape (B, T, 3) = (dx, dy, end_of_stroke), got {tuple(x.shape)}.")
        if chars.shape[-1] != len(self.config.alphabet):
            raise ValueError(f"chars has {chars.shape[-1]} classes but the alphabet has {len(self.config.alphabet)}.")
        B, T, K = x.shape[0], x.shape[1], self.config.num_window
        scale = 1.0
        if targets is not None:
            count = float(mask.sum()) if mask is not None else B * T
            scale = 1.0 / max(count, 1.0)
        h, c, kappa, w, upper_states = state if state is not None else self.initial_state(B, x.device)
        hs, ws, phis, kappas = [], [], [], []
        for t in range(T):  # layer 1 and the window, one step at a time: w_{t-1} feeds step t
            h, c = self.cell(torch.cat([x[:, t], w], -1), (h, c))
            alpha, beta, kappa_step = torch.exp(self.window(h)).split(K, dim=-1)  # (B, K) each
            kappa = kappa + kappa_step
            w, phi = soft_window(alpha, beta, kappa, chars, char_mask)
            hs.append(h)
            ws.append(w)
            phis.append(phi)
            kappas.append(kappa)
        h1, window = torch.stack(hs, 1), torch.stack(ws, 1)  # (B, T, H), (B, T, C)
        _clip_grad(h1, self.config.lstm_clip, scale)
        outputs, below, new_upper = [h1], h1, []
        for layer, s in zip(self.upper, upper_states):
            below, s = layer(torch.cat([x, window, below], -1), s)
            _clip_grad(below, self.config.lstm_clip, scale)
            outputs.append(below)
            new_upper.append(s)
        y_hat = self.head(torch.cat(outputs, -1))  # (B, T, 1 + 6M)
        loss = None
        if targets is not None:
            _clip_grad(y_hat, self.config.output_clip, scale)
            loss = mdn.mixture_nll(y_hat, targets, mask).sum() * scale
        attention = Attention(torch.stack(phis, 1), torch.stack(kappas, 1), window)
        return y_hat, loss, (h, c, kappa, w, new_upper), attention

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------- writing
@dataclass
class Writing:
    """One written line: strokes (N, 3) in the network's units, phi (N, U + 1) over the text and one
    blank position after it, kappa (N, K), the window w (N, C) over `alphabet`, and whether the
    window passed the end by itself."""

    text: str
    strokes: torch.Tensor
    phi: torch.Tensor
    kappa: torch.Tensor
    window: torch.Tensor
    alphabet: str
    stopped: bool


@torch.no_grad()
def write(model: HandwritingSynthesizer, texts, *, bias: float = 0.0, prime: tuple[str, torch.Tensor] | None = None,
          max_steps_per_char: int = 40, generator: torch.Generator | None = None,
          finish_stroke: bool = False) -> list[Writing]:
    """Write each text in `texts` (a string or a list, written in parallel): -> a `Writing` per text.

    bias >= 0 makes the writing neater (Graves section 5.4). `prime` = (its text, its strokes (T, 3)
    in the network's units) imitates a style: the network reads the primer's strokes while its window
    runs over "<primer text> <text>", then goes on writing. A line ends when the window passes the
    last character (`has_finished`), or after `max_steps_per_char` points per character. With
    `finish_stroke`, it ends at the first pen lift after that (Graves' rule can fire while the last letter's
    final stroke is still being drawn): the same points as without it, and then the rest of that stroke.
    """
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    mdn.check_bias(bias)
    if max_steps_per_char < 1:
        raise ValueError(f"max_steps_per_char must be at least 1, got {max_steps_per_char}.")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    head = f"{prime[0]} " if prime is not None else ""
    chars, char_mask = encode_texts([head + t for t in texts], model.config.alphabet, extra=1)
    chars, char_mask = chars.to(device), char_mask.to(device)
    lengths = torch.tensor([len(head + t) for t in texts], device=device)
    B = len(texts)
    x = torch.tensor([[PEN_UP]], device=device).expand(B, 1, 3)
    if prime is not None:
        strokes = torch.as_tensor(prime[1], dtype=torch.float32, device=device)
        x = torch.cat([x, strokes[None].expand(B, -1, -1)], 1)
    y_hat, _, state, att = model(x, chars, char_mask)
    points, phis, kappas, windows = [], [], [], []
    done = torch.zeros(B, dtype=torch.bool, device=device)
    passed = torch.zeros(B, dtype=torch.bool, device=device)
    stopped_at = torch.full((B,), -1, dtype=torch.long, device=device)
    max_steps = max_steps_per_char * max(len(t) for t in texts)
    for step in range(max_steps):
        point = mdn.sample_step(y_hat[:, -1], bias=bias, generator=generator)  # (B, 3)
        points.append(point)
        y_hat, _, state, att = model(point[:, None], chars, char_mask, state=state)
        phis.append(att.phi[:, 0])
        kappas.append(att.kappa[:, 0])
        windows.append(att.window[:, 0])
        passed |= has_finished(att.phi[:, 0], lengths)
        # Graves' rule ends the line when the window passes the end; finish_stroke waits for the pen to lift
        finished = passed & ~done & ((point[:, 2] > 0.5) if finish_stroke else True)
        stopped_at[finished] = step + 1
        done |= finished
        if bool(done.all()):
            break
    model.train(was_training)
    points, phis, kappas, windows = (torch.stack(v, 1).cpu() for v in (points, phis, kappas, windows))
    if not bool(done.all()):
        _warn_unfinished(texts, done.tolist(), phis[:, -1], len(head), max_steps_per_char)
    out = []
    for b, text in enumerate(texts):
        n = int(stopped_at[b]) if stopped_at[b] > 0 else points.shape[1]
        skip = len(head)  # drop the primer's characters from the attention
        U = len(text)
        out.append(Writing(text, points[b, :n], phis[b, :n, skip: skip + U + 1], kappas[b, :n] - skip,
                           windows[b, :n], model.config.alphabet, bool(stopped_at[b] > 0)))
    return out[0] if single else out


def _warn_unfinished(texts: list[str], finished: list[bool], last_phi: torch.Tensor, skip: int,
                     max_steps_per_char: int) -> None:
    """Warn about the lines whose window had not passed their end when `write` reached its step cap."""
    focus = (last_phi.argmax(-1) - skip + 1).clamp(min=0).tolist()  # the character (1..U) each window looked at last
    unfinished = [f"{t if len(t) <= 30 else t[:30] + '...'!r}: the window got to character {min(u, len(t))} of {len(t)}"
                  for t, u, ok in zip(texts, focus, finished) if not ok]
    warnings.warn(f"{len(unfinished)} of {len(texts)} lines reached the cap of max_steps_per_char="
                  f"{max_steps_per_char} points per character unfinished (stopped=False): {'; '.join(unfinished)}. "
                  "Write shorter lines (as long as the training lines; the pretrained writer's had 10 to 30 "
                  "characters), or raise max_steps_per_char.", stacklevel=4)  # the caller of write


def evaluate_nll(model: HandwritingSynthesizer, data, *, batch_size: int = 32) -> dict[str, float]:
    """Negative log-likelihood of whole lines given their text: nats per sequence and per point."""
    from .data import line_nll

    def loss(x, y, mask, texts):
        chars, char_mask = encode_texts(texts, model.config.alphabet)
        return model(x, chars.to(x.device), char_mask.to(x.device), y, mask)[1]

    return line_nll(model, data, loss, batch_size=batch_size)


# ---------------------------------------------------------------- the pretrained writer
PRETRAINED = "writer.pt"  # in course_utils/pretrained/, with writer.md (the model card) beside it


def pretrained_path():
    from .. import pretrained

    return pretrained.path(PRETRAINED)


def export_writer(model: HandwritingSynthesizer, scale, path, *, metadata: dict | None = None):
    """Save a small inference file: float16 weights, the config, the offset scale and metadata."""
    from dataclasses import asdict

    from ..train import save_checkpoint

    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    return save_checkpoint(path, {"model": state, "model_config": asdict(model.config),
                                  "scale": asdict(scale), "metadata": metadata or {}})


def average_writers(paths) -> tuple[HandwritingSynthesizer, object, dict]:
    """The mean of the weights of exported writers of one run (checkpoint averaging: snapshots of a run vary
    more from one to the next than draws do, and their mean tends to write better than each). They must share
    the network and the offset scale. -> (model in eval mode, OffsetScale, metadata of the last file + 'averaged')"""
    from pathlib import Path

    if len(paths) < 1:
        raise ValueError("give at least one exported writer to average.")
    loaded = [load_writer(p) for p in paths]
    model, scale, meta = loaded[-1]
    for path, (other, other_scale, _) in zip(paths, loaded):
        if other.config != model.config or other_scale != scale:
            raise ValueError(f"{path} is another network or offset scale than {paths[-1]}: average snapshots of "
                             "one run (the same --profile and --init).")
    states = [m.state_dict() for m, _, _ in loaded]
    model.load_state_dict({k: sum(st[k].float() for st in states) / len(states) for k in states[0]})
    return model.eval(), scale, {**meta, "averaged": [Path(p).name for p in paths]}


def load_writer(path=None, device=None):
    """The pretrained writer (or another exported file) -> (model in eval mode, OffsetScale, metadata).

    Loaded without executing code (weights only)."""
    from ..train import CheckpointError, load_checkpoint
    from .strokes import OffsetScale

    path = path or pretrained_path()
    saved = load_checkpoint(path)
    if "scale" not in saved or "model_config" not in saved:
        raise CheckpointError(f"{path} is a training checkpoint, not an exported writer: use export_writer.")
    model = HandwritingSynthesizer(SynthesisConfig(**saved["model_config"]))
    model.load_state_dict({k: v.float() for k, v in saved["model"].items()})
    model.to(device or "cpu").eval()
    return model, OffsetScale(**saved["scale"]), saved.get("metadata", {})


if __name__ == "__main__":  # the training command lives in train_writer; the model cards' commands name this module
    from .train_writer import main

    main()
