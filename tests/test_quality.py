import dataclasses
import warnings

import numpy as np
import pytest
import torch

from course_utils.handwriting import quality, recognizer, synthesis, synthetic
from course_utils.handwriting.strokes import OffsetScale
from course_utils.train import TrainConfig, fit
from test_synthesis import small_model


def test_alignment_completed_needs_every_character_in_order():
    def writing(focus, stopped=True, U=3):
        phi = torch.zeros(len(focus), U + 1)
        phi[torch.arange(len(focus)), torch.tensor(focus)] = 1.0
        n = len(focus)
        return synthesis.Writing("abc", torch.zeros(n, 3), phi, torch.zeros(n, 1), torch.zeros(n, 3), "abc", stopped)

    assert quality.alignment_completed(writing([0, 0, 1, 1, 2, 3]))
    assert not quality.alignment_completed(writing([0, 0, 2, 2, 3]))  # skips 'b'
    assert not quality.alignment_completed(writing([0, 2, 1, 2, 3]))  # 'c' before 'b'
    assert not quality.alignment_completed(writing([0, 1, 2], stopped=False))


def test_shape_distance_is_zero_for_the_same_line_and_ignores_size():
    style = synthetic.WriterStyle(font="cursive", jitter=0.0, warp=0.0, drift=0.0)
    line = synthetic.write("hello world", style)
    assert quality.shape_distance(line, line) == pytest.approx(0.0, abs=1e-9)
    bigger = line.copy()
    bigger[:, :2] *= 3.0
    assert quality.shape_distance(line, bigger) == pytest.approx(0.0, abs=1e-4)  # float rounding only
    other_writer = synthetic.write("hello world", synthetic.random_style(np.random.default_rng(1)))
    other_text = synthetic.write("brew a cold", style)
    assert quality.shape_distance(line, other_writer) < quality.shape_distance(line, other_text)


def test_quality_report_on_held_out_texts():
    texts = quality.held_out_texts(3, max_chars=14, min_chars=5)
    assert len(texts) == 3 and texts == quality.held_out_texts(3, max_chars=14, min_chars=5)
    model = small_model(kappa_bias=0.0, alphabet=synthesis.DEFAULT_ALPHABET)
    report = quality.quality_report(model, OffsetScale(3.0, 3.0), texts, batch_size=2)
    assert report["lines"] == 3 and 0 <= report["alignment_completion"] <= report["stopped_by_itself"] <= 1
    assert report["dtw_to_font"] > report["dtw_second_writer_to_font"] > 0  # an untrained net scribbles
    with pytest.raises(ValueError, match="validation split"):
        quality.held_out_texts(10**6)


def test_legibility_reads_the_floor_and_every_bias():
    texts = ["go on", "it is", "we can"]
    rng = np.random.default_rng(0)
    lines = [{"text": t, "strokes": synthetic.write(t, synthetic.random_style(rng))} for t in texts]
    scale = OffsetScale.fit([ln["strokes"] for ln in lines])
    torch.manual_seed(0)
    reader = recognizer.Recognizer(recognizer.RecognizerConfig(hidden_size=32, num_layers=1, std_x=scale.std_x,
                                                               std_y=scale.std_y))
    batch = recognizer.make_batch(texts, [ln["strokes"] for ln in lines], reader.config.alphabet)
    fit(reader, lambda step: batch, TrainConfig(steps=200, lr=1e-2, valid_every=0, checkpoint_every=0, progress=False))
    writer = small_model(kappa_bias=0.0, alphabet=synthesis.DEFAULT_ALPHABET)  # untrained: scribbles
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the step cap is counted, not warned about
        report = quality.legibility(writer, scale, reader, lines, biases=(0.0, 2.0), batch_size=2)
    assert report["lines"] == 3 and report["synthetic_cer"] == 0.0  # the reader learned these renderings
    for bias in (0.0, 2.0):
        assert len(report["writings"][bias]) == 3 and [w.text for w in report["writings"][bias]] == texts
        assert report["cer"][bias] == pytest.approx(recognizer.character_error_rate(texts, report["read"][bias]))
        assert report["cer"][bias] > 0.5  # scribbles do not read as the text
        assert report["unfinished"][bias] == sum(not w.stopped for w in report["writings"][bias])
    stuck = small_model(kappa_bias=-30.0, alphabet=synthesis.DEFAULT_ALPHABET)  # a window that never moves
    with torch.no_grad():
        stuck.window.weight[-stuck.config.num_window:] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        capped = quality.legibility(stuck, scale, reader, lines, biases=(0.0,), batch_size=2)
    assert capped["unfinished"][0.0] == 3  # every line hit the cap: counted, not warned about
    again = quality.legibility(writer, scale, reader, lines, biases=(0.0,), batch_size=2)
    assert again["read"][0.0] == report["read"][0.0]  # seeded
    # several draws: the CER is their mean; draw k is the one-draw run from seed k
    several = quality.legibility(writer, scale, reader, lines, biases=(0.0,), draws=3, batch_size=2)
    singles = [quality.legibility(writer, scale, reader, lines, biases=(0.0,), seed=k, batch_size=2)["cer"][0.0]
               for k in range(3)]
    assert len(set(singles)) > 1  # the draws differ
    assert several["draws"] == 3 and several["cer_draws"][0.0] == pytest.approx(singles)
    assert several["cer"][0.0] == pytest.approx(np.mean(singles))
    assert several["read"][0.0] == report["read"][0.0]  # the first draw is kept for display
    # primed: the same texts, written after the primer's strokes (so other points than unprimed)
    primed = quality.legibility(writer, scale, reader, lines, biases=(0.0,), batch_size=2,
                                prime=("so", synthetic.write("so", synthetic.random_style(rng))))
    assert [w.text for w in primed["writings"][0.0]] == texts
    assert any(not torch.equal(a.strokes, b.strokes) for a, b in zip(primed["writings"][0.0], report["writings"][0.0]))
    with pytest.raises(ValueError, match="no lines"):
        quality.legibility(writer, scale, reader, [])
    with pytest.raises(ValueError, match="draws"):
        quality.legibility(writer, scale, reader, lines, draws=0)


@pytest.mark.filterwarnings("ignore:.*reached the cap")  # an untrained writer never finishes a line
def test_style_transfer_table():
    rng = np.random.default_rng(3)
    styles = [synthetic.random_style(rng) for _ in range(3)]
    writer = small_model(kappa_bias=0.0, alphabet=synthesis.DEFAULT_ALPHABET)
    scale = OffsetScale(3.0, 3.0)
    table = quality.style_transfer(writer, scale, styles, "go on", "it is")
    d = table["distance"]
    assert d.shape == (3, 3) and (d > 0).all() and len(table["writings"]) == 3
    assert table["own"] == pytest.approx(np.diag(d).mean())
    assert table["others"] == pytest.approx((d.sum() - np.trace(d)) / 6)
    assert table["own_nearest"] == pytest.approx(np.mean(d.argmin(1) == np.arange(3)))
    others = [(d[i].sum() - d[i, i]) / 2 for i in range(3)]
    assert table["own_below_others"] == pytest.approx(np.mean([d[i, i] < others[i] for i in range(3)]))
    assert table["features"]["slant"].shape == (3, 2) and set(table["correlation"]) == {"slant", "width"}
    # the perfect copier's reference: the primer writers themselves, with new pen randomness
    same = table["same_writer"]
    assert set(same) == {"own_nearest", "own_below_others", "own", "others"}
    assert 0 < same["own"] < same["others"] and 0 <= same["own_nearest"] <= 1
    again = quality.style_transfer(writer, scale, styles, "go on", "it is", redraws=1)["same_writer"]
    redrawn = [synthetic.write("it is", dataclasses.replace(s, seed=s.seed + 1000)) for s in styles]
    assert again["own"] == pytest.approx(np.mean([quality.shape_distance(redrawn[i], synthetic.write("it is", s))
                                                  for i, s in enumerate(styles)]))
    own_slants = [quality.style_features(synthetic.write("it is", s), "it is")["slant"] for s in styles]
    np.testing.assert_allclose(table["features"]["slant"][:, 0], own_slants)
    # the same font rendering is at distance 0 from itself: a perfect copier's row would have its minimum there
    line = synthetic.write("it is", styles[0])
    assert quality.shape_distance(line, synthetic.write("it is", styles[0])) == pytest.approx(0.0, abs=1e-9)
    # on the writers the redraws tell apart, the primed table restricted to them
    told = table["distinguishable"]
    keep = told["writers"]
    assert keep == quality.distinguishable(np.array([[[quality.shape_distance(
        synthetic.write("it is", dataclasses.replace(s, seed=s.seed + 1000 * (k + 1))), synthetic.write("it is", r))
        for r in styles] for s in styles] for k in range(3)]))
    if len(keep) > 1:
        sub = d[np.ix_(keep, keep)]
        assert told["own_nearest"] == pytest.approx(np.mean(sub.argmin(1) == np.arange(len(keep))))
        assert told["own"] == pytest.approx(np.diag(sub).mean())
    assert quality.style_transfer(writer, scale, styles, "go on", "it is", redraws=0)["distinguishable"] == {}
    with pytest.raises(ValueError, match="two writer styles"):
        quality.style_transfer(writer, scale, styles[:1], "go on", "it is")


def test_distinguishable_drops_the_writers_a_distance_confuses():
    # writers 0 and 1 look alike: 1's redraws land nearer 0's rendering; 2 and 3 are told apart every time
    one = np.array([[0.1, 0.5, 0.9, 0.9],
                    [0.2, 0.3, 0.9, 0.9],
                    [0.9, 0.9, 0.1, 0.8],
                    [0.9, 0.9, 0.8, 0.2]])
    assert quality.distinguishable(np.stack([one, one])) == [1, 2, 3]  # 0 is taken for 1: blamed 2, 1 only 1
    apart = np.array([[0.1, 0.5], [0.6, 0.2]])
    assert quality.distinguishable(apart[None]) == [0, 1]  # nothing to drop
    # redraws that disagree: a writer recognised in one redraw but not in the other still goes
    other = one.copy()
    other[1] = [0.5, 0.3, 0.9, 0.9]  # in this redraw, 1 is nearest its own
    assert quality.distinguishable(np.stack([other, one])) == [1, 2, 3]
    assert quality.distinguishable(np.stack([other, other])) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="redraws, writers, writers"):
        quality.distinguishable(one)


def test_style_features_see_slant_and_width():
    plain = dict(jitter=0.0, warp=0.0, drift=0.0)
    text = "hold still little bird"
    upright, leaning = (quality.style_features(synthetic.write(text, synthetic.WriterStyle(slant=a, **plain)), text)
                        for a in (0.0, 0.3))
    assert leaning["slant"] - upright["slant"] == pytest.approx(0.3, abs=0.05)
    narrow, wide = (quality.style_features(synthetic.write(text, synthetic.WriterStyle(x_scale=x, **plain)), text)
                    for x in (0.9, 1.2))
    assert wide["width"] / narrow["width"] == pytest.approx(1.2 / 0.9, rel=0.05)
    with pytest.raises(ValueError, match="downward"):
        quality.style_features(np.array([[0, 0, 0], [1, 0, 0], [2, 0.1, 1]], np.float32), "ab")
