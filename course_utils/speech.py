"""Speech: readers shared by notebooks 04 (raw speech at 16 kHz) and 05 (HiFi-GAN at 22.05 kHz), and the
raw-speech task of Chung et al. (2014): read 20 samples, predict the next 10 with a mixture of Gaussians.

Sources, each read as {name: mono float32 clip in [-1, 1]} at the asked sample rate:
- 'fillets' (the default): one male speaker, the Czech voice of the big fish in the game Fish Fillets NG,
  643 clips `*-v-*.ogg`, 37 minutes at 22.05 kHz, from the Debian package `fillets-ng-data-cs`, installed
  or unpacked into the data cache without root by `python -m course_utils.speech --fetch` (what `make` runs);
- any folder of .wav/.flac/.ogg files: a path, or `COURSE_SPEECH_DIR` when no source is given;
- LJSpeech 1.1: 'ljspeech:<folder>', or a folder that holds `metadata.csv` and `wavs/`.
Clips are held out by a stable hash of their name, so every notebook holds out the same ones.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .runtime import data_dir, save_npz_atomic, step_seed
from .errors import DatasetNotFoundError
from .train import TrainConfig

FILLETS_PACKAGE = "fillets-ng-data-cs"
FILLETS_IN_PACKAGE = "usr/share/games/fillets-ng/sound"  # the clips' folder inside the package
FILLETS_DIR = Path("/") / FILLETS_IN_PACKAGE  # where the installed package puts them
SPEECH_ENV = "COURSE_SPEECH_DIR"
LJSPEECH_URL = "https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
SPLITS = ("train", "valid", "test")
CACHE_VERSION = 2  # bump when the decoded clips change (resampler, names, file format)
# Lossy codecs overshoot full scale a little (clips of the Debian speaker peak at 1.17): clipped without a
# word. A file that peaks higher was written too loud, and clipping distorts it: a warning.
LOUD_PEAK = 1.5
# Averaging the channels of anti-phase stereo cancels them: warn when the mono mix keeps less than this
# fraction of the channels' RMS.
CANCELLED_FRACTION = 0.1
# sigma >= exp(-7) ~ 1e-3 of the waveform's standard deviation: finer than any detail the task needs,
# and it keeps the density finite in float32 whatever the network emits.
MIN_LOG_SIGMA = -7.0
HOW_TO_GET = (f"Install the course's speech with `sudo apt-get install --no-install-recommends fillets-ng-data-cs` "
              f"(Debian/Ubuntu, 39 MB; without root: `python -m course_utils.speech --fetch` unpacks it into the "
              f"data cache), or set {SPEECH_ENV} to a folder of .wav/.flac/.ogg files, or download "
              f"LJSpeech ({LJSPEECH_URL}), unpack it and use source='ljspeech:<folder>'.")


# ---------------------------------------------------------------- one file
def read_audio(path: str | os.PathLike, sample_rate: int, *, strict: bool = False) -> np.ndarray:
    """One audio file -> (N,) mono float32 in [-1, 1] at `sample_rate`.

    Channels are averaged; another rate is resampled (polyphase, Kaiser window), or rejected with `strict`.
    A file far louder than full scale (clipped) or whose channels cancel in the mix is read with a warning.
    """
    import soundfile as sf
    from scipy.signal import resample_poly

    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"No audio file at {path}.")
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (N, channels)
    except (RuntimeError, TypeError, ValueError) as err:
        raise _unreadable(path, err) from err
    if audio.shape[0] == 0 or not np.isfinite(audio).all():
        raise ValueError(f"{path} holds {'no samples' if audio.shape[0] == 0 else 'NaN or infinite samples'}; "
                         "replace or delete it.")
    peak = float(np.abs(audio).max())
    if peak > LOUD_PEAK:
        warnings.warn(f"{path} peaks at {peak:.2f}, beyond the [-1, 1] of audio: its loud parts are clipped at 1, "
                      "which distorts them. Scale the file down (divide by its peak) and save it again.", stacklevel=2)
    channel_rms = float(np.sqrt((audio**2).mean(axis=0)).mean())
    audio = audio.mean(axis=1)
    if channel_rms > 1e-4 and float(np.sqrt((audio**2).mean())) < CANCELLED_FRACTION * channel_rms:
        warnings.warn(f"{path}: its channels cancel when averaged to mono (anti-phase stereo), "
                      "so the clip is nearly silent. Save one channel of it as a mono file.", stacklevel=2)
    if rate != sample_rate:
        if strict:
            raise ValueError(f"{path} is at {rate} Hz, not the {sample_rate} Hz asked for: resample it first, "
                             "or use strict=False to resample while reading.")
        g = math.gcd(rate, sample_rate)
        audio = resample_poly(audio, sample_rate // g, rate // g)  # 22050 -> 16000 is up 320, down 441
    return np.clip(audio, -1.0, 1.0).astype(np.float32)  # lossy codecs and resampling overshoot a little


def _unreadable(path, err: Exception) -> ValueError:
    return ValueError(f"{path} is not a readable audio file ({err}); it may be damaged: replace or delete it.")


# ---------------------------------------------------------------- which files a source names
def speech_files(source: str | os.PathLike | None = None, *, limit: int | None = None) -> tuple[str, dict[str, Path]]:
    """The source (resolved as in `read_speech`) and its files as {name: path}, in sorted order.

    Names are what the split hashes: the file name for the Debian speaker and LJSpeech, the path
    relative to the folder (with '/') for a folder.
    """
    if source is None:
        source = os.environ.get(SPEECH_ENV, "").strip() or "fillets"
    source = str(source)
    if source == "fillets":
        folders = fillets_dirs()
        files = next((found for found in (sorted(d.rglob("*-v-*.ogg")) for d in folders if d.is_dir()) if found), [])
        if not files:
            raise DatasetNotFoundError(f"No speech in {' or '.join(map(str, folders))} (no *-v-*.ogg files). "
                                       f"{HOW_TO_GET}")
        named = {f.name: f for f in files}  # the names are unique across the game's levels
    elif source.startswith("ljspeech:") or (Path(source) / "metadata.csv").is_file():
        source = source if source.startswith("ljspeech:") else f"ljspeech:{source}"
        named = _ljspeech_files(Path(source.split(":", 1)[1]).expanduser())
    else:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise DatasetNotFoundError(f"The speech folder {folder} does not exist. {HOW_TO_GET}")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not files:
            raise DatasetNotFoundError(f"No .wav, .flac or .ogg files under {folder}. {HOW_TO_GET}")
        named = {f.relative_to(folder).as_posix(): f for f in files}
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be None or a count >= 1, got {limit}.")
        named = dict(list(named.items())[:limit])
    return source, named


def fillets_dirs() -> tuple[Path, Path]:
    """Where the Debian speaker may be: the installed package, then the copy `fetch_fillets` unpacked."""
    return FILLETS_DIR, data_dir() / FILLETS_PACKAGE / FILLETS_IN_PACKAGE


def fetch_fillets(dest: str | os.PathLike | None = None) -> Path:
    """Download the Debian speaker with `apt-get download` and unpack it with `dpkg -x` into `dest`
    (default: `runtime.data_dir() / "fillets-ng-data-cs"`); needs apt, not root. Returns the clips' folder."""
    dest = Path(dest) if dest is not None else data_dir() / FILLETS_PACKAGE
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        raise DatasetNotFoundError(f"apt-get and dpkg are not on this machine, so {FILLETS_PACKAGE} cannot be "
                                   f"fetched here. {HOW_TO_GET}")
    with tempfile.TemporaryDirectory(prefix="fillets-") as tmp:
        done = _apt_download(tmp)
        if done.returncode != 0 and os.geteuid() == 0:  # empty package lists (a fresh image): root may refresh them
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            done = _apt_download(tmp)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise DatasetNotFoundError(f"`apt-get download {FILLETS_PACKAGE}` failed ({last}). If apt's package "
                                       f"lists are empty, run `sudo apt-get update` first. {HOW_TO_GET}")
        unpacked = Path(tmp) / "unpacked"  # dpkg -x into a temporary folder, then one rename: never half there
        subprocess.run(["dpkg", "-x", str(next(Path(tmp).glob("*.deb"))), str(unpacked)], check=True)
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(unpacked), str(dest))
    return dest / FILLETS_IN_PACKAGE


def _apt_download(folder: str) -> subprocess.CompletedProcess:
    return subprocess.run(["apt-get", "download", "-q", FILLETS_PACKAGE], cwd=folder, capture_output=True, text=True)


def _ljspeech_files(root: Path) -> dict[str, Path]:
    """LJSpeech's `metadata.csv` rows 'id|text|normalized text' -> {'<id>.wav': root/wavs/<id>.wav}."""
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise DatasetNotFoundError(f"No LJSpeech metadata.csv in {root}. {HOW_TO_GET}")
    named = {}
    for n, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if line.count("|") != 2:
            raise ValueError(f"{meta}, line {n}: expected 'id|text|normalized text', got {line[:60]!r}.")
        wav = root / "wavs" / f"{line.split('|', 1)[0]}.wav"
        if not wav.is_file():
            raise DatasetNotFoundError(f"{meta}, line {n}, names {wav.name}, which is not in {root / 'wavs'}: "
                                       "unpack the archive again, or delete the row.")
        named[wav.name] = wav
    if not named:
        raise DatasetNotFoundError(f"{meta} holds no rows. {HOW_TO_GET}")
    return named


# ---------------------------------------------------------------- decoding, with a cache
def read_speech(source: str | os.PathLike | None = None, *, sample_rate: int = 16000, strict: bool = False,
                cache: bool = True, limit: int | None = None) -> dict[str, np.ndarray]:
    """All clips of a source as {name: (N,) float32} at `sample_rate`, in sorted order.

    `source`: 'fillets', a folder, or 'ljspeech:<folder>'; by default $COURSE_SPEECH_DIR if set, else
    'fillets'. `limit` keeps the first files. Decoded clips are cached per (files, sample rate) under
    `runtime.data_dir() / "speech"`. An unreadable file is skipped with a warning that names it; with
    `strict`, it stops the read.
    """
    source, files = speech_files(source, limit=limit)
    if strict:  # checked here too, since a cache may hold clips that were resampled
        _check_rates(files.values(), sample_rate)
    stats = [(name, st.st_size, st.st_mtime_ns) for name, st in ((n, p.stat()) for n, p in files.items())]
    key = hashlib.sha1(repr((source, stats)).encode()).hexdigest()[:10]
    path = data_dir() / "speech" / f"speech-v{CACHE_VERSION}-{key}-{sample_rate}.npz"
    if cache and path.exists():
        return _read_cache(path, list(files), sample_rate)
    tick = time.perf_counter()
    clips = {}
    for name, p in files.items():
        try:
            clips[name] = read_audio(p, sample_rate, strict=strict)
        except ValueError as err:  # one damaged file should not stop the others (strict: it does)
            if strict:
                raise
            warnings.warn(f"skipped {p}: {err}", stacklevel=2)
    if not clips:
        raise DatasetNotFoundError(f"None of the {len(files)} audio files of {source} could be read (see the "
                                   "warnings). Replace them.")
    minutes = sum(len(c) for c in clips.values()) / sample_rate / 60
    print(f"decoded {len(clips)} clips ({minutes:.1f} min) at {sample_rate} Hz in {time.perf_counter() - tick:.0f} s")
    if cache:
        _write_cache(path, clips, sample_rate)
    return clips


def _check_rates(paths, sample_rate: int) -> None:
    import soundfile as sf

    for p in paths:
        try:
            rate = sf.info(str(p)).samplerate
        except (RuntimeError, TypeError, ValueError) as err:
            raise _unreadable(p, err) from err
        if rate != sample_rate:
            raise ValueError(f"{p} is at {rate} Hz, not the {sample_rate} Hz asked for: resample it first, "
                             "or use strict=False to resample while reading.")


def _write_cache(path: Path, clips: dict[str, np.ndarray], sample_rate: int) -> None:
    """All clips end to end in one .npz, written atomically (DDP ranks may race)."""
    save_npz_atomic(path, names=np.array(list(clips)), lengths=np.array([len(c) for c in clips.values()], np.int64),
                    samples=np.concatenate(list(clips.values())), sample_rate=np.array(sample_rate))


def _read_cache(path: Path, names: list[str], sample_rate: int) -> dict[str, np.ndarray]:
    try:  # any failure here means a damaged file (a killed write, a full disk)
        with np.load(path) as saved:
            saved_names, lengths = [str(n) for n in saved["names"]], saved["lengths"]
            samples, rate = saved["samples"], int(saved["sample_rate"])
        # the files that could not be read when the cache was written are left out of it
        ok = set(saved_names) <= set(names) and rate == sample_rate and lengths.sum() == samples.size
    except Exception as err:
        raise ValueError(f"The cached speech {path} is damaged ({type(err).__name__}: {err}); "
                         "delete it and the clips are decoded again.") from err
    if not ok:
        raise ValueError(f"The cached speech {path} does not match its files (names, rate or length); "
                         "delete it and the clips are decoded again.")
    skipped = sorted(set(names) - set(saved_names))
    if skipped:
        warnings.warn(f"{len(skipped)} files were skipped as unreadable when {path.name} was cached: "
                      f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}", stacklevel=3)
    return dict(zip(saved_names, np.split(samples, np.cumsum(lengths)[:-1])))


# ---------------------------------------------------------------- held-out clips
def split_of(name: str, *, valid: float = 0.1, test: float = 0.1) -> str:
    """'train', 'valid' or 'test' from a stable hash (CRC-32) of a clip's name: the same on every machine."""
    if not (0 <= valid and 0 <= test and valid + test < 1):
        raise ValueError(f"valid={valid} and test={test} must be fractions >= 0 that leave some training clips.")
    u = zlib.crc32(name.encode()) / 2**32
    return "valid" if u < valid else "test" if u < valid + test else "train"


def load_speech(source: str | os.PathLike | None = None, *, sample_rate: int = 16000, strict: bool = False,
                cache: bool = True, limit: int | None = None, valid: float = 0.1,
                test: float = 0.1) -> dict[str, list[np.ndarray]]:
    """`read_speech` split by `split_of` into {'train', 'valid', 'test'}: lists of (N,) float32 clips."""
    out: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
    for name, clip in read_speech(source, sample_rate=sample_rate, strict=strict, cache=cache, limit=limit).items():
        out[split_of(name, valid=valid, test=test)].append(clip)
    return out


# ---------------------------------------------------------------- the frame task
@dataclass
class WaveScale:
    """Divide waveforms by their standard deviation on the training clips; `invert` multiplies back."""

    std: float = 1.0  # of all training samples (speech has mean ~0)

    @classmethod
    def fit(cls, clips) -> "WaveScale":
        if not len(clips):
            raise ValueError("WaveScale.fit needs at least one training clip.")
        std = float(np.concatenate(clips).std())
        if not std > 0:
            raise ValueError("the training clips are all silent (standard deviation 0): nothing to scale by.")
        return cls(std)

    def apply(self, clip) -> np.ndarray:
        return (np.asarray(clip, dtype=np.float32) / self.std).astype(np.float32)

    def invert(self, clip) -> np.ndarray:
        return (np.asarray(clip, dtype=np.float32) * self.std).astype(np.float32)


def frames(clip, in_len: int = 20, out_len: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Step t reads samples [out_len t, out_len t + in_len) and predicts the next out_len.

    (N,) clip -> inputs (T, in_len), targets (T, out_len), T = (N - in_len) // out_len.
    """
    clip = np.asarray(clip, dtype=np.float32)
    T = (len(clip) - in_len) // out_len
    if clip.ndim != 1 or T < 1:
        raise ValueError(f"a clip of shape {clip.shape} is too short (or not 1-D) for frames of {in_len} + {out_len}; "
                         f"it needs at least {in_len + out_len} samples.")
    starts = np.arange(T)[:, None] * out_len
    return clip[starts + np.arange(in_len)], clip[starts + in_len + np.arange(out_len)]


def random_batches(clips, batch_size: int, seq_len: int, *, seed: int = 0, in_len: int = 20, out_len: int = 10):
    """`batch_fn(step)` -> (x (B, L, in_len), y (B, L, out_len)): B random windows of L = `seq_len` steps.

    Each step draws its clips and offsets from its own torch.Generator, so a step's batch never changes.
    """
    need = in_len + seq_len * out_len
    long_enough = [c for c in clips if len(c) >= need]
    if not long_enough:
        raise ValueError(f"no clip has the {need} samples a window of {seq_len} steps needs; lower seq_len.")

    def batch_fn(step: int):
        g = torch.Generator().manual_seed(step_seed(seed, step))
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
    """A weight, `dim` means and `dim` log standard deviations per component: M (1 + 2 dim)."""
    return num_mixtures * (1 + 2 * dim)


def _split_gmm(params: torch.Tensor, dim: int):
    """params (..., M (1 + 2D)), ordered [weight logits (M), means (M D), log sigmas (M D)] ->
    log pi (..., M), mu (..., M, D), log sigma (..., M, D)."""
    M = params.shape[-1] // (1 + 2 * dim)
    if M < 1 or params.shape[-1] != M * (1 + 2 * dim):
        raise ValueError(f"the last axis must hold M (1 + 2 x {dim}) numbers for frames of {dim}, "
                         f"got {params.shape[-1]}; size the output layer with gmm_output_size(M, {dim}).")
    logit, mu, log_sigma = params.split([M, M * dim, M * dim], dim=-1)
    shape = params.shape[:-1] + (M, dim)
    return F.log_softmax(logit, -1), mu.reshape(shape), log_sigma.reshape(shape).clamp(min=MIN_LOG_SIGMA)


def gmm_nll(params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log sum_j pi_j N(target | mu_j, diag sigma_j^2) in nats, in log space (log-softmax, logsumexp).

    params (B, L, M (1 + 2D)), target (B, L, D) -> (B, L); any leading shape works.
    """
    dim = target.shape[-1]
    log_pi, mu, log_sigma = _split_gmm(params, dim)
    z = (target[..., None, :] - mu) * torch.exp(-log_sigma)  # (B, L, M, D)
    log_n = -0.5 * (z**2).sum(-1) - log_sigma.sum(-1) - 0.5 * dim * math.log(2 * math.pi)  # (B, L, M)
    return -torch.logsumexp(log_pi + log_n, dim=-1)


def gmm_loss(params, targets, mask=None) -> torch.Tensor:
    """Mean `gmm_nll` per frame (over unmasked frames): the loss `cells.RecurrentNet` trains on."""
    nll = gmm_nll(params, targets)
    return nll.mean() if mask is None else (nll * mask).sum() / mask.sum().clamp(min=1.0)


@torch.no_grad()
def gmm_sample(params: torch.Tensor, dim: int = 10, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """One frame per row: pick a component from pi, then draw from its Gaussian. (B, M (1 + 2D)) -> (B, D) on CPU."""
    log_pi, mu, log_sigma = _split_gmm(params, dim)
    j = torch.multinomial(log_pi.exp().cpu(), 1, generator=generator)[:, 0]  # (B,)
    rows = torch.arange(len(j))
    noise = torch.randn(len(j), dim, generator=generator)
    return mu[rows, j].cpu() + log_sigma[rows, j].exp().cpu() * noise


def periodicity(audio, sample_rate: int, *, fmin: float = 50.0, fmax: float = 500.0) -> float:
    """How voiced a sound is: the highest normalised autocorrelation of `audio` (mean removed) at a lag of one
    pitch period between 1/fmax and 1/fmin seconds. A steady vowel or buzz is near 1, noise near 0 (speech
    with its pauses and consonants in between: about 0.3 over a second)."""
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    lo, hi = int(sample_rate / fmax), int(math.ceil(sample_rate / fmin))
    if len(x) < 2 * hi:
        raise ValueError(f"{len(x)} samples are too few to look for a pitch down to {fmin} Hz: give at least {2 * hi}.")
    x = x - x.mean()
    energy = float(np.dot(x, x))
    if energy == 0.0:
        return 0.0
    return max(float(np.dot(x[:-lag], x[lag:])) / energy for lag in range(lo, hi + 1))


@torch.no_grad()
def evaluate_nll(model, clips, *, in_len: int = 20, out_len: int = 10) -> float:
    """Nats per frame of `out_len` samples over whole clips (already scaled); `model(x) -> (params, loss, state)`."""
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
    if count == 0:
        raise ValueError(f"no clip has the {in_len + out_len} samples of one frame.")
    return total / count


def single_gaussian_nll(train_clips, test_clips, *, scale: WaveScale | None = None, in_len: int = 20,
                        out_len: int = 10) -> float:
    """Baseline: one full-covariance Gaussian over the `out_len` target samples of a frame, fitted on the
    training frames -> mean nats per frame on the test clips, in the units of `scale` (default: fitted
    on `train_clips`, as the models are trained)."""
    scale = scale or WaveScale.fit(train_clips)
    n, total, outer = 0, np.zeros(out_len), np.zeros((out_len, out_len))
    for c in train_clips:  # moments in float64, one clip at a time
        if len(c) >= in_len + out_len:
            y = frames(scale.apply(c), in_len, out_len)[1].astype(np.float64)
            n, total, outer = n + len(y), total + y.sum(0), outer + y.T @ y
    if n <= out_len:
        raise ValueError(f"the training clips give {n} frames, too few to fit a {out_len}-dimensional Gaussian.")
    mean = total / n
    cov = (outer - n * np.outer(mean, mean)) / (n - 1)
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError as err:
        raise ValueError("the training frames do not span all directions (only silence?): "
                         "the Gaussian has no density; use other training clips.") from err
    log_det = 2 * np.log(np.diag(chol)).sum()
    nats, count = 0.0, 0
    for c in test_clips:
        if len(c) >= in_len + out_len:
            d = frames(scale.apply(c), in_len, out_len)[1] - mean  # (T, D)
            z = np.linalg.solve(chol, d.T)  # whitened, (D, T)
            nats += 0.5 * ((z**2).sum() + len(d) * (log_det + out_len * math.log(2 * math.pi)))
            count += len(d)
    if count == 0:
        raise ValueError(f"no test clip has the {in_len + out_len} samples of one frame.")
    return float(nats / count)


# ---------------------------------------------------------------- generation
@torch.no_grad()
def generate(step_fn, seconds: float, sample_rate: int, *, primer=None, generator: torch.Generator | None = None,
             in_len: int = 20, out_len: int = 10) -> np.ndarray:
    """Audio from a frame model, `out_len` samples at a time: `step_fn(x (1, in_len), state) -> (params, state)`,
    params (1, M (1 + 2 out_len)). Each input is the last `in_len` samples so far.

    A `primer` (scaled audio, >= in_len samples) is first run through the model frame by frame, so its
    state has heard it; without one the model starts from `in_len` zeros. -> (seconds x sample_rate,) float32,
    without the primer, in the primer's (scaled) units.
    """
    n = round(seconds * sample_rate)
    if n < 1:
        raise ValueError(f"seconds={seconds} at {sample_rate} Hz is less than one sample.")
    primer = np.zeros(in_len, np.float32) if primer is None else np.asarray(primer, np.float32).reshape(-1)
    if len(primer) < in_len:
        raise ValueError(f"the primer has {len(primer)} samples; it needs at least in_len={in_len}.")
    state = params = None
    for s in range((len(primer) - in_len) % out_len, len(primer) - in_len + 1, out_len):  # the last ends at the end
        params, state = step_fn(torch.from_numpy(primer[s:s + in_len])[None], state)
    audio = np.concatenate([primer[-in_len:], np.zeros(math.ceil(n / out_len) * out_len, np.float32)])
    for t in range(in_len, len(audio), out_len):
        if t > in_len:
            params, state = step_fn(torch.from_numpy(audio[t - in_len:t])[None], state)
        audio[t:t + out_len] = gmm_sample(params.reshape(1, -1), out_len, generator=generator)[0].numpy()
    return audio[in_len:in_len + n]


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


# ---------------------------------------------------------------- the command make runs before the notebooks
def main() -> int:
    """`python -m course_utils.speech --fetch`: say where the speech is, or fetch the Debian speaker."""
    import argparse

    parser = argparse.ArgumentParser(description="Find the course's speech, or fetch the Debian speaker (no root).")
    parser.add_argument("--fetch", action="store_true", help="where no speech is found and apt exists, fetch it")
    args = parser.parse_args()
    try:
        source, files = speech_files()
        print(f"speech: {len(files)} clips ({source}) under {os.path.commonpath(list(files.values()))}")
        return 0
    except DatasetNotFoundError as err:
        if not args.fetch or os.environ.get(SPEECH_ENV, "").strip():  # a folder of one's own is not fetched
            print(err)
            return 1
    if not shutil.which("apt-get"):  # macOS and others: say how, and let the other notebooks run
        print(f"speech: not found and no apt-get here; notebooks 04 and 05 need it. {HOW_TO_GET}")
        return 0
    print(f"speech: fetching {FILLETS_PACKAGE} (39 MB) into {data_dir() / FILLETS_PACKAGE}")
    try:
        folder = fetch_fillets()
    except DatasetNotFoundError as err:
        print(f"speech: {err}", file=sys.stderr)
        return 1
    print(f"speech: {len(speech_files()[1])} clips in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
