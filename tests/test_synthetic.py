import numpy as np
import pytest

from course_utils.handwriting import strokes, synthetic


def test_writing_is_deterministic_for_a_style():
    style = synthetic.random_style(np.random.default_rng(3))
    a, b = synthetic.write("would find the bus", style), synthetic.write("would find the bus", style)
    np.testing.assert_array_equal(a, b)
    assert a.shape[1] == 3 and a[-1, 2] == 1


@pytest.mark.parametrize("font", ["scripts", "cursive"])
def test_the_pen_lifts_mostly_between_words(font):
    style = synthetic.WriterStyle(font=font, letter_spacing=1.5, word_spacing=4.0)
    text = "Consumers may want to move their telephones"
    lifts = len(synthetic.glyph_strokes(text, style))
    unjoined = len(synthetic.glyph_strokes(text, style, tol=0.0, join=0.0))
    assert lifts <= 2 * len(text.split()) < unjoined


def test_dots_are_written_after_their_word_and_punctuation_is_not_joined():
    style = synthetic.WriterStyle(font="scripts")
    *_, body, dot = synthetic.glyph_strokes("it", style)
    assert np.ptp(dot, axis=0).max() < 6 < np.ptp(body, axis=0).max()  # the i-dot comes last
    assert dot[:, 0].mean() < body[:, 0].max()  # and sits above the word, not after it
    assert len(synthetic.glyph_strokes("fifty-five", style)) > len(synthetic.glyph_strokes("fiftyfive", style))


def test_points_per_character_like_a_tablet():
    rng = np.random.default_rng(0)
    text = "Consultants are up to exploit the new tool"
    per_char = [len(synthetic.write(text, synthetic.random_style(rng))) / len(text) for _ in range(6)]
    assert 10 < min(per_char) and max(per_char) < 80  # IAM lines have a few tens of points per character


def test_style_changes_the_shape():
    base = synthetic.WriterStyle(font="cursive", jitter=0.0, warp=0.0, drift=0.0)
    slanted = synthetic.WriterStyle(font="cursive", jitter=0.0, warp=0.0, drift=0.0, slant=0.5)
    p0, _ = strokes.to_points(synthetic.write("lll", base))
    p1, _ = strokes.to_points(synthetic.write("lll", slanted))
    assert np.ptp(p1[:, 0]) > np.ptp(p0[:, 0])  # leaning letters take more room


def test_ptb_lines_drop_unk_and_numbers():
    ptb = "the <unk> company said it earned $ N million or N N %\nwe did n't know it 's true\n"
    lines = synthetic.ptb_lines(ptb, min_chars=5, max_chars=30)
    assert lines == ["The company said it earned", "Million or", "We didn't know it's true"]
    running = synthetic.ptb_lines(ptb, min_chars=5, max_chars=30, capitalize="sentences")
    assert running == ["The company said it earned", "million or", "We didn't know it's true"]
    with pytest.raises(ValueError, match="capitalize"):
        synthetic.ptb_lines(ptb, capitalize="words")


def test_bad_text_is_explained():
    with pytest.raises(ValueError, match="printable ASCII"):
        synthetic.write("naïve", synthetic.WriterStyle())
    with pytest.raises(ValueError, match="empty"):
        synthetic.write("   ", synthetic.WriterStyle())
    with pytest.raises(ValueError, match="cursive fonts"):
        synthetic.write("abc", synthetic.WriterStyle(font="gothic"))


def test_corpus_is_deterministic_and_cached(monkeypatch):
    config = synthetic.SyntheticConfig(num_lines=5, seed=1)
    first = synthetic.make_corpus(config)
    cached = synthetic.make_corpus(config)
    fresh = synthetic.make_corpus(config, cache=False)
    for a, b, c in zip(first, cached, fresh):
        assert a["text"] == b["text"] == c["text"] and a["writer"] == b["writer"] == c["writer"]
        np.testing.assert_array_equal(a["strokes"], b["strokes"])
        np.testing.assert_array_equal(a["strokes"], c["strokes"])
    assert len({line["writer"].seed for line in first}) == 5  # a writer per line


def test_damaged_cache_says_delete_it():
    from course_utils.runtime import data_dir

    config = synthetic.SyntheticConfig(num_lines=2, seed=2)
    synthetic.make_corpus(config)
    (path,) = (data_dir() / "handwriting").glob("synthetic-v*-2-2-*.npz")
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="delete it"):
        synthetic.make_corpus(config)


def test_ptb_lines_get_punctuation_back_when_asked():
    ptb = "\n".join(["the company said it earned money in the third quarter of the year"] * 200)
    plain = synthetic.ptb_lines(ptb, min_chars=1)
    punctuated = synthetic.ptb_lines(ptb, min_chars=1, punctuate=0)
    assert not any(c in "".join(plain) for c in ",.;")
    assert "," in "".join(punctuated) and "." in "".join(punctuated)
    assert punctuated == synthetic.ptb_lines(ptb, min_chars=1, punctuate=0)  # seeded
    assert {w.strip(",.;:?!-") for ln in punctuated for w in ln.lower().split()} - {""} == {w for ln in plain for w in ln.lower().split()}


def test_two_of_the_three_fonts_share_their_letters():
    """`cursive` and `scripts` draw every letter alike and differ in digits and signs; `scriptc` differs."""
    plain = dict(jitter=0.0, warp=0.0, drift=0.0)
    letters = "the Quick brown fox"
    same = [synthetic.write(letters, synthetic.WriterStyle(font=f, **plain)) for f in ("scripts", "cursive")]
    np.testing.assert_array_equal(same[0], same[1])
    for other in ["0123456789 ,.;?", letters]:
        font = "cursive" if other[0] == "0" else "scriptc"
        a = synthetic.write(other, synthetic.WriterStyle(font="scripts", **plain))
        b = synthetic.write(other, synthetic.WriterStyle(font=font, **plain))
        assert a.shape != b.shape or not np.array_equal(a, b)


def test_font_weights_keep_the_chosen_fonts_and_the_rest_of_each_writer():
    import numpy as np

    weights = synthetic.font_weights(("scripts", "cursive"))
    assert weights == pytest.approx((0.5, 0.0, 0.5))
    assert synthetic.font_weights(synthetic.FONTS) == pytest.approx(synthetic.FONT_WEIGHTS)
    for bad in ((), ("scriptz",), ("scripts", "gothic")):
        with pytest.raises(ValueError, match="give one or more of"):
            synthetic.font_weights(bad)
    every = [synthetic.random_style(np.random.default_rng(s)) for s in range(200)]
    simplex = [synthetic.random_style(np.random.default_rng(s), weights) for s in range(200)]
    assert {w.font for w in every} == set(synthetic.FONTS) and "scriptc" not in {w.font for w in simplex}
    for a, b in zip(every, simplex):  # only the font may change: slant, spacing, seed... are drawn alike
        assert (a.slant, a.word_spacing, a.seed) == (b.slant, b.word_spacing, b.seed)
        assert a.font == b.font or a.font == "scriptc"  # only the left-out font's writers are redrawn
