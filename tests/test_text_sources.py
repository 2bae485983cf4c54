"""The lines the recognizer and the writer read and write (`handwriting.text_sources`)."""
import numpy as np
import pytest

from course_utils.handwriting import text_sources
from course_utils.handwriting.window import DEFAULT_ALPHABET


def test_everyday_sentences_use_digits_capitals_and_punctuation():
    rng = np.random.default_rng(0)
    text = "".join(text_sources.everyday_sentence(rng) for _ in range(2000))
    alphabet = DEFAULT_ALPHABET
    assert set(text) <= set(alphabet)
    punctuation = set(alphabet) - set("0123456789 ") - {c for c in alphabet if c.isalpha()}
    assert set("0123456789") <= set(text) and sum(c.isupper() for c in text) > 1000
    assert len(punctuation & set(text)) >= 28  # of the 32 ASCII signs


def test_held_out_set_is_fixed_and_never_trained_on():
    from course_utils.handwriting.quality import held_out_texts

    held = text_sources.held_out_set(100)
    again = text_sources.held_out_set(100)
    assert [h["text"] for h in held] == [h["text"] for h in again]
    assert all(np.array_equal(a["strokes"], b["strokes"]) for a, b in zip(held, again))
    sources = [h["source"] for h in held]
    assert sources.count("ptb") == 50 and sources.count("austen") == 25 and sources.count("everyday") == 25
    assert [h["text"] for h in held[:50]] == held_out_texts(50)  # notebook 03's held-out lines
    assert all(10 <= len(h["text"]) <= 30 for h in held)
    mix = text_sources.TextMix()
    pools = text_sources.training_texts(mix)
    trained = set(pools["ptb"]) | set(pools["austen"])
    for step in range(3):
        lines = text_sources.synthetic_lines(pools, mix, 16, np.random.default_rng([0, 0, step]))
        trained |= {ln["text"] for ln in lines}
    assert not trained & {h["text"] for h in held}
    held_paragraphs = " ".join(p for p in text_sources.austen_paragraphs() if text_sources.is_held_out(p))
    assert all(h["text"][1:] in held_paragraphs for h in held if h["source"] == "austen")  # [1:]: capitalised
    assert all(text_sources.is_held_out(h["text"]) for h in held if h["source"] == "everyday")
    lines = text_sources.synthetic_lines(pools, mix, 16, np.random.default_rng([0, 0, 0]))
    train_writers = {ln["writer"].seed for ln in lines}
    assert not train_writers & {h["writer"].seed for h in held}


def test_a_mix_whose_lines_are_too_short_for_everyday_sentences_says_so():
    mix = text_sources.TextMix(ptb=0.0, austen=0.0, everyday=1.0, min_chars=6, max_chars=12)
    with pytest.raises(ValueError, match="max_chars of at least 30"):
        text_sources.synthetic_lines({"ptb": [], "austen": []}, mix, 1, np.random.default_rng(0))


def test_synthetic_lines_with_two_fonts_write_the_same_texts_without_the_third():
    from course_utils.handwriting import synthetic

    mix = text_sources.TextMix(min_chars=10, max_chars=30)
    pools = {"ptb": ["a line of text for the writer"], "austen": ["another line, from a novel"]}
    every = text_sources.synthetic_lines(pools, mix, 60, np.random.default_rng(0))
    simplex = text_sources.synthetic_lines(pools, mix, 60, np.random.default_rng(0),
                                           font_weights=synthetic.font_weights(("scripts", "cursive")))
    assert [ln["text"] for ln in every] == [ln["text"] for ln in simplex]
    assert "scriptc" in {ln["writer"].font for ln in every}
    assert {ln["writer"].font for ln in simplex} == {"scripts", "cursive"}
