"""Train a HiFi-GAN vocoder: on one CPU or GPU, or several processes under torchrun (DistributedDataParallel).

    python -m course_utils.hifigan.training --config small --discriminators slim --steps 2000
    torchrun --nproc_per_node 2 -m course_utils.hifigan.training --config v1 --discriminators paper --data ljspeech:/data/LJSpeech-1.1

Each step cuts random `segment_size` pieces of the training clips and computes their mel-spectrogram.
During `--warmup` steps the generator learns from the mel loss alone (cheap on a CPU); then the GAN
step runs: a discriminator update (least squares), then a generator update (adversarial + 2 x feature
matching + 45 x mel L1); `--disc-warmup` steps first train the discriminators alone, so that new ones
judge a pretrained generator before it learns from them. AdamW (lr 2e-4, betas 0.8/0.99), learning rate x 0.999 per epoch. Checkpoints
are written atomically every `--checkpoint-every` steps and the run resumes from them.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.nn.utils import parametrize

from ..train import CheckpointError, load_checkpoint, save_checkpoint
from . import configs, losses
from .discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from .generator import Generator
from .mel import MelSpectrogram
from ..runtime import step_seed


@dataclass
class VocoderRun:
    generator: str = "small"  # a key of configs.GENERATORS
    discriminators: str = "slim"  # a key of configs.DISCRIMINATORS
    data: str | None = None  # a speech source of course_utils.speech.load_speech (None: COURSE_SPEECH_DIR, else fillets)
    steps: int = 2000
    warmup: int = 0  # the GAN starts at this step: the generator learns from the mel loss alone before it
    disc_warmup: int = 0  # then this many discriminator-only steps against the frozen generator
    lr: float = configs.OptimConfig.lr  # AdamW, generator and discriminators
    phase_weight: float = 0.0  # > 0 adds this x losses.phase_loss to the generator's loss (not in the paper)
    stft_weight: float = 0.0  # > 0 adds this x losses.multi_resolution_stft_loss (Parallel WaveGAN's; not in the paper)
    # pitch augmentation (not in the paper): this share of the segments is resampled by a random factor in
    # `pitch_shift` (log-uniform); a factor 1.5 plays the piece 1.5 x faster, pitch and formants 1.5 x higher,
    # so that one speaker's data also covers higher (or lower) voices. (1, 1): off.
    pitch_shift: tuple[float, float] = (1.0, 1.0)
    pitch_shift_share: float = 0.5
    init_partial: bool = False  # init_generator may be of another design: take the layers whose shapes fit
    batch_size: int = 8  # segments per step (the paper: 16)
    segment_size: int = 8192  # samples per training segment (32 frames of the hop)
    seed: int = 0
    valid_every: int = 500
    checkpoint_every: int = 100
    max_seconds: float | None = None  # stop when the training steps have taken this long
    clock: str = "wall"  # how steps are timed: "wall" seconds, or "cpu" seconds of this process (fair when
    # other programs share the machine: with one thread it is the compute the steps needed)
    valid_clips: int = 8


@dataclass
class VocoderHistory:
    step: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    mel_l1: list = field(default_factory=list)  # training mel L1 (full band), per step
    loss_d: list = field(default_factory=list)
    valid_step: list = field(default_factory=list)
    valid_mel_l1: list = field(default_factory=list)


def adds_multi_scale(before: str | None, after: str) -> bool:
    """Does the discriminator set `after` (a key of configs.DISCRIMINATORS) hold the multi-period
    discriminator of `before` unchanged plus a multi-scale one that `before` lacks (slim_mpd -> slim)?"""
    found = configs.DISCRIMINATORS
    if before not in found or after not in found:
        return False
    return found[before].num_scales == 0 < found[after].num_scales and \
        replace(found[after], num_scales=0) == found[before]


def resample(x: torch.Tensor, n: int) -> torch.Tensor:
    """(T,) -> (n,) band-limited resampling by the FFT (spectrum truncated or zero-padded). Played at the same
    rate, every frequency of `x` is multiplied by T / n; what would land above the Nyquist frequency is dropped."""
    spectrum = torch.fft.rfft(x)  # (T // 2 + 1,)
    bins = n // 2 + 1
    spectrum = spectrum[:bins] if bins <= spectrum.shape[-1] else F.pad(spectrum, (0, bins - spectrum.shape[-1]))
    return torch.fft.irfft(spectrum, n) * (n / x.shape[-1])


SHIFT_MARGIN = 256  # samples resampled beyond each end of a shifted segment, then cut (the FFT's wrap-around)


def random_segments(clips, batch_size: int, segment_size: int, generator: torch.Generator,
                    pitch_shift: tuple[float, float] = (1.0, 1.0), share: float = 0.5) -> torch.Tensor:
    """(B, 1, segment_size) random pieces of random clips; clips shorter than a segment are zero-padded.
    With `pitch_shift` = (lo, hi) != (1, 1), each piece is, with probability `share`, cut longer (or shorter) by
    a factor r drawn log-uniformly in [lo, hi] and resampled to `segment_size`: pitch and formants x r."""
    out = torch.zeros(batch_size, 1, segment_size)
    shifting = tuple(pitch_shift) != (1.0, 1.0)
    for b, i in enumerate(torch.randint(len(clips), (batch_size,), generator=generator).tolist()):
        clip, ratio = clips[i], 1.0
        if shifting and float(torch.rand((), generator=generator)) < share:
            lo, hi = math.log(pitch_shift[0]), math.log(pitch_shift[1])
            ratio = math.exp(lo + (hi - lo) * float(torch.rand((), generator=generator)))
        need = segment_size if ratio == 1.0 else round((segment_size + 2 * SHIFT_MARGIN) * ratio)
        if len(clip) > need:
            start = int(torch.randint(len(clip) - need + 1, (1,), generator=generator))
            clip = clip[start:start + need]
        piece = torch.from_numpy(np.asarray(clip, dtype=np.float32))
        if ratio != 1.0:
            piece = resample(F.pad(piece, (0, need - len(piece))), segment_size + 2 * SHIFT_MARGIN)
            piece = piece[SHIFT_MARGIN:SHIFT_MARGIN + segment_size]
        out[b, 0, :len(piece)] = piece
    return out


@torch.no_grad()
def valid_mel_l1(generator: Generator, clips, mel_in: MelSpectrogram, mel_loss: MelSpectrogram, device) -> float:
    """Mean full-band mel L1 between held-out clips and the generator's audio from their mel."""
    generator.eval()
    total = 0.0
    for clip in clips:
        audio = torch.from_numpy(np.asarray(clip))[None].to(device)
        fake = generator(mel_in(audio))[:, 0]
        n = min(fake.shape[-1], audio.shape[-1])
        total += float(losses.mel_loss(mel_loss(audio[:, :n]), mel_loss(fake[:, :n])))
    generator.train()
    return total / len(clips)


def _unwrap(module):
    return module.module if isinstance(module, DDP) else module


def train(run: VocoderRun, checkpoint: str | os.PathLike | None = None, *, device: str | torch.device = "cpu",
          clips: dict | None = None, init_generator: str | os.PathLike | None = None,
          init_state: str | os.PathLike | None = None, log=print) -> VocoderHistory:
    """Train (or resume) a vocoder; under torchrun each process takes its share of every batch.

    `init_generator`: an exported vocoder file (`export_vocoder`) whose generator weights start a new run,
    counting steps on from the step it was exported at, with new discriminators and optimiser states
    (fine-tuning a pretrained vocoder, or the adversarial phase after a warm-up). `init_state`: with
    `init_generator`, a file of `export_training_state` written at the same step: the discriminators and
    optimiser states go on from it instead of starting afresh. Both are ignored when `checkpoint` exists:
    the run then resumes from it."""
    from .. import speech

    lo, hi = run.pitch_shift
    if not 0 < lo <= hi or not 0 <= run.pitch_shift_share <= 1:
        raise ValueError(f"pitch_shift={run.pitch_shift}, share {run.pitch_shift_share}: give factors 0 < lo <= hi "
                         "(e.g. 0.8 2.0; 1 1 turns it off) and a share between 0 and 1.")
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    audio_cfg = configs.AudioConfig()
    torch.manual_seed(run.seed)
    G = Generator(configs.GENERATORS[run.generator], hop_size=audio_cfg.hop_size).to(device)
    mpd = MultiPeriodDiscriminator(configs.DISCRIMINATORS[run.discriminators]).to(device)
    msd = MultiScaleDiscriminator(configs.DISCRIMINATORS[run.discriminators]).to(device)
    optim = configs.OptimConfig()
    opt_g = torch.optim.AdamW(G.parameters(), run.lr, betas=optim.betas, weight_decay=optim.weight_decay)
    opt_d = torch.optim.AdamW(list(mpd.parameters()) + list(msd.parameters()), run.lr, betas=optim.betas,
                              weight_decay=optim.weight_decay)
    history, start = VocoderHistory(), 0
    if checkpoint is not None and Path(checkpoint).is_file():
        saved = load_checkpoint(checkpoint, map_location=device)
        if saved.get("run", {}).get("generator") != run.generator or saved["run"].get("discriminators") != run.discriminators:
            raise CheckpointError(f"{checkpoint} holds a {saved.get('run')} run, not {asdict(run)}: "
                                  "delete it or pass another --checkpoint.")
        G.load_state_dict(saved["model"])
        mpd.load_state_dict(saved["mpd"])
        msd.load_state_dict(saved["msd"])
        opt_g.load_state_dict(saved["opt_g"])
        opt_d.load_state_dict(saved["opt_d"])
        history, start = VocoderHistory(**saved["history"]), saved["step"]
        if rank == 0:
            log(f"Resumed from {checkpoint} at step {start}.")
    elif init_generator is not None:
        saved = load_checkpoint(init_generator, map_location=device)
        same = "generator_config" in saved and _generator_config(saved) == configs.GENERATORS[run.generator]
        if not same and not (run.init_partial and "generator_config" in saved):
            raise CheckpointError(f"{init_generator} holds a generator of another configuration than "
                                  f"--config {run.generator}: pass the --config it was trained with.")
        if same:
            G.load_state_dict(saved["model"])
        else:  # another design that shares layers (e.g. v3_istft from v3): take the tensors that fit
            own = G.state_dict()
            taken = {k: v for k, v in saved["model"].items() if k in own and own[k].shape == v.shape}
            G.load_state_dict(taken, strict=False)
            if rank == 0:
                log(f"Took {len(taken)} of the generator's {len(own)} tensors from {init_generator}; "
                    "the others start afresh.")
        start = int(saved.get("metadata", {}).get("step", 0))
        if init_state is not None:
            state = load_checkpoint(init_state, map_location=device)
            saved_run = state.get("run") or {}
            # a multi-period-only state may start a run that adds the multi-scale discriminator (new, the same
            # multi-period one): e.g. slim_mpd -> slim
            adds_msd = (saved_run.get("generator") == run.generator
                        and adds_multi_scale(saved_run.get("discriminators"), run.discriminators))
            if state.get("step") != start or (saved_run != {"generator": run.generator,
                                                            "discriminators": run.discriminators} and not adds_msd):
                raise CheckpointError(f"{init_state} was written at step {state.get('step')} of a {state.get('run')} "
                                      f"run; {init_generator} is step {start} of --config {run.generator} with "
                                      f"{run.discriminators} discriminators: pass the state exported with it.")
            expected, found = state.get("generator_v_norms", {}), v_norms(saved["model"])
            off = [k for k, n in expected.items() if abs(found.get(k, 0.0) - n) > 0.01 * n]
            if off:  # the same generator may be written with v at another scale; Adam's moments then misfit
                raise CheckpointError(f"{init_generator} holds the generator of step {start} with its weight-norm "
                                      f"directions v at another scale than {init_state} was written for ({len(off)} "
                                      f"tensors, e.g. {off[0]}: |v| {found.get(off[0], 0.0):.3f}, expected "
                                      f"{expected[off[0]]:.3f}); the optimiser's moments would not fit it. Pass "
                                      "the point's own export (export_vocoder of the same checkpoint).")
            kept = [("mpd", mpd)] if adds_msd else [("mpd", mpd), ("msd", msd)]  # a new multi-scale one starts afresh
            for name, d in kept:
                d.load_state_dict({k[len(name) + 1:]: v for k, v in state["model"].items() if k.startswith(name + ".")})
            opt_g.load_state_dict(state["opt_g"])  # the bfloat16 moments are read back as float32
            if adds_msd:  # the multi-period parameters come first in opt_d: their moments, none for the new ones
                if len(state["opt_d"]["param_groups"][0]["params"]) != len(list(mpd.parameters())):
                    raise CheckpointError(f"{init_state}: its discriminator optimiser does not match the "
                                          f"multi-period discriminator of {run.discriminators!r}.")
                grown = opt_d.state_dict()
                grown["state"] = dict(state["opt_d"]["state"])
                opt_d.load_state_dict(grown)
            else:
                opt_d.load_state_dict(state["opt_d"])
        if rank == 0:
            if init_state is None:
                rest = "new discriminators."
            else:
                rest = f"discriminators and optimisers from {init_state}"
                rest += " and a new multi-scale discriminator." if adds_msd else "."
            log(f"Started from the generator of {init_generator} (step {start}), {rest}")
    if distributed:  # DDP refuses a module without parameters (no multi-scale discriminator)
        G, mpd, msd = (DDP(m) if any(True for _ in m.parameters()) else m for m in (G, mpd, msd))
    if clips is None:
        if distributed and rank != 0:
            dist.barrier()  # rank 0 decodes and caches the clips first; the others then read its cache
        clips = speech.load_speech(run.data, sample_rate=audio_cfg.sampling_rate)
        if distributed and rank == 0:
            dist.barrier()
    train_clips = clips["train"]
    valid_clips = (clips["valid"] or clips["test"] or train_clips)[:run.valid_clips]  # tiny data sets may hold out nothing
    if not train_clips:
        raise ValueError(f"the speech source {run.data!r} has no training clips.")
    mel_in, mel_loss = MelSpectrogram(audio_cfg), MelSpectrogram(audio_cfg, full_band=True)
    steps_per_epoch = max(1, sum(len(c) for c in train_clips) // (run.segment_size * run.batch_size * world))
    w = optim.weights
    per_rank = max(1, run.batch_size // world)

    def save(step: int) -> None:
        if checkpoint is None or rank != 0:
            return
        save_checkpoint(checkpoint, {
            "model": _unwrap(G).state_dict(), "mpd": _unwrap(mpd).state_dict(), "msd": _unwrap(msd).state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step, "history": asdict(history),
            "run": asdict(run), "generator_config": asdict(configs.GENERATORS[run.generator]),
            "audio_config": asdict(audio_cfg)})

    if run.clock not in ("wall", "cpu"):
        raise ValueError(f"clock={run.clock!r}: use 'wall' or 'cpu'.")
    clock = time.perf_counter if run.clock == "wall" else time.process_time
    elapsed = history.seconds[-1] if history.seconds else 0.0
    for step in range(start, run.steps):
        if run.max_seconds is not None and elapsed >= run.max_seconds:
            if rank == 0:
                log(f"Stopped at step {step}: the time budget of {run.max_seconds:.0f} s is used up.")
            break
        tick = clock()
        lr = run.lr * optim.lr_decay ** (step // steps_per_epoch)
        for group in opt_g.param_groups + opt_d.param_groups:
            group["lr"] = lr
        g = torch.Generator().manual_seed(step_seed(run.seed, step) * 64 + rank)
        real = random_segments(train_clips, per_rank, run.segment_size, g, run.pitch_shift,
                               run.pitch_shift_share).to(device)
        generator_learns = not run.warmup <= step < run.warmup + run.disc_warmup
        with torch.set_grad_enabled(generator_learns):
            fake = G(mel_in(real))
            l1 = losses.mel_loss(mel_loss(real), mel_loss(fake))
        loss_d = torch.zeros(())
        if step < run.warmup:
            loss_g = w.mel * l1
        else:
            # discriminator update: real audio -> 1, generated audio -> 0
            scores_real, _ = zip(*(d(real) for d in (mpd, msd)))
            scores_fake, _ = zip(*(d(fake.detach()) for d in (mpd, msd)))
            loss_d = sum(losses.discriminator_loss(r, f) for r, f in zip(scores_real, scores_fake))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        if step >= run.warmup and generator_learns:
            # generator update: fool the discriminators, match their features, match the mel
            outs_real = [d(real) for d in (mpd, msd)]
            outs_fake = [d(fake) for d in (mpd, msd)]
            adv = sum(losses.generator_adversarial_loss(s) for s, _ in outs_fake)
            fm = sum(losses.feature_matching_loss(fr, ff) for (_, fr), (_, ff) in zip(outs_real, outs_fake))
            loss_g = adv + w.feature_matching * fm + w.mel * l1
        if generator_learns and run.phase_weight:
            loss_g = loss_g + run.phase_weight * losses.phase_loss(real, fake)
        if generator_learns and run.stft_weight:
            loss_g = loss_g + run.stft_weight * losses.multi_resolution_stft_loss(real, fake)
        if generator_learns:
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            if not torch.isfinite(loss_g):
                raise RuntimeError(f"the generator loss became {loss_g.item()} at step {step}; resume from the last "
                                   "checkpoint with a lower learning rate (--lr).")
        elapsed += clock() - tick
        done = step + 1
        history.step.append(done)
        history.seconds.append(elapsed)
        history.mel_l1.append(float(l1.detach()))
        history.loss_d.append(float(loss_d.detach()))
        if rank == 0 and run.valid_every and (done % run.valid_every == 0 or done == run.steps):
            history.valid_step.append(done)
            history.valid_mel_l1.append(valid_mel_l1(_unwrap(G), valid_clips, mel_in, mel_loss, device))
            log(f"step {done}: train mel L1 {np.mean(history.mel_l1[-50:]):.3f}, "
                f"valid mel L1 {history.valid_mel_l1[-1]:.3f} ({elapsed:.0f} s)")
        if done % run.checkpoint_every == 0:
            save(done)
    save(history.step[-1] if history.step else start)
    return history


def export_vocoder(checkpoint, path, *, metadata: dict | None = None, half: bool = False) -> Path:
    """The generator of a training checkpoint as a small inference file (config, weights, metadata);
    `half` stores the weights as float16 (half the size; `load_vocoder` computes in float32 all the same).
    `checkpoint` may also be an exported file (e.g. to halve it): its metadata is kept; or one already
    loaded with `load_checkpoint`."""
    saved = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    audio = asdict(configs.audio_config(saved.get("audio_config")))  # older checkpoints: the default front end
    model = {k: v.half() if half and v.is_floating_point() else v for k, v in saved["model"].items()}
    return save_checkpoint(path, {"model": model, "generator_config": saved["generator_config"],
                                  "audio_config": audio,
                                  "metadata": metadata or saved.get("metadata")
                                  or {"step": saved["step"], "run": saved["run"]}})


def average_vocoders(paths, path, *, metadata: dict | None = None, half: bool = False) -> Path:
    """One exported vocoder file whose generator's weights are the mean of those of `paths` (points of one
    run, e.g. the study's last `step_<N>.pt`), the mean taken over the weights the generator computes with
    (weight norm folded in: w = g v / |v|), then written back in the trainable form with the last file's
    scale of v (g = |w|, v = w |v_last| / |w|): the same generator, and it goes on training like the last
    point, whose optimiser moments (`export_training_state`) were taken at that scale; with v = w a step of
    Adam would be up to several times larger relative to the weights. Averaging the points of a GAN run
    smooths the point-to-point wobble of its generator (Yazici et al. 2019, "The unusual effectiveness of
    averaging in GAN training")."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("average_vocoders: give at least one exported vocoder file.")
    saved = [load_checkpoint(p) for p in paths]
    configs_seen = {json.dumps(s.get("generator_config"), sort_keys=True) for s in saved}
    if len(configs_seen) != 1 or "generator_config" not in saved[0]:
        raise CheckpointError(f"{[str(p) for p in paths]} are not exported vocoders of one configuration: average "
                              "the points of one run (e.g. its step_<N>.pt files).")
    plain = [_plain_generator(s).state_dict() for s in saved]
    mean = {k: sum(sd[k].float() for sd in plain) / len(plain) for k in plain[0]}
    G = Generator(_generator_config(saved[0]))
    with torch.no_grad():
        for name, module in G.named_modules():
            if parametrize.is_parametrized(module, "weight"):
                module.weight = mean[f"{name}.weight"]  # weight norm's right inverse: v = w, g = |w|
                g, v = module.parametrizations.weight.original0, module.parametrizations.weight.original1
                v_last = saved[-1]["model"][f"{name}.parametrizations.weight.original1"].float()
                v.mul_(_norm_like(v_last, g) / _norm_like(v, g).clamp_min(1e-12))  # w = g v / |v| unchanged
        for name, param in G.named_parameters():
            if ".parametrizations." not in name:
                param.copy_(mean[name])
    model = {k: v.half() if half else v for k, v in G.state_dict().items()}
    audio = asdict(configs.audio_config(saved[-1].get("audio_config")))
    return save_checkpoint(path, {"model": model, "generator_config": saved[0]["generator_config"], "audio_config": audio,
                                  "metadata": metadata or {**saved[-1].get("metadata", {}),
                                                           "averaged": [p.name for p in paths]}})


def v_norms(model: dict) -> dict:
    """The norm of each weight-norm direction v (`...weight.original1`) of a generator's state dict, over the
    whole tensor: `export_training_state` stores them and `train(init_state=...)` checks them, since Adam's
    moments fit only a generator whose v has the scale they were accumulated at (a file that writes v at
    another scale, as a first version of `average_vocoders` did, changes every tensor's norm)."""
    return {k: float(v.float().norm()) for k, v in model.items() if k.endswith("weight.original1")}


def _norm_like(v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Weight norm's |v|: the norm over the dimensions where g has size 1, in g's shape."""
    dims = [i for i in range(v.dim()) if g.shape[i] == 1]
    return torch.linalg.vector_norm(v, dim=dims, keepdim=True) if dims else v.abs()


def export_training_state(checkpoint, path) -> Path:
    """What a run needs beside its exported generator to go on elsewhere as if never stopped: the
    discriminators and both optimisers' states at the checkpoint's step (`train(init_state=...)`). Adam's
    moments are stored as bfloat16 (float32's range, half its size); the weights stay float32. The norms of
    the generator's weight-norm directions v are kept too: the moments hold only for a generator written at
    that scale (`export_vocoder` of the same checkpoint), and `train` checks it."""
    saved = load_checkpoint(checkpoint)

    def moments_bf16(opt: dict) -> dict:
        return {**opt, "state": {i: {k: v.bfloat16() if k != "step" and v.is_floating_point() else v
                                     for k, v in s.items()} for i, s in opt["state"].items()}}

    discriminators = {f"{d}.{k}": v for d in ("mpd", "msd") for k, v in saved[d].items()}  # one state dict
    return save_checkpoint(path, {"model": discriminators, "opt_g": moments_bf16(saved["opt_g"]),
                                  "opt_d": saved["opt_d"], "step": saved["step"],
                                  "generator_v_norms": v_norms(saved["model"]),
                                  "run": {"generator": saved["run"]["generator"],
                                          "discriminators": saved["run"]["discriminators"]}})


def _generator_config(saved: dict) -> configs.GeneratorConfig:
    cfg = {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
           for k, v in saved["generator_config"].items()}
    return configs.GeneratorConfig(**cfg)


def load_vocoder(path, device="cpu") -> tuple[Generator, dict]:
    """An exported (or training) file -> (generator with weight norm removed, in eval mode; metadata).
    The metadata's "audio_config" is the mel front end the generator was trained on (an `AudioConfig`)."""
    saved = load_checkpoint(path, map_location=device)
    if "generator_config" not in saved:
        raise CheckpointError(f"{path} holds no generator_config: it is not a vocoder file.")
    # files exported before it was stored used the default front end
    metadata = {**saved.get("metadata", {}), "audio_config": configs.audio_config(saved.get("audio_config"))}
    return _plain_generator(saved).to(device).eval(), metadata


def _plain_generator(saved: dict) -> Generator:
    """The generator of a loaded vocoder file, weight norm folded into plain weights."""
    G = Generator(_generator_config(saved))
    G.load_state_dict(saved["model"])
    return G.remove_weight_norm()


def main(argv=None) -> None:
    d = VocoderRun()  # the defaults live in the dataclass only
    parser = argparse.ArgumentParser(prog="python -m course_utils.hifigan.training", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=d.generator, choices=sorted(configs.GENERATORS))
    parser.add_argument("--discriminators", default=d.discriminators, choices=sorted(configs.DISCRIMINATORS))
    parser.add_argument("--data", default=d.data, help="fillets, a folder of audio files, or ljspeech:<folder> "
                        "(default: the folder in COURSE_SPEECH_DIR, else fillets)")
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument("--warmup", type=int, default=d.warmup, help="the GAN starts at this step (mel loss only before)")
    parser.add_argument("--disc-warmup", type=int, default=d.disc_warmup,
                        help="discriminator-only steps when the GAN starts (the generator frozen)")
    parser.add_argument("--lr", type=float, default=d.lr, help="AdamW learning rate of all networks")
    parser.add_argument("--phase-weight", type=float, default=d.phase_weight,
                        help="weight of losses.phase_loss in the generator's loss (0: the paper's losses only)")
    parser.add_argument("--stft-weight", type=float, default=d.stft_weight,
                        help="weight of losses.multi_resolution_stft_loss in the generator's loss (0: the paper's "
                        "losses only)")
    parser.add_argument("--pitch-shift", type=float, nargs=2, default=d.pitch_shift, metavar=("LO", "HI"),
                        help="resample a share of the segments by a random factor in [LO, HI] (pitch and formants "
                        "x factor), so that one speaker also teaches higher or lower voices (default 1 1: off)")
    parser.add_argument("--pitch-shift-share", type=float, default=d.pitch_shift_share,
                        help="the share of segments --pitch-shift resamples")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="total over all processes")
    parser.add_argument("--segment-size", type=int, default=d.segment_size)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--minutes", type=float, default=None, help="stop after this much training time")
    parser.add_argument("--valid-every", type=int, default=d.valid_every)
    parser.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    parser.add_argument("--checkpoint", default=None, help="default: build/checkpoints/hifigan_<config>.pt")
    parser.add_argument("--export", default=None, help="write the generator's inference file here at the end")
    parser.add_argument("--init-generator", default=None,
                        help="an exported vocoder file to start from (when --checkpoint does not exist yet)")
    parser.add_argument("--init-state", default=None, metavar="STATE",
                        help="with --init-generator: its discriminators and optimisers (export_training_state at the "
                             "same step) instead of new ones")
    args = parser.parse_args(argv)

    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    if distributed:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        local = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    else:
        from ..runtime import get_device

        device = get_device()
    from ..runtime import build_dir

    if not args.lr > 0:
        parser.error(f"--lr {args.lr}: the learning rate must be a positive number, e.g. 2e-4 or 1e-4.")
    if not 0 < args.pitch_shift[0] <= args.pitch_shift[1] or not 0 <= args.pitch_shift_share <= 1:
        parser.error(f"--pitch-shift {args.pitch_shift[0]} {args.pitch_shift[1]} --pitch-shift-share "
                     f"{args.pitch_shift_share}: give factors 0 < LO <= HI (e.g. 0.8 2.0; 1 1 turns it off) and a "
                     "share between 0 and 1.")
    run = VocoderRun(generator=args.config, discriminators=args.discriminators, data=args.data, steps=args.steps,
                     warmup=args.warmup, disc_warmup=args.disc_warmup, lr=args.lr, phase_weight=args.phase_weight,
                     stft_weight=args.stft_weight,
                     pitch_shift=tuple(args.pitch_shift), pitch_shift_share=args.pitch_shift_share, batch_size=args.batch_size,
                     segment_size=args.segment_size, seed=args.seed,
                     valid_every=args.valid_every, checkpoint_every=args.checkpoint_every,
                     max_seconds=None if args.minutes is None else 60 * args.minutes)
    checkpoint = args.checkpoint or build_dir() / "checkpoints" / f"hifigan_{args.config}.pt"
    if args.init_generator and not Path(args.init_generator).is_file():
        parser.error(f"--init-generator {args.init_generator}: no such file (e.g. course_utils/pretrained/vocoder_v3.pt).")
    if args.init_state and not (args.init_generator and Path(args.init_state).is_file()):
        parser.error(f"--init-state {args.init_state}: give an existing file, and the --init-generator it was "
                     "exported with (e.g. data/training_state/mpd_stft32_lower_lr_last_state.pt with "
                     "data/training_state/mpd_stft32_lower_lr_last.pt).")
    history = train(run, checkpoint, device=device, init_generator=args.init_generator, init_state=args.init_state)
    rank = dist.get_rank() if distributed else 0
    if rank == 0:
        done = history.step[-1] if history.step else 0
        print(f"trained to step {done} ({history.seconds[-1] if history.seconds else 0:.0f} s); "
              f"valid mel L1 {history.valid_mel_l1[-1] if history.valid_mel_l1 else float('nan'):.3f}")
        if args.export:
            print("exported", export_vocoder(checkpoint, args.export))
    if distributed:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
