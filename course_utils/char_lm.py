"""Character-level language model of Graves (2013), section 3: stacked LSTM, softmax output.

Pr(x_{t+1} = k | y_t) = softmax(y_hat_t)_k,   L(x) = -sum_t log y_t^{x_{t+1}}
"""
from __future__ import annotations

import html
import math
import numbers
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .text import Vocab, num_windows, tbptt_batch, to_streams
from .train import TrainConfig


@dataclass
class CharLMConfig:
    vocab_size: int = 50  # K, characters in the vocabulary (one-hot input and softmax output)
    hidden_size: int = 256  # LSTM units per layer
    num_layers: int = 2  # stacked LSTM layers
    skip_connections: bool = False  # Graves: input to every layer, every layer to the output
    dropout: float = 0.0  # dropout between layers and before the output (0: none, as in Graves)


class CharLM(nn.Module):
    """Stacked LSTM over one-hot characters; ``forward(x, targets, state) -> (logits, loss, state)``."""

    def __init__(self, config: CharLMConfig):
        super().__init__()
        self.config = config
        V, H, L = config.vocab_size, config.hidden_size, config.num_layers
        if config.skip_connections:
            # layer 1 reads x; layer l > 1 reads x and h^{l-1}; the output reads every h^l
            self.layers = nn.ModuleList(nn.LSTM(V if l == 0 else V + H, H, batch_first=True) for l in range(L))
            self.head = nn.Linear(L * H, V)
        else:
            self.lstm = nn.LSTM(V, H, num_layers=L, batch_first=True, dropout=config.dropout if L > 1 else 0.0)
            self.head = nn.Linear(H, V)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, targets=None, state=None):
        """x: (B, T) ids -> logits (B, T, V); loss is the mean cross-entropy in nats per character."""
        inputs = F.one_hot(x, self.config.vocab_size).float()  # (B, T, V)
        if self.config.skip_connections:
            states = state if state is not None else [None] * len(self.layers)
            outputs, new_state, below = [], [], None
            for layer, s in zip(self.layers, states):
                h, s = layer(inputs if below is None else torch.cat([inputs, self.drop(below)], -1), s)
                outputs.append(h)
                new_state.append(s)
                below = h
            features = torch.cat(outputs, -1)  # (B, T, L*H)
        else:
            features, new_state = self.lstm(inputs, state)  # (B, T, H)
        logits = self.head(self.drop(features))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss, new_state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------- metrics
def bits_per_character(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of -log2 Pr(x_{t+1} | y_t): logits (..., V), targets (...) -> scalar."""
    log_probs = F.log_softmax(logits, dim=-1)
    nats = -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
    return nats / math.log(2)


def perplexity(bpc: float, word_length: float) -> float:
    """Word-level perplexity from bits per character: 2^(w * BPC), w characters per word."""
    return 2.0 ** (word_length * bpc)


@torch.no_grad()
def evaluate_bpc(model: CharLM, ids: torch.Tensor, *, batch_size: int = 16, seq_len: int = 200,
                 max_chars: int | None = None) -> float:
    """BPC over a whole id sequence, cut into `batch_size` streams read with a carried state.

    Every character but the first of each stream is predicted. `max_chars` reads only a
    prefix (for quick validation during training).
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    if max_chars is not None:
        ids = ids[:max_chars]
    streams = to_streams(ids, batch_size)
    total_nats, count, state = 0.0, 0, None
    windows = num_windows(streams, seq_len)
    for w in range(windows + 1):  # the last, shorter window reads what is left
        start = w * seq_len
        x = streams[:, start:start + seq_len]
        y = streams[:, start + 1:start + seq_len + 1]
        x = x[:, : y.shape[1]]
        if y.shape[1] == 0:
            break
        logits, _, state = model(x.to(device), state=state)
        log_probs = F.log_softmax(logits, -1)
        total_nats -= log_probs.gather(-1, y.to(device).unsqueeze(-1)).sum().item()
        count += y.numel()
    model.train(was_training)
    return total_nats / count / math.log(2)


# ---------------------------------------------------------------- sampling
@torch.no_grad()
def sample(model: CharLM, vocab: Vocab, prime: str = "\n", length: int = 200, *, temperature: float = 1.0,
           generator: torch.Generator | None = None) -> str:
    """Continue `prime` by `length` characters drawn from softmax(logits / temperature).

    A temperature near 0 picks the most likely character every time; 1 samples the model as it is."""
    if not prime:
        raise ValueError("The priming text is empty; give at least one character, e.g. '\\n'.")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not 0 < temperature < math.inf:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}; use e.g. 0.5 (careful) "
                         "to 1.5 (wild).")
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
        raise ValueError(f"length must be a whole number of characters >= 0, got {length!r}.")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    ids = vocab.encode(prime).to(device).unsqueeze(0)  # (1, T)
    logits, _, state = model(ids)
    out = []
    for _ in range(length):
        # shifted so the largest logit is 0: a tiny temperature sends the others to -inf, never to inf - inf
        scaled = (logits[0, -1] - logits[0, -1].max()).double()  # float64: a temperature like 1e-300 is not 0
        probs = F.softmax(scaled / temperature, dim=-1).cpu()
        nxt = torch.multinomial(probs, 1, generator=generator)
        out.append(int(nxt))
        logits, _, state = model(nxt.view(1, 1).to(device), state=state)
    model.train(was_training)
    return prime + vocab.decode(out)


@torch.no_grad()
def surprisal(model: CharLM, vocab: Vocab, text: str) -> list[float]:
    """-log2 Pr of each character of `text` after the first, given those before it."""
    device = next(model.parameters()).device
    ids = vocab.encode(text).to(device).unsqueeze(0)
    was_training = model.training
    model.eval()
    logits, _, _ = model(ids[:, :-1])
    model.train(was_training)
    log_probs = F.log_softmax(logits[0], -1)
    return (-log_probs.gather(-1, ids[0, 1:, None])[:, 0] / math.log(2)).tolist()


def surprisal_html(text: str, bits: list[float], max_bits: float = 8.0) -> str:
    """HTML for `text` with each character (after the first) on a background as red as its surprisal."""
    spans = [html.escape(text[0])]
    for ch, b in zip(text[1:], bits):
        alpha = min(b / max_bits, 1.0)
        shown = "&nbsp;" if ch == " " else ("<br>" if ch == "\n" else html.escape(ch))
        spans.append(f'<span title="{b:.2f} bits" style="background: rgba(220,40,40,{alpha:.2f})">{shown}</span>')
    legend = f"<div style='font-size: 80%'>white: 0 bits, red: {max_bits:g} bits or more (hover for values)</div>"
    return "<div style='font-family: monospace; line-height: 1.6'>" + "".join(spans) + "</div>" + legend


def train_batches(text_ids: torch.Tensor, batch_size: int, seq_len: int):
    """`batch_fn(step)` for `train.fit`: consecutive windows of `batch_size` streams (truncated BPTT)."""
    streams = to_streams(text_ids, batch_size)
    return lambda step: tbptt_batch(streams, step, seq_len)


# ---------------------------------------------------------------- profiles and the command line
@dataclass
class CharLMRun:
    """Everything one profile trains: the model, the loop and the batches."""

    model: CharLMConfig
    train: TrainConfig
    batch_size: int = 32  # streams read in parallel
    seq_len: int = 100  # truncated BPTT window (characters per update)


PROFILES = ("quick", "hour", "full", "quick_v1")


def run_settings(profile: str, vocab_size: int) -> CharLMRun:
    """Quick: 2 x 256 LSTM for a few minutes on a laptop CPU. Hour: 2 x 512 for about an hour of a CPU.
    Full: Graves' PTB size, 1 x 1000 (a GPU job).
    quick_v1: the quick profile of version 0.1 (1.79 test BPC), kept to measure the current one against."""
    if profile in ("quick", "quick_v1"):
        # Windows of 25 characters: twice the updates of 50 in the same time (a step costs about its length
        # on a CPU), and a higher learning rate halved 3 times: 1.65 test BPC where quick_v1 reaches 1.79
        # in about the same training time (README, section 01).
        quick = CharLMRun(
            CharLMConfig(vocab_size, hidden_size=256, num_layers=2),
            TrainConfig(steps=3300, lr=6e-3, lr_decay=0.5, lr_decay_every=825, clip_norm=1.0, carry_state=True,
                        valid_every=300, checkpoint_every=300),
            batch_size=32, seq_len=25,
        )
        if profile == "quick":
            return quick
        return replace(quick, seq_len=50, train=replace(quick.train, steps=1800, lr=4e-3, lr_decay_every=600,
                                                        valid_every=250, checkpoint_every=250))
    if profile == "hour":
        # About an hour of one CPU thread (about 290 ms per update here): two layers of 512 read 1.4 times as many
        # characters per second as Graves' 1 x 1000, and windows of 50 give 2.6 times its updates.
        # (At learning rate 4e-3 this network diverged near update 2,500.)
        return CharLMRun(
            CharLMConfig(vocab_size, hidden_size=512, num_layers=2),
            TrainConfig(steps=10_400, lr=2e-3, lr_decay=0.5, lr_decay_every=2600, clip_norm=1.0, carry_state=True,
                        valid_every=500, checkpoint_every=500),
            batch_size=32, seq_len=50,
        )
    if profile == "full":
        return CharLMRun(
            CharLMConfig(vocab_size, hidden_size=1000, num_layers=1),
            TrainConfig(steps=30_000, lr=2e-3, lr_decay=0.5, lr_decay_every=10_000, clip_norm=1.0,
                        carry_state=True, valid_every=500, checkpoint_every=250),
        )
    raise ValueError(f"profile={profile!r} is not a profile; use one of {PROFILES}.")


def main(argv=None) -> None:
    """Train on Penn Treebank characters (or enwik8 bytes), resuming from the checkpoint, and print the test BPC."""
    import argparse
    import json
    import time
    from dataclasses import asdict
    from pathlib import Path

    from .runtime import build_dir, get_device, get_profile
    from . import text
    from .text import average_word_length, load_ptb
    from .train import fit

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--profile", default=get_profile(), choices=PROFILES,
                        help="quick (minutes on a CPU), hour (an hour on a CPU), full (Graves' size; a GPU) "
                             "or quick_v1 (the quick profile of 0.1)")
    parser.add_argument("--minutes", type=float, default=None, help="stop training after this much time")
    parser.add_argument("--steps", type=int, default=None, help="override the profile's number of updates")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: build/checkpoints/ptb_<profile>.pt")
    parser.add_argument("--eval-chars", type=int, default=None, help="evaluate on this many characters (default: all)")
    parser.add_argument("--data", default="ptb", choices=("ptb", "enwik8"),
                        help="ptb (default) or enwik8: the Hutter Prize Wikipedia bytes, 90/5/5 split")
    parser.add_argument("--enwik8", type=Path, default=None,
                        help="enwik8.zip or enwik8 (default: the data cache; fetched there with --download)")
    parser.add_argument("--download", action="store_true", help="with --data enwik8: download it if missing (36 MB)")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"),
                        help="bfloat16: autocast, faster on some CPUs and GPUs and slower on others (measure)")
    args = parser.parse_args(argv)

    if args.data == "enwik8":  # each byte one symbol, as Graves (2013, section 3.2) reads Wikipedia
        raw = text.load_enwik8(args.enwik8, download=args.download, md5=text.ENWIK8_MD5)
        splits = {s: b.decode("latin-1") for s, b in raw.items()}
    else:
        splits = {s: load_ptb(s) for s in ("train", "valid", "test")}
    # enwik8: the symbols are the bytes that occur anywhere (a few rare ones are missing from training)
    vocab = Vocab(set().union(*splits.values())) if args.data == "enwik8" else Vocab.from_text(splits["train"])
    ids = {s: vocab.encode(t) for s, t in splits.items()}
    run = run_settings(args.profile, len(vocab))
    steps = args.steps or run.train.steps
    device = get_device()
    cfg = replace(run.train, progress=False, steps=steps, autocast="bfloat16" if args.precision == "bfloat16" else None,
                  lr_decay_every=max(1, run.train.lr_decay_every * steps // run.train.steps),  # same schedule shape
                  max_seconds=None if args.minutes is None else 60 * args.minutes)
    ckpt = args.checkpoint or build_dir() / "checkpoints" / f"{args.data}_{args.profile}.pt"
    torch.manual_seed(cfg.seed)
    model = CharLM(run.model).to(device)
    print(f"{args.profile}: {run.model}, {model.num_parameters():,} parameters, {cfg.steps} steps, device {device}")
    tick = time.time()
    history = fit(model, train_batches(ids["train"], run.batch_size, run.seq_len), cfg, checkpoint=ckpt,
                  model_config=run.model, data_settings={"data": args.data, "batch_size": run.batch_size,
                                                         "seq_len": run.seq_len},
                  valid_fn=lambda m: {"bpc": evaluate_bpc(m, ids["valid"], max_chars=100_000)})
    valid_bpc = evaluate_bpc(model, ids["valid"], max_chars=args.eval_chars)
    test_bpc = evaluate_bpc(model, ids["test"], max_chars=args.eval_chars)
    summary = {"data": args.data, "profile": args.profile, "steps": history.step[-1], "train_seconds": history.seconds[-1],
               "wall_seconds_this_run": time.time() - tick, "parameters": model.num_parameters(),
               "eval_chars": args.eval_chars or "all", "valid_bpc": valid_bpc, "test_bpc": test_bpc,
               "test_perplexity": perplexity(test_bpc, average_word_length(splits["test"])),
               "model": asdict(run.model), "train": asdict(cfg), "checkpoint": str(ckpt)}
    print(json.dumps(summary, indent=2))
    ckpt.with_suffix(".json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
