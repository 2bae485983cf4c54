"""Speech: readers shared by notebooks 04 (raw speech at 16 kHz) and 05 (HiFi-GAN at 22.05 kHz), and the
raw-speech task of Chung et al. (2014): read 20 samples, predict the next 10 with a mixture of Gaussians.

Sources, each a list of mono float32 clips in [-1, 1] at the asked sample rate:
- `fillets`: one male speaker (the Czech voice of the game Fish Fillets NG), 643 clips, 37 minutes at
  22.05 kHz, from the Debian package `fillets-ng-data-cs` (the default);
- any folder of audio files (`COURSE_SPEECH_DIR`, or a path);
- LJSpeech (`metadata.csv` and `wavs/`).
Clips are held out by a stable hash of their file name, so every notebook holds out the same ones.
"""
from __future__ import annotations

import hashlib
import math
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .text import DatasetNotFoundError
from .train import TrainConfig

FILLETS_DIR = Path("/usr/share/games/fillets-ng/sound")
SPEECH_ENV = "COURSE_SPEECH_DIR"
LJSPEECH_URL = "https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
CACHE_VERSION = 1
MIN_LOG_SIGMA = -7.0
HOW_TO_GET = (f"Install the course's speech with `sudo apt-get install --no-install-recommends fillets-ng-data-cs` "
              f"(Debian/Ubuntu, 39 MB), or set {SPEECH_ENV} to a folder of .wav/.flac/.ogg files, or download "
              f"LJSpeech ({LJSPEECH_URL}) and use source='ljspeech:<folder>'.")


# ---------------------------------------------------------------- reading
def read_audio(path, sample_rate: int, *, strict: bool = False) -> np.ndarray:
    """One audio file -> mono float32 at `sample_rate` (resampled, or rejected with `strict`)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"No audio file at {path}.")
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable audio file ({type(err).__name__}: {err}).") from err
    audio = audio.mean(1)  # stereo -> mono
    if rate != sample_rate:
        if strict:
            raise ValueError(f"{path} is at {rate} Hz, not {sample_rate} Hz: resample it first, or use strict=False.")
        from scipy.signal import resample_poly

        g = math.gcd(rate, sample_rate)
        audio = resample_poly(audio, sample_rate // g, rate // g).astype(np.float32)
    return np.clip(audio, -1.0, 1.0)


def _files(source: str) -> list[Path]:
    if source == "fillets":
        files = sorted(FILLETS_DIR.rglob("*-v-*.ogg")) if FILLETS_DIR.is_dir() else []
        if not files:
            raise DatasetNotFoundError(f"No speech found in {FILLETS_DIR}. {HOW_TO_GET}")
        return files
    if source.startswith("ljspeech:"):
        root = Path(source.split(":", 1)[1])
        meta = root / "metadata.csv"
        if not meta.is_file():
            raise DatasetNotFoundError(f"No LJSpeech metadata.csv in {root}. {HOW_TO_GET}")
        files = []
        for n, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            wav = root / "wavs" / f"{line.split('|', 1)[0]}.wav"
            if not wav.is_file():
                raise DatasetNotFoundError(f"{meta}, line {n}, names {wav.name}, which is not in {root / 'wavs'}.")
            files.append(wav)
        return files
    folder = Path(source)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise DatasetNotFoundError(f"No .wav, .flac or .ogg files under {folder}. {HOW_TO_GET}")
    return files


def split_of(name: str, *, valid: float = 0.1, test: float = 0.1) -> str:
    """'train', 'valid' or 'test' from a stable hash of a file name (the same on every machine)."""
    u = zlib.crc32(name.encode()) / 2**32
    return "valid" if u < valid else "test" if u < valid + test else "train"


def load_speech(source: str | None = None, *, sample_rate: int = 16000, strict: bool = False,
                cache: bool = True) -> dict[str, list[np.ndarray]]:
    """Speech clips split into {'train', 'valid', 'test'} at `sample_rate`.

    `source`: 'fillets' (default), a folder, or 'ljspeech:<folder>'; without it, `COURSE_SPEECH_DIR`
    if set, else 'fillets'. Decoded clips are cached per (source, sample rate) under the data folder.
    """
    from .runtime import data_dir

    source = source or os.environ.get(SPEECH_ENV) or "fillets"
    files = _files(source)
    key = hashlib.sha1(f"{source}|{[str(f) for f in files]}".encode()).hexdigest()[:10]
    path = data_dir() / "speech" / f"speech-v{CACHE_VERSION}-{key}-{sample_rate}.npz"
    if cache and path.exists():
        try:
            with np.load(path) as saved:
                lengths, samples, names = saved["lengths"], saved["samples"], [str(n) for n in saved["names"]]
        except Exception as err:
            raise ValueError(f"The cached speech {path} is damaged ({err}); delete it to decode again.") from err
        clips = np.split(samples, np.cumsum(lengths)[:-1])
    else:
        tick = time.perf_counter()
        clips = [read_audio(f, sample_rate, strict=strict) for f in files]
        names = [f.name for f in files]
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp.npz")
            np.savez(tmp, lengths=np.array([len(c) for c in clips]), samples=np.concatenate(clips), names=np.array(names))
            tmp.replace(path)
        print(f"decoded {len(clips)} clips at {sample_rate} Hz in {time.perf_counter() - tick:.0f} s")
    out = {"train": [], "valid": [], "test": []}
    for name, clip in zip(names, clips):
        out[split_of(name)].append(clip)
    return out


# ---------------------------------------------------------------- the frame task
@dataclass
class WaveScale:
    """Divide waveforms by their standard deviation on the training clips; `invert` multiplies back."""

    std: float = 1.0

    @classmethod
    def fit(cls, clips) -> "WaveScale":
        return cls(float(np.concatenate(clips).std()))

    def apply(self, clip) -> np.ndarray:
        return (np.asarray(clip, dtype=np.float32) / self.std).astype(np.float32)

    def invert(self, clip) -> np.ndarray:
        return (np.asarray(clip, dtype=np.float32) * self.std).astype(np.float32)


def frames(clip, in_len: int = 20, out_len: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Step t reads samples [out_len t, out_len t + in_len) and predicts the next out_len:
    -> inputs (T, in_len), targets (T, out_len)."""
    clip = np.asarray(clip, dtype=np.float32)
    T = (len(clip) - in_len) // out_len
    if T < 1:
        raise ValueError(f"a clip of {len(clip)} samples is too short for frames of {in_len} + {out_len}.")
    starts = np.arange(T) * out_len
    inputs = clip[starts[:, None] + np.arange(in_len)]
    targets = clip[starts[:, None] + in_len + np.arange(out_len)]
    return inputs, targets


def random_batches(clips, batch_size: int, seq_len: int, *, seed: int = 0, in_len: int = 20, out_len: int = 10):
    """`batch_fn(step)` -> (x (B, L, in_len), y (B, L, out_len)): random windows of `seq_len` steps."""
    need = in_len + seq_len * out_len
    long_enough = [c for c in clips if len(c) >= need]
    if not long_enough:
        raise ValueError(f"no clip has the {need} samples a window of {seq_len} steps needs.")

    def batch_fn(step: int):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        xs, ys = [], []
        for i in torch.randint(len(long_enough), (batch_size,), generator=g).tolist():
            c = long_enough[i]
            start = int(torch.randint(len(c) - need + 1, (1,), generator=g))
            x, y = frames(c[start:start + need], in_len, out_len)
            xs.append(x)
            ys.append(y)
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))

    return batch_fn


# ---------------------------------------------------------------- mixture of Gaussians over a frame
def gmm_output_size(num_mixtures: int, dim: int) -> int:
    """A weight, `dim` means and `dim` standard deviations per component: M (1 + 2 dim)."""
    return num_mixtures * (1 + 2 * dim)


def _split_gmm(params: torch.Tensor, dim: int):
    M = params.shape[-1] // (1 + 2 * dim)
    if params.shape[-1] != M * (1 + 2 * dim):
        raise ValueError(f"the last axis must hold M (1 + 2 x {dim}) numbers, got {params.shape[-1]}.")
    logit, mu, log_sigma = params.split([M, M * dim, M * dim], dim=-1)
    shape = params.shape[:-1] + (M, dim)
    return F.log_softmax(logit, -1), mu.reshape(shape), log_sigma.reshape(shape).clamp(min=MIN_LOG_SIGMA)


def gmm_nll(params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log sum_j pi_j N(target | mu_j, diag sigma_j^2): params (..., M (1 + 2D)), target (..., D) -> (...) nats."""
    dim = target.shape[-1]
    log_pi, mu, log_sigma = _split_gmm(params, dim)
    z = (target[..., None, :] - mu) * torch.exp(-log_sigma)  # (..., M, D)
    log_n = -0.5 * (z**2).sum(-1) - log_sigma.sum(-1) - 0.5 * dim * math.log(2 * math.pi)  # (..., M)
    return -torch.logsumexp(log_pi + log_n, dim=-1)


def gmm_loss(params, targets, mask=None) -> torch.Tensor:
    """Mean `gmm_nll` per frame, the loss `RecurrentNet` trains on."""
    nll = gmm_nll(params, targets)
    return nll.mean() if mask is None else (nll * mask).sum() / mask.sum().clamp(min=1.0)


@torch.no_grad()
def gmm_sample(params: torch.Tensor, dim: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per row: params (B, M (1 + 2D)) -> (B, D)."""
    log_pi, mu, log_sigma = _split_gmm(params, dim)
    j = torch.multinomial(log_pi.exp().cpu(), 1, generator=generator)[:, 0]
    rows = torch.arange(len(j))
    noise = torch.randn(len(j), dim, generator=generator)
    return mu[rows, j].cpu() + log_sigma[rows, j].exp().cpu() * noise


@torch.no_grad()
def evaluate_nll(model, clips, *, in_len: int = 20, out_len: int = 10) -> float:
    """Nats per frame of `out_len` samples over whole clips (already scaled)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for clip in clips:
        if len(clip) < in_len + out_len:
            continue
        x, y = frames(clip, in_len, out_len)
        params, _, _ = model(torch.from_numpy(x)[None].to(device))
        total += float(gmm_nll(params, torch.from_numpy(y)[None].to(device)).sum())
        count += len(y)
    model.train(was_training)
    return total / count


def single_gaussian_nll(train_clips, test_clips, *, scale: WaveScale | None = None, out_len: int = 10,
                        in_len: int = 20) -> float:
    """The baseline: one full-covariance Gaussian over the `out_len` target samples, fitted on the
    training frames -> mean nats per frame on the test clips (in the scaled units)."""
    scale = scale or WaveScale()
    train = np.concatenate([frames(scale.apply(c), in_len, out_len)[1] for c in train_clips if len(c) >= in_len + out_len])
    test = np.concatenate([frames(scale.apply(c), in_len, out_len)[1] for c in test_clips if len(c) >= in_len + out_len])
    mean, cov = train.mean(0), np.cov(train.T) + 1e-6 * np.eye(out_len)
    _, logdet = np.linalg.slogdet(cov)
    d = test - mean
    maha = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
    return float((0.5 * (maha + logdet + out_len * math.log(2 * math.pi))).mean())


@torch.no_grad()
def generate(step_fn, seconds: float, sample_rate: int, *, primer=None, generator: torch.Generator | None = None,
             in_len: int = 20, out_len: int = 10) -> np.ndarray:
    """Audio from a frame model, `out_len` samples at a time. `step_fn(x (1, in_len), state) -> (params, state)`;
    the next input is the last `in_len` samples. Starts from `primer` (scaled) or silence."""
    audio = list(np.zeros(in_len, np.float32) if primer is None else np.asarray(primer, np.float32)[-in_len:])
    if len(audio) < in_len:
        raise ValueError(f"the primer needs at least {in_len} samples.")
    state, n = None, int(seconds * sample_rate)
    start = len(audio)
    while len(audio) - start < n:
        params, state = step_fn(torch.tensor(audio[-in_len:])[None], state)
        audio.extend(gmm_sample(params, out_len, generator=generator)[0].tolist())
    return np.asarray(audio[start:start + n], dtype=np.float32)


# ---------------------------------------------------------------- profiles
@dataclass
class SpeechRun:
    budget: int  # recurrent parameters, the same for each unit
    train: TrainConfig = field(default_factory=TrainConfig)
    batch_size: int = 16
    seq_len: int = 100  # frames per window (100 x 10 samples = 62.5 ms at 16 kHz)
    num_mixtures: int = 20


def run_settings(profile: str) -> SpeechRun:
    """quick: a 20k budget and 300 updates per unit; full: the paper's 169k budget."""
    if profile == "quick":
        return SpeechRun(budget=20_000, train=TrainConfig(steps=300, lr=2e-3, optimizer="rmsprop", clip_norm=1.0,
                                                          valid_every=50, checkpoint_every=0, progress=False))
    if profile == "full":
        return SpeechRun(budget=169_100, train=TrainConfig(steps=20_000, lr=1e-3, optimizer="rmsprop", clip_norm=1.0,
                                                           valid_every=1000, checkpoint_every=1000), seq_len=200)
    raise ValueError(f"profile={profile!r} is not a profile; use 'quick' or 'full'.")
