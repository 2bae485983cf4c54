"""Training Graves' synthesis network: the profiles (quick, writer, full), the synthetic corpora, batches of
whole lines, and the command that trains, resumes, snapshots, averages and exports a writer.

    python -m course_utils.handwriting.train_writer --profile writer --minutes 900
    python -m course_utils.handwriting.train_writer --profile writer --text mix --init course_utils/pretrained/writer.pt \
        --lr 2.5e-4 --steps 800 --snapshot-every 200 --checkpoint run.pt --export writer.pt

(`python -m course_utils.handwriting.synthesis` runs the same command: the model cards' commands name it.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..runtime import step_seed
from ..train import TrainConfig
from .synthesis import HandwritingSynthesizer, SynthesisConfig, average_writers, evaluate_nll, export_writer, load_writer
from .synthetic import SyntheticConfig
from .window import encode_texts


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


# ---------------------------------------------------------------- profiles
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
              shares: tuple[float, float, float] | None = None, fonts: tuple[str, ...] | None = None):
    """The corpus of a profile (or IAM when IAM_ONDB_DIR is set), split into training and validation sets.

    text="ptb": Penn Treebank sentences (the shipped writer's corpus); "mix": the recognizer's mix of Penn
    Treebank, Jane Austen and made-up everyday sentences with capitals, digits and signs (`text_sources.TextMix`,
    held-out texts excluded; only the first line of a sentence starts with a capital), each line by a new
    synthetic writer; `shares` = (ptb, austen, everyday): the mix's shares of the three sources (default:
    `TextMix`'s 0.4, 0.3, 0.3). `fonts`: with text="mix", the fonts its writers draw from (names of
    `synthetic.FONTS`, default all three, in `synthetic.FONT_WEIGHTS`' proportions). `scale`: the offset
    scale of a writer to continue (default: fitted on the training lines)."""
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
    if fonts is not None and text != "mix":
        raise ValueError(f"fonts={fonts} apply to text='mix' only, not to text={text!r}.")
    if os.environ.get(iam.IAM_ENV):
        lines = iam.load_iam()
        texts, strokes = [ln.text for ln in lines], [ln.strokes for ln in lines]
    elif text == "mix":
        from .synthetic import font_weights
        from .text_sources import TextMix, synthetic_lines, training_texts

        # the everyday sentences hold 15 to 50 characters: lines of at least 30 let them in (the quick profile's 14 would not)
        # lines that go on a sentence start in lower case, as Graves' slide lines do ("would find the bus ...")
        mix = TextMix(min_chars=run.corpus.min_chars, max_chars=max(run.corpus.max_chars, 30), capitalize="sentences",
                      **dict(zip(("ptb", "austen", "everyday"), shares or ())))
        lines = synthetic_lines(training_texts(mix, seed=run.corpus.seed), mix, run.corpus.num_lines,
                                np.random.default_rng([4, run.corpus.seed]),
                                font_weights=None if fonts is None else font_weights(fonts))
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


def main(argv=None) -> None:
    """Train a synthesis network from the command line, resuming from its checkpoint, and export it."""
    import argparse
    import json
    import time
    from dataclasses import replace

    from pathlib import Path

    from ..runtime import build_dir, get_device, seed_everything
    from ..train import CheckpointError, fit
    from .synthetic import font_weights

    parser = argparse.ArgumentParser(prog="python -m course_utils.handwriting.train_writer", description=main.__doc__)
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
    parser.add_argument("--fonts", default=None, metavar="FONT,FONT",
                        help="with --text mix: the fonts of the synthetic writers (default scripts,scriptc,cursive)")
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
    fonts = None
    if args.fonts is not None:
        if args.text != "mix":
            parser.error("--fonts needs --text mix.")
        fonts = tuple(f.strip() for f in args.fonts.split(","))
        try:
            font_weights(fonts)
        except ValueError as err:
            parser.error(f"--fonts {args.fonts!r}: {err}")
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
    train, valid = load_data(run, text=args.text, scale=start_scale if start is not None else None, shares=shares,
                             fonts=fonts)
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
                                                         **({"mix": list(shares)} if shares else {}),
                                                         **({"fonts": list(fonts)} if fonts else {})})
    print(f"trained to update {history.step[-1] if history.step else 0} "
          f"({history.seconds[-1] if history.seconds else 0:.0f} s of training; this call {time.time() - tick:.0f} s)")
    if history.valid:
        print("validation:", json.dumps(history.valid[-1]))
    stage = {"text": args.text, "lines": run.corpus.num_lines, "updates": history.step[-1],
             **({"mix": list(shares)} if shares else {}),
             **({"fonts": list(fonts)} if fonts else {}),
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
