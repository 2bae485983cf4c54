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

from ..runtime import step_seed
from ..train import TrainConfig
from . import mdn
from .models import _clip_grad
from .strokes import PEN_UP
from .synthetic import SyntheticConfig
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


# ---------------------------------------------------------------- data
def random_batches(data, alphabet: str, batch_size: int, *, seed: int = 0, bucket: bool = True):
    """`batch_fn(step)` for `train.fit`: whole lines (the window must start at the first character)
    -> (x, chars, char_mask, y, mask); the same batch for the same step.

    With `bucket`, a batch holds lines of similar length (neighbours in the order of length, from a
    random place), so little time goes into padding; otherwise the lines are drawn at random.
    """
    from .data import pad_batch

    if len(data) < batch_size:
        raise ValueError(f"the data has {len(data)} lines, fewer than a batch of {batch_size}.")
    by_length = torch.tensor([len(s) for s in data.strokes]).argsort(stable=True)

    def batch_fn(step: int):
        g = torch.Generator().manual_seed(step_seed(seed, step))
        if bucket:
            start = int(torch.randint(len(data) - batch_size + 1, (1,), generator=g))
            idx = by_length[start:start + batch_size].tolist()
        else:
            idx = torch.randint(len(data), (batch_size,), generator=g).tolist()
        x, y, mask = pad_batch([data.strokes[i] for i in idx])
        chars, char_mask = encode_texts([data.texts[i] for i in idx], alphabet)
        return x, chars, char_mask, y, mask

    return batch_fn


def evaluate_nll(model: HandwritingSynthesizer, data, *, batch_size: int = 32) -> dict[str, float]:
    """Negative log-likelihood of whole lines given their text: nats per sequence and per point."""
    from .data import line_nll

    def loss(x, y, mask, texts):
        chars, char_mask = encode_texts(texts, model.config.alphabet)
        return model(x, chars.to(x.device), char_mask.to(x.device), y, mask)[1]

    return line_nll(model, data, loss, batch_size=batch_size)


# ---------------------------------------------------------------- profiles, the pretrained writer
@dataclass
class SynthesisRun:
    """Everything one profile trains: the synthetic corpus, the model, the loop and the batch size."""

    corpus: SyntheticConfig
    model: SynthesisConfig
    train: TrainConfig
    batch_size: int = 16


def run_settings(profile: str) -> SynthesisRun:
    """quick: a few minutes on a laptop CPU, short lines; writer: the shipped pretrained writer
    (hours on a CPU); full: Graves' 3 x 400 network with 10 window Gaussians."""
    if profile == "quick":
        return SynthesisRun(
            corpus=SyntheticConfig(num_lines=1500, seed=0, min_chars=6, max_chars=14),
            model=SynthesisConfig(hidden_size=96, num_layers=2, num_mixtures=10, num_window=5),
            train=TrainConfig(steps=360, lr=5e-3, clip_norm=None, valid_every=120, checkpoint_every=60),
            batch_size=16,
        )
    if profile == "writer":
        return SynthesisRun(
            corpus=SyntheticConfig(num_lines=8000, seed=0, min_chars=10, max_chars=30),
            model=SynthesisConfig(hidden_size=256, num_layers=3, num_mixtures=20, num_window=10),
            train=TrainConfig(steps=20_000, lr=2e-3, lr_decay=0.5, lr_decay_every=5000, clip_norm=None,
                              valid_every=500, checkpoint_every=100),
            batch_size=16,
        )
    if profile == "full":
        return SynthesisRun(
            corpus=SyntheticConfig(num_lines=10_000, seed=0, min_chars=20, max_chars=45),
            model=SynthesisConfig(hidden_size=400, num_layers=3, num_mixtures=20, num_window=10),
            train=TrainConfig(steps=30_000, lr=1e-3, lr_decay=0.5, lr_decay_every=10_000, clip_norm=None,
                              valid_every=1000, checkpoint_every=200),
            batch_size=32,
        )
    raise ValueError(f"profile={profile!r} is not a profile; use 'quick', 'writer' or 'full'.")


def load_data(run: SynthesisRun, *, valid_fraction: float = 0.05, text: str = "ptb", scale=None,
              shares: tuple[float, float, float] | None = None):
    """The corpus of a profile (or IAM when IAM_ONDB_DIR is set), split into training and validation sets.

    text="ptb": Penn Treebank sentences (the shipped writer's corpus); "mix": the recognizer's mix of Penn
    Treebank, Jane Austen and made-up everyday sentences with capitals, digits and signs (`recognizer.TextMix`,
    held-out texts excluded; only the first line of a sentence starts with a capital), each line by a new
    synthetic writer; `shares` = (ptb, austen, everyday): the mix's shares of the three sources (default:
    `TextMix`'s 0.4, 0.3, 0.3). `scale`: the offset scale of a writer to continue (default: fitted on the
    training lines)."""
    import os

    import numpy as np

    from . import iam, synthetic
    from .data import split_lines

    if text not in ("ptb", "mix"):
        raise ValueError(f"text={text!r}: use 'ptb' (Penn Treebank) or 'mix' (PTB, Austen, everyday sentences).")
    if shares is not None and text != "mix":
        raise ValueError(f"shares={shares} apply to text='mix' only, not to text={text!r}.")
    if shares is not None:
        shares = check_shares(shares)
    if os.environ.get(iam.IAM_ENV):
        lines = iam.load_iam()
        texts, strokes = [ln.text for ln in lines], [ln.strokes for ln in lines]
    elif text == "mix":
        from .recognizer import TextMix, synthetic_lines, training_texts

        # the everyday sentences hold 15 to 50 characters: lines of at least 30 let them in (the quick profile's 14 would not)
        # lines that go on a sentence start in lower case, as Graves' slide lines do ("would find the bus ...")
        mix = TextMix(min_chars=run.corpus.min_chars, max_chars=max(run.corpus.max_chars, 30), capitalize="sentences",
                      **dict(zip(("ptb", "austen", "everyday"), shares or ())))
        lines = synthetic_lines(training_texts(mix, seed=run.corpus.seed), mix, run.corpus.num_lines,
                                np.random.default_rng([4, run.corpus.seed]))
        texts, strokes = [ln["text"] for ln in lines], [ln["strokes"] for ln in lines]
    else:
        corpus = synthetic.make_corpus(run.corpus)
        texts, strokes = [c["text"] for c in corpus], [c["strokes"] for c in corpus]
    return split_lines(texts, strokes, valid_fraction=valid_fraction, seed=run.corpus.seed, scale=scale)


def check_shares(shares) -> tuple[float, float, float]:
    """The text mix's shares (ptb, austen, everyday) as floats, or a ValueError that says what is wrong."""
    if len(shares) != 3 or min(shares) < 0 or sum(shares) <= 0:
        raise ValueError(f"shares={tuple(shares)}: give three non-negative shares (ptb, austen, everyday), "
                         "not all zero.")
    return tuple(float(x) for x in shares)


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


def main(argv=None) -> None:
    """Train a synthesis network from the command line, resuming from its checkpoint, and export it."""
    import argparse
    import json
    import time
    from dataclasses import replace

    from pathlib import Path

    from ..runtime import build_dir, get_device, seed_everything
    from ..train import CheckpointError, fit

    parser = argparse.ArgumentParser(prog="python -m course_utils.handwriting.synthesis", description=main.__doc__)
    parser.add_argument("--profile", default="writer", help="quick, writer (the shipped model) or full")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this much training time")
    parser.add_argument("--steps", type=int, default=None, help="number of updates (default: the profile's)")
    parser.add_argument("--checkpoint", default=None, help="where to save and resume (default: build/checkpoints)")
    parser.add_argument("--export", default=None, help="write the small inference file here after training")
    parser.add_argument("--evaluate", type=int, default=0, metavar="N",
                        help="after training, write N held-out lines and report the quality measures")
    parser.add_argument("--text", default="ptb", choices=("ptb", "mix"),
                        help="ptb: Penn Treebank sentences; mix: with Austen and sentences with capitals, digits, signs")
    parser.add_argument("--mix", default=None, metavar="PTB,AUSTEN,EVERYDAY",
                        help="with --text mix: the shares of the three sources (default 0.4,0.3,0.3)")
    parser.add_argument("--lines", type=int, default=None, help="lines of synthetic handwriting (default: the profile's)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the profile's; lower to continue a writer)")
    parser.add_argument("--snapshot-every", type=int, default=0, metavar="N",
                        help="also export the writer every N updates, to <checkpoint>_snapshots/ (for --average)")
    parser.add_argument("--average", nargs="+", default=None, metavar="WRITER",
                        help="no training: average these exported writers of one run and write the mean to --export "
                             "(its metadata: the last file's, with 'averaged'; with --evaluate N, its own quality)")
    parser.add_argument("--init", default=None, metavar="WRITER",
                        help="start from an exported writer (e.g. course_utils/pretrained/writer.pt): its weights and "
                             "offset scale; ignored once the checkpoint exists (the run then resumes)")
    args = parser.parse_args(argv)
    if args.average:
        if not args.export:
            parser.error("--average needs --export (where to write the mean).")
        model, scale, meta = average_writers(args.average)
        if args.evaluate:  # the mean's own quality, in place of the last file's
            meta["quality_trained"] = _report_quality("averaged", model, scale, args.evaluate)
        print(f"averaged {len(args.average)} writers; exported", export_writer(model, scale, args.export, metadata=meta))
        return

    run = run_settings(args.profile)
    shares = None
    if args.mix is not None:
        if args.text != "mix":
            parser.error("--mix needs --text mix.")
        try:
            shares = check_shares([float(x) for x in args.mix.split(",")])
        except ValueError as err:
            parser.error(f"--mix {args.mix!r}: give three numbers separated by commas, e.g. 0.3,0.2,0.5 ({err}).")
    if args.lines:
        run = replace(run, corpus=replace(run.corpus, num_lines=args.lines))
    if args.lr is not None and args.lr <= 0:
        parser.error(f"--lr must be positive, got {args.lr}.")
    train_config = replace(run.train, steps=args.steps or run.train.steps, lr=args.lr or run.train.lr,
                           max_seconds=None if args.minutes is None else 60 * args.minutes)
    device = get_device()
    seed_everything(train_config.seed)
    name = f"synthesis_{args.profile}.pt" if args.text == "ptb" else f"synthesis_{args.profile}_{args.text}.pt"
    checkpoint = args.checkpoint or build_dir() / "checkpoints" / name
    start = None
    if args.init:
        start, start_scale, start_meta = load_writer(args.init)
        if start.config != run.model:
            raise CheckpointError(f"{args.init} holds a writer of {start.config}, not the profile's {run.model}: "
                                  "pick the profile it was trained with (the shipped writer: --profile writer).")
    train, valid = load_data(run, text=args.text, scale=start_scale if start is not None else None, shares=shares)
    model = HandwritingSynthesizer(run.model).to(device)
    if start is not None and not Path(checkpoint).is_file():
        model.load_state_dict(start.state_dict())
        print(f"starting from {args.init} ({start_meta.get('updates', '?')} updates)")
    print(f"{args.profile}: {model.num_parameters():,} parameters, {len(train)} training lines ({args.text}), "
          f"{len(valid)} validation lines, device {device}")
    valid_subset = type(valid)(valid.texts[:64], valid.strokes[:64], valid.scale)
    snapshots = Path(checkpoint).with_name(Path(checkpoint).stem + "_snapshots")
    init_updates = start_meta.get("updates", 0) if start is not None else 0

    def snapshot(step: int, net) -> None:
        if args.snapshot_every and step % args.snapshot_every == 0:
            export_writer(net, train.scale, snapshots / f"update_{step}.pt",
                          metadata={"profile": args.profile, "text": args.text, "init": str(args.init) if args.init else None,
                                    "updates": init_updates + step, "run_updates": step})
    tick = time.time()
    history = fit(model, random_batches(train, run.model.alphabet, run.batch_size, seed=train_config.seed),
                  train_config, valid_fn=lambda m: evaluate_nll(m, valid_subset), checkpoint=checkpoint, on_checkpoint=snapshot,
                  model_config=run.model, data_settings={"text": args.text, "train_lines": len(train),
                                                         "init": str(args.init) if args.init else None,
                                                         **({"mix": list(shares)} if shares else {})})
    print(f"trained to update {history.step[-1] if history.step else 0} "
          f"({history.seconds[-1] if history.seconds else 0:.0f} s of training; this call {time.time() - tick:.0f} s)")
    if history.valid:
        print("validation:", json.dumps(history.valid[-1]))
    stage = {"text": args.text, "lines": run.corpus.num_lines, "updates": history.step[-1],
             **({"mix": list(shares)} if shares else {}),
             "train_seconds": history.seconds[-1],
             "lr": train_config.lr, "valid": history.valid[-1] if history.valid else {}}
    before = start_meta if start is not None else {}
    earlier = before.get("stages") or ([{k: before.get(k) for k in ("text", "updates", "train_seconds", "valid")}]
                                       if before else [])
    # a writer continued from another counts the updates and seconds of both; "stages" lists each run
    meta = {"profile": args.profile, "text": args.text, "init": str(args.init) if args.init else None,
            "init_updates": before.get("updates", 0),
            "updates": before.get("updates", 0) + history.step[-1],
            "train_seconds": before.get("train_seconds", 0.0) + history.seconds[-1],
            "valid": stage["valid"], "stages": earlier + [stage]}
    if args.evaluate:
        for name, net in (("trained", model), ("untrained", HandwritingSynthesizer(run.model).to(device))):
            meta[f"quality_{name}"] = _report_quality(name, net, train.scale, args.evaluate)
    if args.export:
        print("exported", export_writer(model.cpu(), train.scale, args.export, metadata=meta))


def _report_quality(name: str, model: HandwritingSynthesizer, scale, lines: int) -> dict:
    """`quality_report` on `lines` held-out texts, printed, without the writings (for the file's metadata)."""
    import json

    from .quality import held_out_texts, quality_report

    report = quality_report(model, scale, held_out_texts(lines))
    report.pop("writings")
    print(f"quality ({name}):", json.dumps(report))
    return report


if __name__ == "__main__":
    main()
