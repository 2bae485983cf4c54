"""Reading handwriting back to text: a bidirectional LSTM with a CTC output (Graves et al. 2009, IAM-OnDB).

    p(z | x) = sum over paths pi with B(pi) = z of prod_t y^t_{pi_t}      CTC: B drops repeats, then blanks
    loss     = -ln p(z | x) / |z|                                        nats per character (torch.nn.CTCLoss)

The network reads the pen offsets (dx, dy, end_of_stroke), scaled as the writer scales them
(`OffsetScale`: dx / std_x, dy / std_y), a few points per step, in both directions, and gives at
each step the log-probabilities of the writer's characters and of the blank. Reading a line is
greedy decoding (the likeliest class per step, repeats merged, blanks dropped) or a prefix beam search.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnknownCharactersError
from ..train import TrainConfig
from .strokes import OffsetScale
from .text_sources import TextMix, held_out_set, synthetic_lines, training_texts
from .window import DEFAULT_ALPHABET
from ..runtime import step_seed

BLANK = 0  # CTC class 0 is the blank; class i + 1 is alphabet[i]
PRETRAINED = "recognizer.pt"  # in course_utils/pretrained/, with recognizer.md beside it


@dataclass
class RecognizerConfig:
    alphabet: str = DEFAULT_ALPHABET  # the writer's 95 characters; the output has one more class, the blank
    frames_per_step: int = 4  # pen points the LSTM reads per step (Graves 2009: 1; 4 is 4x faster on a CPU)
    hidden_size: int = 128  # LSTM units per direction and layer (Graves 2009: 100)
    num_layers: int = 2  # stacked bidirectional layers (Graves 2009: 1)
    dropout: float = 0.0  # between LSTM layers, during training only
    std_x: float = 1.0  # the offset scale (`OffsetScale.fit` on the training lines): set by the training command
    std_y: float = 1.0  # the same for dy


def encode_targets(texts: list[str], alphabet: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Texts to CTC targets: class ids (B, U) padded with the blank, and lengths (B,)."""
    index = {c: i + 1 for i, c in enumerate(alphabet)}
    unknown = sorted({c for t in texts for c in t} - set(index))
    if unknown:
        raise UnknownCharactersError(f"The text holds characters the recognizer cannot read: {unknown}. "
                                     f"It reads only these {len(alphabet)} characters: {alphabet!r}")
    if any(not t for t in texts):
        raise ValueError("a text is empty: every line needs at least one character to read.")
    targets = torch.full((len(texts), max(len(t) for t in texts)), BLANK, dtype=torch.long)
    for b, t in enumerate(texts):
        targets[b, :len(t)] = torch.tensor([index[c] for c in t])
    return targets, torch.tensor([len(t) for t in texts])


def min_steps(text: str) -> int:
    """The fewest output steps CTC needs for `text`: one per character, plus a blank between repeats."""
    return len(text) + sum(a == b for a, b in zip(text, text[1:]))


def ctc_loss(logits, logit_lengths, targets, target_lengths) -> torch.Tensor:
    """-ln p(targets | strokes) / target length, averaged over lines.

    logits (B, T, C + 1); logit_lengths (B,); targets (B, U) class ids; target_lengths (B,)."""
    log_probs = F.log_softmax(logits, dim=-1).transpose(0, 1)  # (T, B, C + 1), as CTCLoss wants
    return nn.CTCLoss(blank=BLANK, reduction="mean")(log_probs, targets, logit_lengths, target_lengths)


class Recognizer(nn.Module):
    """``forward(strokes, lengths, targets=None, target_lengths=None) -> (logits, loss)``.

    strokes (B, T, 3) pen offsets in the data's units (font or tablet units, zero-padded), lengths (B,)
    points per line; logits (B, ceil(T / k), C + 1) for k = frames_per_step; loss in nats per character.
    """

    def __init__(self, config: RecognizerConfig = RecognizerConfig()):
        super().__init__()
        self.config = config
        if config.frames_per_step < 1 or config.num_layers < 1:
            raise ValueError(f"frames_per_step and num_layers must be at least 1, got {config.frames_per_step} "
                             f"and {config.num_layers}.")
        H, inputs = config.hidden_size, 3 * config.frames_per_step

        def stack():  # one LSTM per layer; the upper layers read both directions of the layer below
            return nn.ModuleList(nn.LSTM(inputs if i == 0 else 2 * H, H, batch_first=True) for i in range(config.num_layers))

        # the backward direction reads each line reversed within its length (see `reverse_lines`)
        self.forward_layers, self.backward_layers = stack(), stack()
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * config.hidden_size, len(config.alphabet) + 1)

    def step_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output steps of lines of `lengths` points: ceil(length / frames_per_step)."""
        return (lengths + self.config.frames_per_step - 1) // self.config.frames_per_step

    def forward(self, strokes, lengths, targets=None, target_lengths=None):
        if strokes.ndim != 3 or strokes.shape[-1] != 3:
            raise ValueError(f"strokes must have shape (B, T, 3) = (dx, dy, end_of_stroke), got {tuple(strokes.shape)}.")
        k, (B, T, _) = self.config.frames_per_step, strokes.shape
        x = strokes / strokes.new_tensor([self.config.std_x, self.config.std_y, 1.0])
        x = F.pad(x, (0, 0, 0, (-T) % k)).reshape(B, -1, 3 * k)  # (B, T', 3k): k points per step
        steps = self.step_lengths(lengths.cpu())
        # padded, not packed: packed sequences made the LSTM 5x slower on a CPU
        h = x
        for i, (fw, bw) in enumerate(zip(self.forward_layers, self.backward_layers)):
            h = self.dropout(h) if i > 0 else h
            h = torch.cat([fw(h)[0], reverse_lines(bw(reverse_lines(h, steps))[0], steps)], -1)  # (B, T', 2H)
        logits = self.head(h)  # (B, T', C + 1)
        if targets is None:
            return logits, None
        texts = [[int(c) for c in row[:n]] for row, n in zip(targets.cpu(), target_lengths.cpu())]
        short = [b for b, t in enumerate(texts) if int(steps[b]) < min_steps(t)]
        if short:
            b = short[0]
            raise ValueError(f"{len(short)} lines are too short for their text: line {b} has {int(lengths[b])} "
                             f"points, {int(steps[b])} steps at frames_per_step={k}, but CTC needs "
                             f"{min_steps(texts[b])}. Lower frames_per_step, or drop such lines.")
        return logits, ctc_loss(logits, steps.to(logits.device), targets, target_lengths)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def read(self, strokes, *, beam_width: int | None = None, batch_size: int = 32):
        """The text of a line, (T, 3) pen offsets in the data's units -> str; or of a list of lines -> list[str].

        Greedy (best path) decoding, or prefix beam search with `beam_width`. The writer's lines are in its
        scaled units: read `scale.invert(writing.strokes)`."""
        single = not isinstance(strokes, (list, tuple))
        lines = [_check_line(s, i) for i, s in enumerate([strokes] if single else strokes)]
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        order = sorted(range(len(lines)), key=lambda i: len(lines[i]))  # similar lengths share a batch
        out: list[str] = [""] * len(lines)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            x, lengths = pad_lines([lines[j] for j in idx])
            logits, _ = self(x.to(device), lengths)
            steps = self.step_lengths(lengths)
            texts = (greedy_decode(logits, steps, self.config.alphabet) if beam_width is None
                     else beam_decode(logits, steps, self.config.alphabet, beam_width))
            for j, text in zip(idx, texts):
                out[j] = text
        self.train(was_training)
        return out[0] if single else out

    def cer(self, texts: list[str], strokes: list, *, beam_width: int | None = None) -> float:
        """Character error rate of reading `strokes` against `texts`: total edit distance / total length."""
        if len(texts) != len(strokes):
            raise ValueError(f"{len(texts)} texts but {len(strokes)} lines: they must pair up.")
        encode_targets(texts, self.config.alphabet)  # a reference the recognizer cannot read is an error
        return character_error_rate(texts, self.read(list(strokes), beam_width=beam_width))


def reverse_lines(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each line of x (B, T, D) within its length, padding left in place: the backward LSTM then reads
    the line from its last step, never the padding first, and its outputs reversed back line up with x."""
    t = torch.arange(x.shape[1])
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t).to(x.device)  # (B, T)
    return x.gather(1, idx[..., None].expand(-1, -1, x.shape[2]))


def _check_line(strokes, i: int) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(strokes, dtype=np.float32))
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"line {i}: strokes must have shape (T, 3) = (dx, dy, end_of_stroke), got {tuple(x.shape)}.")
    if len(x) == 0:
        raise ValueError(f"line {i} has no points: there is nothing to read.")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"line {i} holds NaN or infinite offsets.")
    return x


def pad_lines(lines: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(T_i, 3) lines -> zero-padded strokes (B, T, 3) and lengths (B,)."""
    return nn.utils.rnn.pad_sequence(lines, batch_first=True), torch.tensor([len(s) for s in lines])


def greedy_decode(logits, lengths, alphabet: str) -> list[str]:
    """Best path decoding: the likeliest class per step, repeats merged, blanks dropped.

    logits (B, T, C + 1); lengths (B,) valid steps per line."""
    best = logits.argmax(-1).cpu()  # (B, T)
    out = []
    for row, n in zip(best, lengths.tolist()):
        path = row[:n].tolist()
        out.append("".join(alphabet[c - 1] for i, c in enumerate(path) if c != BLANK and (i == 0 or c != path[i - 1])))
    return out


def beam_decode(logits, lengths, alphabet: str, beam_width: int = 8) -> list[str]:
    """Prefix beam search: the likeliest labelling among `beam_width` kept per step, each scored by the sum
    over all its alignments (ending in a blank or not), where best path decoding scores one alignment only.

    logits (B, T, C + 1); lengths (B,) valid steps per line."""
    if beam_width < 1:
        raise ValueError(f"beam_width must be at least 1, got {beam_width}.")
    add, none = np.logaddexp, -math.inf
    out = []
    for lp, n in zip(F.log_softmax(logits.detach().float(), -1).cpu(), lengths.tolist()):
        beams = {(): (0.0, none)}  # prefix -> (log p of its paths ending in a blank, ... in its last character)
        for t in range(n):
            row = lp[t].tolist()
            grown: dict[tuple, list[float]] = {}
            for prefix, (blank, last) in beams.items():
                entry = grown.setdefault(prefix, [none, none])
                entry[0] = add(entry[0], add(blank, last) + row[BLANK])
                for c in lp[t, 1:].topk(min(beam_width, len(alphabet))).indices.add(1).tolist():
                    new = grown.setdefault(prefix + (c,), [none, none])
                    if prefix and prefix[-1] == c:  # a repeat needs a blank between: "aa" only after "a-"
                        new[1] = add(new[1], blank + row[c])
                        entry[1] = add(entry[1], last + row[c])  # "a" + "a" stays "a"
                    else:
                        new[1] = add(new[1], add(blank, last) + row[c])
            beams = dict(sorted(grown.items(), key=lambda kv: -add(*kv[1]))[:beam_width])
        best = max(beams, key=lambda prefix: add(*beams[prefix]))
        out.append("".join(alphabet[c - 1] for c in best))
    return out


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions that turn a into b."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Sum of edit distances over a set of lines / sum of the reference lengths."""
    if len(references) != len(hypotheses) or not references:
        raise ValueError(f"need as many hypotheses as references, at least one: got {len(hypotheses)} and "
                         f"{len(references)}.")
    total = sum(len(r) for r in references)
    if total == 0:
        raise ValueError("the references are all empty: the error rate is undefined.")
    return sum(edit_distance(r, h) for r, h in zip(references, hypotheses)) / total


# ---------------------------------------------------------------- batches, evaluation
def make_batch(texts: list[str], strokes: list, alphabet: str):
    """Lines -> (strokes (B, T, 3), lengths (B,), targets (B, U), target_lengths (B,)), the model's arguments."""
    x, lengths = pad_lines([_check_line(s, i) for i, s in enumerate(strokes)])
    return (x, lengths, *encode_targets(texts, alphabet))


def synthetic_batches(pools, mix: TextMix, alphabet: str, batch_size: int, *, seed: int = 0):
    """`batch_fn(step)` for `train.fit`: new lines by new writers at every step; the same for the same step."""
    def batch_fn(step: int):
        lines = synthetic_lines(pools, mix, batch_size, np.random.default_rng([0, seed, step]))
        return make_batch([ln["text"] for ln in lines], [ln["strokes"] for ln in lines], alphabet)

    return batch_fn


def line_batches(texts: list[str], strokes: list, alphabet: str, batch_size: int, *, seed: int = 0):
    """`batch_fn(step)` for `train.fit` over fixed lines (IAM): random lines, the same for the same step."""
    def batch_fn(step: int):
        g = torch.Generator().manual_seed(step_seed(seed, step))
        idx = torch.randint(len(texts), (batch_size,), generator=g).tolist()
        return make_batch([texts[i] for i in idx], [strokes[i] for i in idx], alphabet)

    return batch_fn


@torch.no_grad()
def evaluate(model: Recognizer, texts: list[str], strokes: list, *, batch_size: int = 32) -> dict[str, float]:
    """CTC loss (nats per character, mean over lines) and greedy CER of a set of lines."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, len(texts), batch_size):
        batch = make_batch(texts[i:i + batch_size], strokes[i:i + batch_size], model.config.alphabet)
        total += float(model(*(b.to(device) for b in batch))[1]) * len(batch[0])
    model.train(was_training)
    return {"loss": total / len(texts), "cer": model.cer(texts, strokes)}


def iam_sets(root, config: RecognizerConfig, *, valid_fraction: float = 0.05, seed: int = 0):
    """IAM-OnDB lines (see `iam.load_iam`) -> (training set, validation set) in tablet units, with the
    lines the recognizer cannot learn from left out, with a warning: characters outside its alphabet,
    or fewer output steps than the text needs (`min_steps`)."""
    import warnings

    from .data import split_lines
    from .iam import load_iam

    lines, dropped = [], []
    for line in load_iam(root):
        steps = -(-len(line.strokes) // config.frames_per_step)
        ok = line.text and set(line.text) <= set(config.alphabet) and steps >= min_steps(line.text)
        (lines if ok else dropped).append(line)
    if dropped:
        warnings.warn(f"{len(dropped)} of {len(lines) + len(dropped)} IAM lines left out (characters outside the "
                      f"alphabet, or too few points at frames_per_step={config.frames_per_step}), "
                      f"e.g. {dropped[0].id}: {dropped[0].text!r}.", stacklevel=2)
    # scale=OffsetScale() keeps the tablet units: the recognizer scales its input itself
    return split_lines([ln.text for ln in lines], [ln.strokes for ln in lines], valid_fraction=valid_fraction,
                       seed=seed, scale=OffsetScale())


# ---------------------------------------------------------------- saving and loading
def save_recognizer(model: Recognizer, path, *, metadata: dict | None = None):
    """Write a small inference file: float16 weights, the config (with its offset scale) and metadata."""
    from ..train import save_checkpoint

    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    return save_checkpoint(path, {"model": state, "model_config": asdict(model.config), "metadata": metadata or {}})


def pretrained_path():
    from .. import pretrained

    return pretrained.path(PRETRAINED)


def load_recognizer(path=None, device=None) -> Recognizer:
    """A recognizer from an exported file or a training checkpoint (default: the shipped one), in eval mode.

    Loaded without executing code (weights only); `.metadata` holds what the export stored."""
    from ..train import CheckpointError, load_checkpoint

    path = path or pretrained_path()
    saved = load_checkpoint(path)
    names = {f.name for f in fields(RecognizerConfig)}
    config = saved.get("model_config")
    if not isinstance(config, dict) or set(config) != names:
        found = sorted(config) if isinstance(config, dict) else config
        raise CheckpointError(f"{path} is not a recognizer: its model config has {found}, a recognizer's has "
                              f"{sorted(names)}. Pass a file written by save_recognizer or by the training command.")
    model = Recognizer(RecognizerConfig(**config))
    try:
        model.load_state_dict({k: v.float() for k, v in saved["model"].items()})
    except RuntimeError as err:
        raise CheckpointError(f"{path}: the weights do not fit the config stored with them ({str(err)[:200]}).") from err
    model.metadata = saved.get("metadata", {})
    return model.to(device or "cpu").eval()


# ---------------------------------------------------------------- the training command
@dataclass
class RecognizerRun:
    """What the training command trains: the model, the texts, the loop and the batch size."""

    model: RecognizerConfig
    text: TextMix
    train: TrainConfig
    batch_size: int = 16  # lines per update
    valid_lines: int = 64  # validation lines (training writers' distribution, other writers), for history
    scale_lines: int = 128  # training lines the offset scale is fitted on


def run_settings() -> RecognizerRun:
    """The shipped recognizer's settings: 2 x 128 bidirectional LSTM, Adam, batch 16. On one CPU thread of the
    reference machine an update took 0.44 s; 5,460 updates (40 min) reached a CER of 0.12% on `held_out_set(100)`."""
    return RecognizerRun(RecognizerConfig(), TextMix(),
                         TrainConfig(steps=6000, lr=2e-3, lr_decay=0.5, lr_decay_every=2000, clip_norm=1.0,
                                     valid_every=500, checkpoint_every=100))


def main(argv=None) -> None:
    """Train the recognizer (synthetic writers, or IAM-OnDB with --iam), resuming from its checkpoint."""
    import argparse
    import json

    from ..runtime import build_dir, get_device
    from ..train import fit

    parser = argparse.ArgumentParser(prog="python -m course_utils.handwriting.recognizer", description=main.__doc__)
    parser.add_argument("--minutes", type=float, default=None, help="stop after this much training time")
    parser.add_argument("--steps", type=int, default=None, help="number of updates (default: 6,000)")
    parser.add_argument("--batch-size", type=int, default=None, help="lines per update (default: 16)")
    parser.add_argument("--checkpoint", default=None, help="where to save and resume (default: build/checkpoints)")
    parser.add_argument("--export", default=None, help="write the small inference file here after training")
    parser.add_argument("--evaluate", type=int, default=0, metavar="N",
                        help="after training, the CER on N held-out lines (IAM: N validation lines)")
    parser.add_argument("--iam", default=None, metavar="DIR", help="train and evaluate on IAM-OnDB in DIR")
    args = parser.parse_args(argv)

    run = run_settings()
    train_config = replace(run.train, steps=args.steps or run.train.steps,
                           max_seconds=None if args.minutes is None else 60 * args.minutes)
    batch_size = args.batch_size or run.batch_size
    if args.iam:
        train, valid = iam_sets(args.iam, run.model, seed=train_config.seed)
        config = replace(run.model, **_scale_fields([s.numpy() for s in train.strokes]))
        batch_fn = line_batches(train.texts, train.strokes, config.alphabet, batch_size, seed=train_config.seed)
        valid_texts, valid_strokes = valid.texts[:run.valid_lines], valid.strokes[:run.valid_lines]
        source = f"IAM-OnDB {args.iam}: {len(train)} training lines, {len(valid)} validation lines"
    else:
        pools = training_texts(run.text, seed=train_config.seed)
        fitted = synthetic_lines(pools, run.text, run.scale_lines, np.random.default_rng([3, train_config.seed]))
        config = replace(run.model, **_scale_fields([ln["strokes"] for ln in fitted]))
        batch_fn = synthetic_batches(pools, run.text, config.alphabet, batch_size, seed=train_config.seed)
        lines = synthetic_lines(pools, run.text, run.valid_lines, np.random.default_rng([1, train_config.seed]))
        valid_texts, valid_strokes = [ln["text"] for ln in lines], [ln["strokes"] for ln in lines]
        source = "synthetic writers, new lines every update"
    device = get_device()
    model = Recognizer(config).to(device)
    print(f"recognizer: {model.num_parameters():,} parameters, {source}, device {device}")
    checkpoint = args.checkpoint or build_dir() / "checkpoints" / ("recognizer_iam.pt" if args.iam else "recognizer.pt")
    history = fit(model, batch_fn, train_config, valid_fn=lambda m: evaluate(m, valid_texts, valid_strokes),
                  checkpoint=checkpoint, model_config=config)
    done, seconds = (history.step[-1], history.seconds[-1]) if history.step else (0, 0.0)
    print(f"trained to update {done} ({seconds:.0f} s of training)")
    meta = {"data": "iam" if args.iam else "synthetic", "updates": done, "train_seconds": seconds,
            "valid": history.valid[-1] if history.valid else {}}
    print("validation:", json.dumps(meta["valid"]))
    if args.evaluate:
        if args.iam:
            scores = {"lines": min(args.evaluate, len(valid)),
                      "cer": model.cer(valid.texts[:args.evaluate], valid.strokes[:args.evaluate])}
        else:
            held = held_out_set(args.evaluate)
            scores = {"lines": len(held), "cer": model.cer([h["text"] for h in held], [h["strokes"] for h in held])}
            for part in ("ptb", "austen", "everyday"):
                some = [h for h in held if h["source"] == part]
                if some:
                    scores[f"cer_{part}"] = model.cer([h["text"] for h in some], [h["strokes"] for h in some])
        print("held-out:" if not args.iam else "IAM validation:", json.dumps(scores))
        meta["evaluation"] = scores
    if args.export:
        print("exported", save_recognizer(model.cpu(), args.export, metadata=meta))


def _scale_fields(strokes: list) -> dict[str, float]:
    scale = OffsetScale.fit(strokes)
    return {"std_x": scale.std_x, "std_y": scale.std_y}


if __name__ == "__main__":
    main()
