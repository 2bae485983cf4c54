import pickle

import numpy as np
import pytest
import torch

from course_utils import music
from course_utils.text import DatasetNotFoundError


def roll_of(steps):
    r = np.zeros((len(steps), music.NUM_KEYS), np.float32)
    for t, keys in enumerate(steps):
        r[t, [k - music.LOWEST for k in keys]] = 1.0
    return r


def test_roll_covers_beats_of_each_note():
    r = music._roll([(0.0, 2.0, 60), (1.0, 0.5, 64), (2.5, 1.0, 67)], 4)
    assert r[:, 60 - 21].tolist() == [1, 1, 0, 0]
    assert r[:, 64 - 21].tolist() == [0, 1, 0, 0]
    assert r[:, 67 - 21].tolist() == [0, 0, 0, 1]  # starts off the beat: sounds at beat 3


def test_a_real_chorale_converts():
    from music21 import corpus

    roll = music.chorale_roll(corpus.parse("bach/bwv269"))
    assert roll.shape == (63, 88) and 3 <= roll.sum(1).mean() <= 4.1  # four voices, some held together
    assert roll[0, [43 - 21, 59 - 21, 62 - 21, 67 - 21]].tolist() == [1, 1, 1, 1]


def test_chorales_split_in_jsb_proportions_and_cache(monkeypatch):
    splits = music.load_chorales(limit=12)
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [7, 2, 3]
    again = music.load_chorales(limit=12)  # from the cache
    np.testing.assert_array_equal(splits["test"][0], again["test"][0])
    other = music.load_chorales(limit=12, seed=1)
    assert any(len(a) != len(b) or (a != b).any() for a, b in zip(splits["train"], other["train"]))


def write_pickle(path, data):
    path.write_bytes(pickle.dumps(data))
    return path


def test_boulanger_pickle_reader(tmp_path):
    data = {"train": [[[60, 64], [], [62]]], "valid": [[(60,)]], "test": [[[48, 52, 55]]]}
    rolls = music.load_pickle(write_pickle(tmp_path / "a.pickle", data))
    np.testing.assert_array_equal(rolls["train"][0], roll_of([[60, 64], [], [62]]))
    with pytest.raises(ValueError, match="outside MIDI"):
        music.load_pickle(write_pickle(tmp_path / "b.pickle", {"train": [[[10]]], "valid": [], "test": []}))
    with pytest.raises(ValueError, match="'train', 'valid' and 'test'"):
        music.load_pickle(write_pickle(tmp_path / "c.pickle", [1, 2]))
    with pytest.raises(ValueError, match="class"):  # a pickle that would build an object: refused, nothing runs
        music.load_pickle(write_pickle(tmp_path / "d.pickle", {"train": [np.zeros(2)], "valid": [], "test": []}))
    with pytest.raises(DatasetNotFoundError, match="download_boulanger"):
        music.load_pickle(tmp_path / "missing.pickle")


class Py2Int:
    """Pickles as a NumPy integer did under Python 2: scalar(dtype, its bytes as a str)."""

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        scalar = np.int64(0).__reduce__()[0]  # NumPy's own scalar constructor
        return scalar, (np.dtype(np.int64), np.int64(self.value).tobytes().decode("latin1"))


def test_published_pickles_with_numpy_integer_pitches_load(tmp_path):
    steps = [[60, 64], [], [62]]
    data = {"train": [[tuple(np.int64(p) for p in keys) for keys in steps]], "valid": [[(np.int32(60),)]],
            "test": [[(np.uint8(48),)]]}
    rolls = music.load_pickle(write_pickle(tmp_path / "numpy.pickle", data))  # numpy._core spelling (NumPy 2)
    np.testing.assert_array_equal(rolls["train"][0], roll_of(steps))
    assert rolls["valid"][0][0, 60 - music.LOWEST] == 1 and rolls["test"][0][0, 48 - music.LOWEST] == 1
    py2 = {"train": [[tuple(Py2Int(p) for p in keys) for keys in steps]], "valid": [], "test": []}
    raw = pickle.dumps(py2, protocol=2).replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"cnumpy.core.multiarray\nscalar" in raw
    (tmp_path / "py2.pickle").write_bytes(raw)
    np.testing.assert_array_equal(music.load_pickle(tmp_path / "py2.pickle")["train"][0], roll_of(steps))


def test_non_integer_pitches_and_other_numpy_values_are_refused(tmp_path):
    for i, bad in enumerate((60.7, "60", True)):
        path = write_pickle(tmp_path / f"p{i}.pickle", {"train": [[[bad]]], "valid": [], "test": []})
        with pytest.raises(ValueError, match="not a whole MIDI number"):
            music.load_pickle(path)
    for i, bad in enumerate((np.float64(60.5), np.float32(60.0), np.array([60]), np.str_("60"))):
        path = write_pickle(tmp_path / f"n{i}.pickle", {"train": [[[bad]]], "valid": [], "test": []})
        with pytest.raises(ValueError, match="not a readable music pickle.*(integer|class)"):  # only integer scalars
            music.load_pickle(path)


def test_download_checks_the_file(tmp_path, monkeypatch):
    import hashlib
    import io

    payload = pickle.dumps({"train": [[[60]]], "valid": [[[62]]], "test": [[[64]]]})
    fake = lambda url: io.BytesIO(payload)  # noqa: E731
    monkeypatch.setitem(music.BOULANGER_SHA256, "Nottingham", hashlib.sha256(payload).hexdigest())
    path = music.download_boulanger("Nottingham", tmp_path, urlopen=fake)
    assert music.load_pickle(path)["test"][0].sum() == 1
    monkeypatch.setitem(music.BOULANGER_SHA256, "Nottingham", "0" * 64)
    (tmp_path / "Nottingham.pickle").unlink()
    with pytest.raises(ValueError, match="expected"):
        music.download_boulanger("Nottingham", tmp_path, urlopen=fake)
    assert not (tmp_path / "Nottingham.pickle").exists()
    with pytest.raises(ValueError, match="one of"):
        music.download_boulanger("Bach", tmp_path, urlopen=fake)


def test_midi_round_trip_and_folder(tmp_path):
    piece = roll_of([[60, 64], [60, 64], [62], [], [67, 71]])
    music.to_midi(piece, tmp_path / "a.mid", tempo=120)
    back = music.midi_roll(tmp_path / "a.mid")
    np.testing.assert_array_equal(back[:len(piece)], piece)
    notes = music.to_midi(piece).instruments[0].notes
    assert len(notes) == 5 and max(n.end - n.start for n in notes) == pytest.approx(2 * 0.6)  # held C and E
    (tmp_path / "broken.mid").write_bytes(b"MThd garbage")
    with pytest.raises(ValueError, match="broken.mid"):
        music.load_midi_folder(tmp_path)
    with pytest.raises(DatasetNotFoundError):
        music.load_midi_folder(tmp_path / "nothing")


def test_nll_and_baseline_by_hand():
    logits = torch.zeros(1, 2, 88)
    targets = torch.zeros(1, 2, 88)
    mask = torch.tensor([[1.0, 0.0]])
    assert music.roll_nll(logits, targets, mask).item() == pytest.approx(88 * np.log(2))
    train = [roll_of([[60], [60], [62], []])]  # key 60 in 2 of 4 steps, 62 in 1, others never
    test = [roll_of([[60]])]
    p60, p_other = 3 / 6, 1 / 6  # add-one smoothing
    p62 = 2 / 6
    want = -(np.log(p60) + np.log(1 - p62) + 86 * np.log(1 - p_other))
    assert music.independent_bernoulli_nll(train, test) == pytest.approx(want, rel=1e-5)


def test_batches_and_continuation():
    rolls = [roll_of([[60 + t % 5] for t in range(30)]), roll_of([[62]] * 12)]
    x, y, mask = music.random_batches(rolls, 4, max_len=10, seed=0)(0)
    assert x.shape == y.shape and x.shape[1] <= 10 and mask.shape == x.shape[:2]
    torch.testing.assert_close(music.random_batches(rolls, 4, max_len=10, seed=0)(3)[0],
                               music.random_batches(rolls, 4, max_len=10, seed=0)(3)[0])
    sure = lambda x, state: (torch.where(torch.arange(88) == 39, 50.0, -50.0)[None], state)  # noqa: E731
    out = music.sample_continuation(sure, rolls[1][:2], 5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (5, 88) and (out[:, 39] == 1).all() and out.sum() == 5
    with pytest.raises(ValueError, match="primer"):
        music.sample_continuation(sure, np.zeros((2, 12)), 3)
    assert music.describe(rolls)["pieces"] == 2
    assert abs(music.synthesize(rolls[1][:4], 8000)).max() == pytest.approx(0.9, rel=1e-3)
