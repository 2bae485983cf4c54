"""How far a CPU gets: ways of training on from the shipped mel-only V3, each given the same training time.

    python -m course_utils.hifigan.study --arm gan_dwarm --minutes 45 --points 5
    python -m course_utils.hifigan.study --table --export course_utils/pretrained/vocoder_study.json
    python -m course_utils.hifigan.study --arm mpd_pitch --other-voice --minutes 297 --points 33 \
        --restart-from course_utils/pretrained/vocoder_v3_gan_cpu.pt   # a new machine: go on from the shipped point
    python -m course_utils.hifigan.study --arm mpd_stft32_lower_lr --other-voice --minutes 558 --points 62 \
        --restart-from data/training_state/mpd_stft32_lower_lr_last.pt \
        --restart-state data/training_state/mpd_stft32_lower_lr_last_state.pt \
        --curves data/training_state/mpd_stft32_lower_lr_curves.json   # ... from a stored point, its discriminators too
    python -m course_utils.hifigan.study --arm mpd_stft32_lower_lr --store 57765 \
        --curves course_utils/pretrained/vocoder_study.json   # keep a point in data/training_state/
    python -m course_utils.hifigan.study --arm mpd_pitch_low_lr --from-arm mpd_pitch --other-voice \
        --minutes 441 --points 49   # fork an arm from another's checkpoint in the same folder
    python -m course_utils.hifigan.study --arm mpd_stft32_low_lr --other-voice --minutes 459 --points 51 \
        --restart-from <a stored point of mpd_pitch_low_lr>_last.pt --restart-state <...>_last_state.pt \
        --curves <...>_curves.json --curve-of mpd_pitch_low_lr   # a new arm from another arm's stored point

Every arm starts from `course_utils/pretrained/vocoder_v3.pt` (14,000 mel-loss steps) with the same data,
batch and seed, and trains for `--minutes` of one thread's CPU time in training steps (evaluation is not counted), in `--points`
chunks; after each chunk the generator is exported and scored on the held-out clips (`evaluate.compare`).
An interrupted arm resumes from its checkpoint. The curves land in `<build>/study/<arm>/curve.jsonl`.
"""
from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from ..runtime import write_atomic
from ..train import CHECKSUM_KEY, save_checkpoint
from . import evaluate, training
from .configs import AudioConfig

START_STEP = 14_000  # the shipped vocoder's mel-loss steps
# Every arm: V3, batch 8, segments of 8192 samples, AdamW 2e-4; steps are counted on from START_STEP.
# The budget is CPU time of one thread (`clock="cpu"`), so that arms stay comparable when other work shares the
# machine; run with OMP_NUM_THREADS=1.
BASE = training.VocoderRun(generator="v3", discriminators="slim", steps=10**9, warmup=START_STEP, batch_size=8,
                        valid_every=0, checkpoint_every=100, clock="cpu")
# the long run from (g) on: the multi-period discriminator alone, its warm-up, pitch augmentation
PITCH = replace(BASE, discriminators="slim_mpd", disc_warmup=300, pitch_shift=(0.8, 2.0))
# (m) below, from which the later probes fork: 32 x the multi-resolution STFT loss at a sixteenth of the paper's rate
STFT32_LOWER = replace(PITCH, lr=1.25e-5, stft_weight=32.0)
ARMS = {
    "mel": replace(BASE, warmup=10**9),  # (a) the mel loss alone, continued
    "gan": BASE,  # (b) the paper's GAN step at once: LSGAN + 2 x feature matching + 45 x mel
    "gan_dwarm": replace(BASE, disc_warmup=300),  # (c) the same after 300 discriminator-only steps
    "mpd_dwarm": replace(BASE, discriminators="slim_mpd", disc_warmup=300),  # (d) multi-period only
    # (e) (c) plus a phase-aware loss, weighted so that at the start (3.8, as for noise) it is about a quarter
    # of the mel term (45 x 0.29)
    "phase_dwarm": replace(BASE, disc_warmup=300, phase_weight=1.0),
    # (f) a CPU-friendly design from after the paper: V3's first two stages (taken from the shipped V3) and an
    # inverse-STFT head (iSTFTNet) instead of the full-rate stage; 1,000 mel-loss steps for the new head first
    "istft_dwarm": replace(BASE, generator="v3_istft", init_partial=True, warmup=START_STEP + 1000, disc_warmup=300),
    # (g) the chosen arm (d) with pitch augmentation (not in the paper): half the segments resampled by a factor
    # in [0.8, 2] (log-uniform), so that one speaker's clips also cover higher and lower voices. Meant to go on
    # from (d)'s checkpoint (`--from-arm mpd_dwarm`), not from the start: its curve begins where (d)'s was.
    "mpd_pitch": PITCH,
    # (h) (g) at a quarter of the learning rate, going on from (g) (`--from-arm mpd_pitch`): the paper decays
    # the rate by 0.999 per epoch over 2.5M steps (to under a twentieth); a CPU run cannot wait that long, so this
    # asks whether a lower rate alone buys back the PESQ and STOI that the adversarial noise costs
    "mpd_pitch_low_lr": replace(PITCH, lr=5e-5),
    # (i) (h) with the multi-scale discriminator back (new; the multi-period one and the optimisers' moments go
    # on from (h)'s stored point): (h) loses its STOI below 500 Hz, where a harmonic repeats every 44-159
    # samples, periods the multi-period discriminator (2-11 samples) does not judge; the multi-scale one sees the
    # waveform at 1, 1/2 and 1/4 of the rate. Started with `--restart-from` (h)'s point, `--restart-state`,
    # `--curve-of mpd_pitch_low_lr` and `--restart-disc-warmup 300` (discriminator-only steps for the new one).
    "mpd_msd_low_lr": replace(PITCH, discriminators="slim", lr=5e-5),
    # (j) (h) plus Parallel WaveGAN's multi-resolution STFT loss (`losses.multi_resolution_stft_loss`), going on
    # from (h)'s stored point (`--restart-from`, `--restart-state`, `--curve-of mpd_pitch_low_lr`): (h)'s
    # low-band envelopes (134-480 Hz, where its STOI is lost) correlate less with the original's than the mel-only
    # V3's do, while its log-mel and log-STFT errors there are smaller: the log losses weigh every bin alike and
    # the loud low harmonics are few; the loss's spectral convergence is dominated by them. Weight 8: at (h)'s
    # point the term (1.43) then equals the mel term (45 x 0.249).
    "mpd_stft_low_lr": replace(PITCH, lr=5e-5, stft_weight=8.0),
    # (k) (j) with four times the weight (32), from the same stored point: does more of the loss buy more STOI?
    "mpd_stft32_low_lr": replace(PITCH, lr=5e-5, stft_weight=32.0),
    # (l) weight 128, from the same stored point: (j) -> (k) bought STOI (0.853 -> 0.860) and cost buzz
    # (2.0-2.5% -> 2.5-2.7%); where does the trade go with four times more again?
    "mpd_stft128_low_lr": replace(PITCH, lr=5e-5, stft_weight=128.0),
    # (m) (k) at a quarter of its rate again (1.25e-5, a sixteenth of the paper's start; the paper decays to under
    # a twentieth), going on from (k)'s checkpoint (`--from-arm mpd_stft32_low_lr`): (h) showed a lower rate
    # lowering the buzz while STOI held; does it take (k)'s last half point of buzz away?
    "mpd_stft32_lower_lr": STFT32_LOWER,
    # (n) (m) without the discriminators: the mel and multi-resolution STFT losses alone, at (m)'s rate, going on
    # from (m)'s checkpoint (`--from-arm mpd_stft32_lower_lr`). A probe of the trade: is it the adversarial terms
    # that hold STOI below the mel-only V3's (0.862 against 0.886), and how fast does the frame-rate buzz come
    # back without them?
    "fidelity_lower_lr": replace(STFT32_LOWER, warmup=10**9),
    # (o) (m) with 80% of the segments pitch-shifted instead of half, going on from (m)'s checkpoint
    # (`--from-arm mpd_stft32_lower_lr`): the other voice (median F0 266 Hz, near twice the training speaker's
    # 139) still buzzes at 9-10% while the training speaker is at 2%; the augmentation moved it once (at 117
    # minutes); does more of it take the other voice's buzz further down?
    "mpd_stft32_pitch80_lower_lr": replace(STFT32_LOWER, pitch_shift_share=0.8),
}


def pretrained_v3() -> Path:
    from ..pretrained import path

    return path("vocoder_v3.pt")


def test_clips(clips: dict, config: AudioConfig = AudioConfig(), count: int = 20) -> list[np.ndarray]:
    """The held-out clips notebook 05 scores: the first `count` test clips longer than 2 s."""
    return [c for c in clips["test"] if len(c) > 2 * config.sampling_rate][:count]


def other_voice_clips(config: AudioConfig = AudioConfig(), count: int = 10) -> list[np.ndarray]:
    """A speaker no vocoder here was trained on: the Debian package's other voice (the small fish, files
    `*-m-*.ogg`), its first `count` clips (sorted by name) longer than 2 s."""
    from .. import speech
    from ..errors import DatasetNotFoundError

    folder = next((d for d in speech.fillets_dirs() if d.is_dir()), None)
    files = sorted(folder.rglob("*-m-*.ogg"), key=lambda f: f.name) if folder else []
    if not files:
        raise DatasetNotFoundError(f"No *-m-*.ogg clips of the Debian speech package: {speech.HOW_TO_GET}")
    clips = []
    for f in files:
        clip = speech.read_audio(f, config.sampling_rate)
        if len(clip) > 2 * config.sampling_rate:
            clips.append(clip)
            if len(clips) == count:
                break
    return clips


def vocode_with(generator: torch.nn.Module):
    def vocode(log_mel: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return generator(log_mel)[0, 0].numpy()
    return vocode


def run_arm(name: str, folder: Path, minutes: float, points: int, clips: dict, *, held_out=None,
            start: Path | None = None, other_voice: list | None = None, parent: Path | None = None,
            restart: Path | None = None, curve: list[dict] | None = None, restart_disc_warmup: int | None = None,
            restart_state: Path | None = None, log=print) -> list[dict]:
    """Train arm `name` in `points` chunks up to `minutes` of training time, from the exported vocoder
    `start` (default: the shipped V3); score on `held_out` (default: `test_clips`) after each chunk, and on
    `other_voice` clips too when given (the row's "other_voice").

    `parent`: the folder of another arm to go on from when this one has no checkpoint yet: its checkpoint
    (generator, discriminators, optimisers), curve and restart record are copied, so the new curve begins where
    it stood.
    `restart`: when the arm has no checkpoint (a new machine), go on from this exported point of the arm
    instead (e.g. the shipped `vocoder_v3_gan_cpu.pt`): its generator, new discriminators and optimisers, the
    arm's discriminator-only warm-up first (or `restart_disc_warmup` steps); `curve` (the arm's rows, e.g. from
    the shipped vocoder_study.json) must hold the file's step, and the time budget counts on from that row's
    seconds. `restart_state`: the file's discriminators and optimisers (`training.export_training_state` at its
    step): they go on instead of new ones, with no warm-up unless `restart_disc_warmup` asks for one.
    Every point also leaves `step_<N>_state.pt` beside `step_<N>.pt`, to restart from it in the same way."""
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint, curve_file, restart_file = folder / "train.pt", folder / "curve.jsonl", folder / "restart.json"
    if parent is not None and not checkpoint.is_file():
        if not (parent / "train.pt").is_file():
            raise FileNotFoundError(f"{parent / 'train.pt'}: the arm to go on from has no checkpoint; run it first.")
        shutil.copyfile(parent / "train.pt", checkpoint)
        for kept in (curve_file, restart_file):  # a restarted parent's step and seconds offset go on too
            if (parent / kept.name).is_file():
                shutil.copyfile(parent / kept.name, kept)
    if restart is not None and not checkpoint.is_file() and not restart_file.is_file():
        step = int(training.load_checkpoint(restart).get("metadata", {}).get("step", -1))
        rows = [row for row in curve or [] if row["step"] <= step]
        if not rows or rows[-1]["step"] != step:
            raise ValueError(f"{restart} was exported at step {step}, a step the arm's curve does not hold: "
                             f"restart from a point of the arm {name!r} (its curve's steps: "
                             f"{[row['step'] for row in curve or []]}).")
        kept = shutil.copyfile(restart, folder / "restart_from.pt")  # the shipped file may be replaced later
        state = shutil.copyfile(restart_state, folder / "restart_state.pt") if restart_state else None
        _write_curve(curve_file, rows)
        default = 0 if restart_state else ARMS[name].disc_warmup
        warmup = default if restart_disc_warmup is None else restart_disc_warmup
        record = json.dumps({"file": str(kept), "from": str(restart), "step": step, "seconds": rows[-1]["seconds"],
                             "disc_warmup": warmup,
                             **({"state": str(state), "state_from": str(restart_state)} if state else {})})
        write_atomic(restart_file, lambda tmp: tmp.write_text(record))
    # after a restart, training.train counts steps on from the file's step but seconds from zero
    restarted = json.loads(restart_file.read_text()) if restart_file.is_file() else None
    offset = restarted["seconds"] if restarted else 0.0
    done = [json.loads(line) for line in curve_file.read_text().splitlines()] if curve_file.is_file() else []
    held_out = test_clips(clips) if held_out is None else held_out
    for point in range(1, points + 1):
        budget = 60 * minutes * point / points
        if any(abs(row["budget_seconds"] - budget) < 1e-6 * budget for row in done) or budget <= offset:
            continue
        run = replace(ARMS[name], max_seconds=budget - offset)
        if restarted:  # the discriminator-only warm-up starts at the file's step
            # (an arm without the GAN, warmup beyond any step, stays without it)
            run = replace(run, warmup=max(run.warmup, restarted["step"]), disc_warmup=restarted["disc_warmup"])
        history = training.train(run, checkpoint, clips=clips, log=log,
                                 init_generator=restarted["file"] if restarted else start or pretrained_v3(),
                                 init_state=restarted.get("state") if restarted else None)
        snapshot = training.export_vocoder(checkpoint, folder / f"step_{history.step[-1]}.pt")
        training.export_training_state(checkpoint, folder / f"step_{history.step[-1]}_state.pt")
        G, _ = training.load_vocoder(snapshot)
        table = evaluate.compare(held_out, {name: vocode_with(G)})[name]
        row = {"arm": name, "budget_seconds": budget, "seconds": offset + history.seconds[-1], "step": history.step[-1],
               **({"restarted_from": {k: v for k, v in restarted.items() if k not in ("file", "state")}}
                  if restarted else {}),
               **_clean(table)}
        if other_voice is not None:
            row["other_voice"] = _clean(evaluate.compare(other_voice, {name: vocode_with(G)})[name])
        done.append(row)
        _write_curve(curve_file, done)
        log(json.dumps(row))
    return done


def _write_curve(path: Path, rows: list[dict]) -> None:
    """One JSON line per point, the whole curve rewritten atomically: never half a line."""
    text = "".join(json.dumps(row) + "\n" for row in rows)
    write_atomic(path, lambda tmp: tmp.write_text(text))


def _clean(table: dict) -> dict:
    return {k: None if np.isnan(v) else v for k, v in table.items()}  # NaN (no voiced frame) -> null (JSON)


def baselines(folder: Path, held_out: list[np.ndarray], name: str = "baselines",
              config: AudioConfig = AudioConfig()) -> dict:
    """The scores of the start (the shipped mel-only V3), Griffin-Lim and the original audio on `held_out`,
    computed once and kept in `<folder>/<name>.json`."""
    path = folder / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    G, _ = training.load_vocoder(pretrained_v3())
    table = evaluate.compare(held_out, {"griffin_lim": lambda log_mel: evaluate.griffin_lim(log_mel, config),
                                        "start": vocode_with(G)})
    table["original"] = {"hop_periodic_share": float(np.mean([evaluate.hop_periodic_share(c) for c in held_out]))}
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(table, indent=1)))
    return table


def summary(folder: Path, clips: dict, previous: dict | None = None) -> dict:
    """Everything the notebook shows of the study: the baselines on both speakers and every arm's curve.

    `previous`: an earlier summary (e.g. the shipped vocoder_study.json) whose arms are kept where `folder`
    has no curve of its own, so that arms measured on other machines or sessions are not dropped."""
    arms = {}
    for arm in sorted(ARMS):
        curve = folder / arm / "curve.jsonl"
        if curve.is_file():
            arms[arm] = [json.loads(line) for line in curve.read_text().splitlines()]
        elif previous and arm in previous.get("arms", {}):
            arms[arm] = previous["arms"][arm]
    return {"test_clips": baselines(folder, test_clips(clips)),
            "other_voice": baselines(folder, other_voice_clips(), "baselines_other_voice"),
            "arms": arms, "settings": {name: {k: v for k, v in asdict(run).items() if k not in ("steps", "max_seconds")}
                                       for name, run in ARMS.items()}}


def store_point(folder: Path, arm: str, step: int, out: Path, previous: dict | None = None) -> list[Path]:
    """Keep an arm's point so that its run goes on from it on any machine (`--restart-from`,
    `--restart-state`, `--curves`): `<out>/<arm>_last.pt`, the point's own export (float16);
    `<arm>_last_state.pt`, its discriminators and optimisers with the norms of the generator's weight-norm
    directions (what `train` checks); `<arm>_curves.json`, `previous` (e.g. the shipped vocoder_study.json)
    with the arm's curve up to the point."""
    point, state_file = folder / arm / f"step_{step}.pt", folder / arm / f"step_{step}_state.pt"
    if not (point.is_file() and state_file.is_file()):
        kept = sorted(int(f.stem.split("_")[1]) for f in (folder / arm).glob("step_*_state.pt"))
        raise FileNotFoundError(f"{folder / arm} holds no point at step {step} with its training state; points "
                                f"with one: {kept}.")
    out.mkdir(parents=True, exist_ok=True)
    saved = training.load_checkpoint(point)
    files = [training.export_vocoder(saved, out / f"{arm}_last.pt", half=True)]  # keeps the point's metadata
    state = {k: v for k, v in training.load_checkpoint(state_file).items() if k != CHECKSUM_KEY}
    # states written before train checked the norms lack them: take them from the point itself
    state["generator_v_norms"] = training.v_norms(saved["model"])
    files.append(save_checkpoint(out / f"{arm}_last_state.pt", state))
    rows = [json.loads(line) for line in (folder / arm / "curve.jsonl").read_text().splitlines()]
    table = {**(previous or {}), "arms": {**(previous or {}).get("arms", {}), arm: [r for r in rows if r["step"] <= step]}}
    text = json.dumps(table, indent=1) + "\n"
    files.append(write_atomic(out / f"{arm}_curves.json", lambda tmp: tmp.write_text(text)))
    return files


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_utils.hifigan.study", description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=sorted(ARMS), action="append", help="repeat for several arms, in order")
    parser.add_argument("--minutes", type=float, default=45.0, help="training time per arm")
    parser.add_argument("--points", type=int, default=5, help="evaluations along the budget")
    parser.add_argument("--folder", default=None, help="default: <build>/study")
    parser.add_argument("--data", default=None, help="speech source (default: COURSE_SPEECH_DIR, else fillets)")
    parser.add_argument("--other-voice", action="store_true",
                        help="also score every point on the other voice (other_voice_clips)")
    parser.add_argument("--from-arm", choices=sorted(ARMS), default=None,
                        help="go on from this arm's checkpoint and curve (when the arm has none of its own yet)")
    parser.add_argument("--restart-from", default=None, metavar="VOCODER",
                        help="when the arm has no checkpoint in the folder (a new machine): go on from this exported "
                             "point of it (e.g. course_utils/pretrained/vocoder_v3_gan_cpu.pt) with new "
                             "discriminators after a discriminator-only warm-up; its curve from --curves")
    parser.add_argument("--restart-state", default=None, metavar="STATE",
                        help="with --restart-from: the discriminators and optimisers exported at the same step "
                             "(a point's step_<N>_state.pt, e.g. data/training_state/mpd_stft32_lower_lr_last_state.pt "
                             "for data/training_state/mpd_stft32_lower_lr_last.pt): they go on instead of new ones")
    parser.add_argument("--curve-of", default=None, metavar="ARM",
                        help="with --restart-from: the arm of --curves whose curve the restart goes on from "
                             "(default: --arm; another arm when a new arm starts from that arm's stored point)")
    parser.add_argument("--restart-disc-warmup", type=int, default=None, metavar="STEPS",
                        help="with --restart-from: discriminator-only steps first (default: the arm's; 0 with "
                             "--restart-state)")
    parser.add_argument("--store", type=int, default=None, metavar="STEP",
                        help="keep the --arm's point at STEP in --store-to (its export, training state and curves) "
                             "for --restart-from/--restart-state/--curves on another machine, and stop")
    parser.add_argument("--store-to", default="data/training_state", metavar="FOLDER")
    parser.add_argument("--curves", default=str(Path(__file__).parents[1] / "pretrained" / "vocoder_study.json"),
                        help="with --restart-from: the study JSON that holds the arm's curve (default: the shipped one)")
    parser.add_argument("--table", action="store_true", help="print the baselines and every arm's curve")
    parser.add_argument("--export", default=None,
                        help="with --table: also write it all to this JSON file (its arms that the folder lacks are kept)")
    args = parser.parse_args(argv)
    from .. import speech
    from ..runtime import build_dir

    folder = Path(args.folder) if args.folder else build_dir() / "study"
    if args.store is not None:
        if not args.arm or len(args.arm) != 1:
            parser.error("--store needs the one --arm whose point to keep.")
        previous = json.loads(Path(args.curves).read_text())
        for path in store_point(folder, args.arm[0], args.store, Path(args.store_to), previous):
            print(f"wrote {path}")
        return
    clips = speech.load_speech(args.data, sample_rate=AudioConfig().sampling_rate)
    if args.table:
        previous = json.loads(Path(args.export).read_text()) if args.export and Path(args.export).is_file() else None
        table = summary(folder, clips, previous)
        print(json.dumps(table, indent=1))
        if args.export:
            text = json.dumps(table, indent=1) + "\n"
            write_atomic(args.export, lambda tmp: tmp.write_text(text))
        return
    other = other_voice_clips() if args.other_voice else None
    shipped = json.loads(Path(args.curves).read_text())["arms"] if args.restart_from else {}
    for arm in args.arm or []:
        run_arm(arm, folder / arm, args.minutes, args.points, clips, other_voice=other,
                parent=folder / args.from_arm if args.from_arm else None,
                restart=Path(args.restart_from) if args.restart_from else None, curve=shipped.get(args.curve_of or arm),
                restart_disc_warmup=args.restart_disc_warmup,
                restart_state=Path(args.restart_state) if args.restart_state else None)


if __name__ == "__main__":
    main()
