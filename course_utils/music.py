"""Polyphonic music as piano rolls (Chung et al. 2014, after Boulanger-Lewandowski et al. 2012).

A piece is a float32 array (T, 88): one row per time step (a quarter-note beat), one column per piano
key (MIDI 21..108), 1 where the key sounds. A model predicts the next row with one sigmoid per key; the
loss is the negative log-likelihood per time step, summed over the keys.

Readers: the Bach chorales of the `music21` corpus (the default, offline), the Boulanger-Lewandowski
pickles (Nottingham, JSB Chorales, MuseData, Piano-midi.de) and any folder of MIDI files.
"""
from __future__ import annotations

import hashlib
import io
import numbers
import pickle
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DatasetNotFoundError
from .train import TrainConfig
from .runtime import save_npz_atomic, step_seed

LOWEST = 21  # MIDI number of the lowest piano key (A0)
NUM_KEYS = 88  # A0 .. C8
CACHE_VERSION = 1
JSB_SPLIT = (229, 76, 77)  # train/valid/test chorales of the published JSB Chorales set (382 in all)


def _roll(events, steps: int) -> np.ndarray:
    """Events (onset, duration, midi pitch) in beats -> (steps, 88): a key sounds at beat b if a note covers it."""
    roll = np.zeros((steps, NUM_KEYS), dtype=np.float32)
    for onset, duration, pitch in events:
        key = int(pitch) - LOWEST
        if not 0 <= key < NUM_KEYS:
            continue  # outside the piano: never in Bach
        first, last = int(np.ceil(onset - 1e-6)), int(np.ceil(onset + duration - 1e-6))
        roll[first:min(last, steps), key] = 1.0
    return roll


def chorale_roll(score) -> np.ndarray:
    """A music21 score -> its piano roll at quarter-note resolution."""
    score = score.stripTies()
    events = [(float(n.offset), float(n.quarterLength), p.midi)
              for n in score.flatten().notes for p in n.pitches]
    if not events:
        raise ValueError("the score has no notes.")
    return _roll(events, int(np.ceil(float(score.highestTime))))


def _split(items: list, proportions, seed: int) -> dict[str, list]:
    order = np.random.default_rng(seed).permutation(len(items))
    total = sum(proportions)
    n_train = round(len(items) * proportions[0] / total)
    n_valid = round(len(items) * proportions[1] / total)
    parts = order[:n_train], order[n_train:n_train + n_valid], order[n_train + n_valid:]
    return {name: [items[i] for i in idx] for name, idx in zip(("train", "valid", "test"), parts)}


def load_chorales(*, seed: int = 0, limit: int | None = None) -> dict[str, list[np.ndarray]]:
    """The 371 Bach chorales of music21 as piano rolls, split train/valid/test in the JSB proportions.

    Converted once (about a minute) and cached under the data folder; `limit` converts only the first
    chorales (for tests).
    """
    from music21 import corpus

    from .runtime import data_dir

    path = data_dir() / "music" / f"chorales-v{CACHE_VERSION}-{limit or 'all'}.npz"
    if path.exists():
        try:
            with np.load(path) as saved:
                lengths, rows, names = saved["lengths"], saved["rolls"], list(saved["names"])
        except Exception as err:
            raise ValueError(f"The cached chorales {path} are damaged ({err}); delete the file to convert again.") from err
        rolls = np.split(rows, np.cumsum(lengths)[:-1])
    else:
        tick = time.perf_counter()
        names = list(corpus.chorales.Iterator(numberingSystem="riemenschneider", returnType="filename"))[:limit]
        if not names:
            raise DatasetNotFoundError("music21 found no Bach chorales: reinstall music21 (pip install music21).")
        rolls, kept = [], []
        for name in names:
            try:
                rolls.append(chorale_roll(corpus.parse(name)))
                kept.append(name)
            except Exception as err:  # one broken file should not stop the conversion
                warnings.warn(f"skipped chorale {name}: {err}")
        names = kept
        save_npz_atomic(path, compressed=True, lengths=np.array([len(r) for r in rolls]),
                        rolls=np.concatenate(rolls), names=np.array(names))
        print(f"converted {len(rolls)} chorales in {time.perf_counter() - tick:.0f} s (cached as {path.name} in the data cache)")
    return _split(list(rolls), JSB_SPLIT, seed)


# ---------------------------------------------------------------- Boulanger-Lewandowski pickles
BOULANGER_URL = "http://www-etud.iro.umontreal.ca/~boulanni/{}.pickle"
# SHA-256 of the published files, to pin where a public source states one. None: no public source we
# could find (the authors' page, the loaders of pyro and others) publishes a checksum, so the downloads
# are unverified; `download_boulanger` then checks their structure and prints the SHA-256 it got.
BOULANGER_SHA256 = {"Nottingham": None, "JSB Chorales": None, "MuseData": None, "Piano-midi.de": None}
# How NumPy pickles an integer scalar such as np.int64(60): scalar(dtype, raw bytes), the dtype built
# by numpy.dtype. The published pickles hold their pitches so; NumPy 2 spells the module numpy._core.
_NUMPY_SCALAR = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}


def _integer_dtype(spec, align=False, copy=True) -> np.dtype:
    dtype = np.dtype(spec, bool(align), True)  # a copy: unpickling then sets its state, never the shared one's
    if dtype.kind not in "iu":
        raise pickle.UnpicklingError(f"the file holds NumPy values of type {dtype}; a pitch must be an integer")
    return dtype


def _integer_scalar(dtype, data):
    if not isinstance(dtype, np.dtype) or dtype.kind not in "iu" or not isinstance(data, (bytes, str)):
        raise pickle.UnpicklingError("the file holds a NumPy scalar that is not an integer pitch")
    if isinstance(data, str):  # a Python 2 pickle, read with encoding="latin1"
        data = data.encode("latin1")
    return np.frombuffer(data, dtype=dtype)[0]


class _ListsOnly(pickle.Unpickler):
    """An unpickler that builds only plain data (dicts, lists, tuples, numbers, and NumPy integer
    scalars, built here from their bytes): it executes no code and allows no other class."""

    def find_class(self, module, name):
        if (module, name) in _NUMPY_SCALAR:
            return _integer_scalar
        if (module, name) == ("numpy", "dtype"):
            return _integer_dtype
        raise pickle.UnpicklingError(f"the file asks for the class {module}.{name}; a music pickle holds only lists")


def _pitch(value, where: str) -> int:
    """A MIDI pitch as an int: a Python or NumPy integer (or a float with no fraction); else a ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not float(value).is_integer():
        raise ValueError(f"{where} has the pitch {value!r} ({type(value).__name__}), not a whole MIDI number: "
                         "the file is not a piano-roll pickle of MIDI pitches, or it was damaged.")
    return int(value)


def load_pickle(path) -> dict[str, list[np.ndarray]]:
    """A Boulanger-Lewandowski pickle ({'train','valid','test'}: lists of sequences of lists of MIDI
    pitches, Python or NumPy integers) -> the same splits as piano rolls. Loaded without executing code."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"No file at {path}. Download it with music.download_boulanger(name, folder).")
    try:
        data = _ListsOnly(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except Exception as err:
        raise ValueError(f"{path} is not a readable music pickle ({type(err).__name__}: {err}).") from err
    if not isinstance(data, dict) or not {"train", "valid", "test"} <= set(data):
        raise ValueError(f"{path} must hold a dict with 'train', 'valid' and 'test'; it holds {type(data).__name__}.")
    out = {}
    for split in ("train", "valid", "test"):
        rolls = []
        for i, seq in enumerate(data[split]):
            roll = np.zeros((len(seq), NUM_KEYS), dtype=np.float32)
            for t, notes in enumerate(seq):
                pitches = [_pitch(p, f"{path}: {split} sequence {i}, step {t}") for p in notes]
                keys = np.asarray(pitches, dtype=int) - LOWEST
                if len(keys) and (keys.min() < 0 or keys.max() >= NUM_KEYS):
                    raise ValueError(f"{path}: {split} sequence {i}, step {t} has a pitch outside MIDI "
                                     f"{LOWEST}..{LOWEST + NUM_KEYS - 1}: {sorted(pitches)}.")
                roll[t, keys] = 1.0
            rolls.append(roll)
        out[split] = rolls
    return out


def download_boulanger(name: str, folder, *, urlopen=None) -> Path:
    """Download one of the four pickles into `folder` (needs internet), check it, return its path.

    Unverified: no public source gives the SHA-256 of these files (see BOULANGER_SHA256), so only their
    structure is checked (it loads as piano rolls); the SHA-256 received is printed to compare by hand."""
    if name not in BOULANGER_SHA256:
        raise ValueError(f"{name!r} is not one of {sorted(BOULANGER_SHA256)}.")
    if urlopen is None:
        from urllib.request import urlopen
    path = Path(folder) / f"{name}.pickle"
    path.parent.mkdir(parents=True, exist_ok=True)
    with urlopen(BOULANGER_URL.format(name.replace(" ", "%20"))) as response:
        payload = response.read()
    digest = hashlib.sha256(payload).hexdigest()
    want = BOULANGER_SHA256[name]
    if want is not None and digest != want:
        raise ValueError(f"the download of {name} has SHA-256 {digest}, expected {want}: it is damaged or changed. "
                         "Try again, or get the file by hand.")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    try:
        load_pickle(tmp)
    except ValueError:
        tmp.unlink()
        raise
    tmp.replace(path)
    if want is None:
        print(f"{name}: SHA-256 {digest} (no published checksum to compare with)")
    return path


# ---------------------------------------------------------------- MIDI folders
def midi_roll(path) -> np.ndarray:
    """One MIDI file -> piano roll at its beats (pretty_midi's beat tracking from the tempo map)."""
    import pretty_midi

    path = Path(path)
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as err:
        raise ValueError(f"{path} is not a readable MIDI file ({type(err).__name__}: {err}).") from err
    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    if not notes:
        raise ValueError(f"{path} holds no notes (only drums, or empty).")
    beats = pm.get_beats()
    period = beats[-1] - beats[-2] if len(beats) > 1 else 0.5

    def beat_of(seconds: float) -> float:  # seconds -> beats, extrapolated after the last beat
        if seconds <= beats[-1]:
            return float(np.interp(seconds, beats, np.arange(len(beats))))
        return len(beats) - 1 + (seconds - beats[-1]) / period

    events = [(beat_of(n.start), beat_of(n.end) - beat_of(n.start), n.pitch) for n in notes]
    steps = int(np.ceil(max(o + d for o, d, _ in events)))
    return _roll(events, max(steps, 1))


def load_midi_folder(folder, *, seed: int = 0, proportions=(8, 1, 1)) -> dict[str, list[np.ndarray]]:
    """Every .mid/.midi file under `folder` as a piano roll, split train/valid/test by a seeded shuffle."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    if not files:
        raise DatasetNotFoundError(f"No .mid or .midi files under {folder}.")
    return _split([midi_roll(p) for p in files], proportions, seed)


# ---------------------------------------------------------------- batches, loss, baseline
def pad_rolls(rolls) -> tuple[torch.Tensor, torch.Tensor]:
    """Rolls (T_i, 88) -> x (B, T_max, 88) and mask (B, T_max)."""
    T = max(len(r) for r in rolls)
    x = torch.zeros(len(rolls), T, NUM_KEYS)
    mask = torch.zeros(len(rolls), T)
    for b, r in enumerate(rolls):
        x[b, :len(r)] = torch.as_tensor(r)
        mask[b, :len(r)] = 1.0
    return x, mask


def random_batches(rolls, batch_size: int, *, max_len: int | None = None, seed: int = 0):
    """`batch_fn(step)` -> (inputs, targets, mask): random pieces, each cut to a random window of at
    most `max_len` + 1 steps; inputs are rows 0..T-2, targets rows 1..T-1."""
    def batch_fn(step: int):
        g = torch.Generator().manual_seed(step_seed(seed, step))
        windows = []
        for i in torch.randint(len(rolls), (batch_size,), generator=g).tolist():
            r = rolls[i]
            if max_len is not None and len(r) > max_len + 1:
                start = int(torch.randint(len(r) - max_len, (1,), generator=g))
                r = r[start:start + max_len + 1]
            windows.append(r)
        x, mask = pad_rolls(windows)
        return x[:, :-1], x[:, 1:], mask[:, 1:]

    return batch_fn


def roll_nll(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood in nats per time step, summed over keys, averaged over (unmasked) steps.

    logits, targets (B, T, 88); mask (B, T)."""
    per_step = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)  # (B, T)
    if mask is None:
        return per_step.mean()
    return (per_step * mask).sum() / mask.sum().clamp(min=1.0)


@torch.no_grad()
def evaluate_nll(model, rolls, *, batch_size: int = 32) -> float:
    """Nats per time step over whole pieces (every step but the first is predicted)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, steps = 0.0, 0.0
    for i in range(0, len(rolls), batch_size):
        x, mask = pad_rolls(rolls[i:i + batch_size])
        x, mask = x.to(device), mask.to(device)
        logits, _, _ = model(x[:, :-1])
        m = mask[:, 1:]
        total += float((F.binary_cross_entropy_with_logits(logits, x[:, 1:], reduction="none").sum(-1) * m).sum())
        steps += float(m.sum())
    model.train(was_training)
    return total / steps


def independent_bernoulli_nll(train_rolls, test_rolls, *, smoothing: float = 1.0) -> float:
    """The baseline: each key an independent Bernoulli with its training frequency (add-`smoothing`
    counts so that no key has probability 0) -> nats per time step on `test_rolls` (all steps)."""
    rows = np.concatenate(train_rolls)
    p = (rows.sum(0) + smoothing) / (len(rows) + 2 * smoothing)  # (88,)
    test = np.concatenate(test_rolls)
    return float(-(test * np.log(p) + (1 - test) * np.log1p(-p)).sum(1).mean())


def describe(rolls) -> dict:
    """Data statistics: pieces, time steps, lengths, keys sounding per step, pitch range used."""
    lengths = np.array([len(r) for r in rolls])
    rows = np.concatenate(rolls)
    used = np.flatnonzero(rows.any(0))
    return {"pieces": len(rolls), "steps": int(lengths.sum()), "mean_length": round(float(lengths.mean()), 1),
            "min_length": int(lengths.min()), "max_length": int(lengths.max()),
            "keys_per_step": round(float(rows.sum(1).mean()), 2),
            "pitch_range": (int(used.min()) + LOWEST, int(used.max()) + LOWEST) if len(used) else None}


# ---------------------------------------------------------------- profiles
@dataclass
class MusicRun:
    budget: int  # parameters of the recurrent layer, the same for each unit
    train: TrainConfig = field(default_factory=TrainConfig)
    batch_size: int = 16
    max_len: int | None = 100


def run_settings(profile: str) -> MusicRun:
    """quick: the paper's 20k budget, 2500 updates per unit; full: the same budget, 10 000 updates."""
    if profile == "quick":
        return MusicRun(budget=20_300, train=TrainConfig(steps=2500, lr=3e-3, optimizer="rmsprop", clip_norm=1.0,
                                                         valid_every=100, checkpoint_every=0, progress=False))
    if profile == "full":
        return MusicRun(budget=20_300, train=TrainConfig(steps=10_000, lr=1e-3, optimizer="rmsprop", clip_norm=1.0,
                                                         valid_every=500, checkpoint_every=1000))
    raise ValueError(f"profile={profile!r} is not a profile; use 'quick' or 'full'.")


# ---------------------------------------------------------------- generation, MIDI, sound, pictures
@torch.no_grad()
def sample_continuation(step_fn, primer, steps: int, *, generator: torch.Generator | None = None) -> np.ndarray:
    """Continue `primer` (T, 88) for `steps` steps. `step_fn(x (1, 88), state) -> (logits (1, 88), state)`;
    every key of every new step is a Bernoulli draw. Returns the new steps (steps, 88)."""
    primer = torch.as_tensor(np.asarray(primer), dtype=torch.float32)
    if primer.ndim != 2 or primer.shape[1] != NUM_KEYS or len(primer) == 0:
        raise ValueError(f"the primer must be a (T, {NUM_KEYS}) piano roll with T >= 1, got {tuple(primer.shape)}.")
    state = None
    for row in primer:
        logits, state = step_fn(row[None], state)
    out = []
    for _ in range(steps):
        row = (torch.rand(1, NUM_KEYS, generator=generator) < torch.sigmoid(logits)).float()
        out.append(row[0])
        logits, state = step_fn(row, state)
    return torch.stack(out).numpy()


def to_midi(roll, path=None, *, tempo: float = 100.0, program: int = 0):
    """Piano roll -> pretty_midi.PrettyMIDI (a key held over consecutive steps is one note); saved if `path`."""
    import pretty_midi

    roll = np.asarray(roll) > 0.5
    beat = 60.0 / tempo
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(program=program)
    padded = np.vstack([np.zeros((1, NUM_KEYS), bool), roll, np.zeros((1, NUM_KEYS), bool)])
    for key in range(NUM_KEYS):
        changes = np.flatnonzero(np.diff(padded[:, key].astype(int)))
        for start, end in zip(changes[::2], changes[1::2]):
            inst.notes.append(pretty_midi.Note(velocity=80, pitch=key + LOWEST, start=start * beat, end=end * beat))
    pm.instruments.append(inst)
    if path is not None:
        pm.write(str(path))
    return pm


def synthesize(roll, sample_rate: int = 16000, *, tempo: float = 100.0) -> np.ndarray:
    """The roll as sound (pretty_midi's sine-wave synthesiser), scaled to [-0.9, 0.9]."""
    audio = to_midi(roll, tempo=tempo).synthesize(fs=sample_rate)
    return (0.9 * audio / max(np.abs(audio).max(), 1e-9)).astype(np.float32)


def plot_piano_roll(roll, ax=None, *, title: str = ""):
    """Time steps across, keys up; octave lines at every C."""
    import matplotlib.pyplot as plt

    roll = np.asarray(roll)
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3))
    used = np.flatnonzero(roll.any(0))
    lo, hi = (used.min() - 2, used.max() + 3) if len(used) else (0, NUM_KEYS)
    ax.imshow(roll[:, lo:hi].T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
              extent=(0, len(roll), lo + LOWEST - 0.5, hi + LOWEST - 0.5))
    cs = [p for p in range(lo + LOWEST, hi + LOWEST) if p % 12 == 0]
    ax.set_yticks(cs, [f"C{p // 12 - 1}" for p in cs])
    ax.set_xlabel("time step (quarter notes)")
    ax.set_title(title, fontsize=10, loc="left")
    return ax
