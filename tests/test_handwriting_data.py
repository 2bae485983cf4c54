import numpy as np
import pytest
import torch

from course_utils.handwriting import data
from course_utils.handwriting.models import HandwritingPredictor, PredictionConfig


def lines(n=10, seed=0):
    rng = np.random.default_rng(seed)
    strokes = []
    for i in range(n):
        s = np.column_stack([rng.normal(3, 2, 5 + i), rng.normal(0, 1, 5 + i), np.zeros(5 + i)]).astype(np.float32)
        s[-1, 2] = 1
        strokes.append(s)
    return [f"line {i}" for i in range(n)], strokes


def test_split_is_seeded_and_scaled_on_train():
    texts, strokes = lines()
    train, valid = data.split_lines(texts, strokes, valid_fraction=0.2, seed=1)
    assert len(train) == 8 and len(valid) == 2 and not set(train.texts) & set(valid.texts)
    again, _ = data.split_lines(texts, strokes, valid_fraction=0.2, seed=1)
    assert again.texts == train.texts
    rows = torch.cat(train.strokes)
    torch.testing.assert_close(rows[:, :2].std(0, unbiased=False), torch.ones(2), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="pair up"):
        data.split_lines(texts, strokes[:-1])


def test_pad_batch_shifts_targets_and_masks_padding():
    a, b = torch.ones(3, 3), 2 * torch.ones(5, 3)
    x, y, mask = data.pad_batch([a, b])
    assert x.shape == y.shape == (2, 5, 3) and mask.tolist() == [[1, 1, 1, 0, 0], [1] * 5]
    assert x[0, 0].tolist() == [0, 0, 1] and torch.equal(x[0, 1:3], a[:2]) and torch.equal(y[0, :3], a)
    x, _, mask = data.pad_batch([a, b], max_len=2)
    assert x.shape == (2, 2, 3)


def test_random_batches_depend_only_on_the_step():
    texts, strokes = lines()
    train, _ = data.split_lines(texts, strokes)
    fn = data.random_batches(train, 4, seed=3)
    assert torch.equal(fn(7)[0], fn(7)[0]) and not torch.equal(fn(7)[0], fn(8)[0])


def test_evaluate_nll_units():
    texts, strokes = lines()
    train, _ = data.split_lines(texts, strokes)
    model = HandwritingPredictor(PredictionConfig(hidden_size=4, num_layers=1, num_mixtures=2))
    nll = data.evaluate_nll(model, train, batch_size=3)
    assert nll["nats_per_sequence"] == pytest.approx(nll["nats_per_point"] * train.points() / len(train))


def test_random_batches_cut_long_lines_into_windows():
    texts, strokes = lines(4)
    train, _ = data.split_lines(texts, strokes, valid_fraction=0.25)
    x, y, mask = data.random_batches(train, 6, max_len=4, seed=0)(0)
    assert x.shape == (6, 4, 3) and mask.all()
    starts = {tuple(x[b, 1].tolist()) for b in range(6)}
    assert len(starts) > 1  # windows start at different points


def test_a_slice_of_a_set_is_a_set_with_the_same_scale():
    train, _ = data.split_lines(*lines(), valid_fraction=0.2, seed=1)
    part = train[:3]
    assert isinstance(part, data.HandwritingSet) and len(part) == 3 and part.scale is train.scale
    assert part.texts == train.texts[:3] and all(a is b for a, b in zip(part.strokes, train.strokes))
    with pytest.raises(TypeError, match=r"takes a slice such as \[:40\]"):
        train[0]
