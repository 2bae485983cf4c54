"""Synthetic online handwriting: English lines written by random "writers" with the Hershey script fonts.

The single-stroke cursive fonts of the PyPI package `Hershey-Fonts` join their letters. A writer
draws a line in one font with its own slant, size, letter spacing, a drifting baseline, a smooth
elastic warp and pen jitter, and a pen tablet samples the pen at a fixed rate while the pen slows
down in curves: the result has the (dx, dy, end_of_stroke) format of the IAM On-Line database.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from .strokes import from_stroke_list

FONTS = ("scripts", "scriptc", "cursive")
# Hershey-Fonts' `cursive` and `scripts` draw all 52 letters alike (they differ in the digits and 18 signs
# such as , . ; ? ! ( ): tests/test_synthetic.py checks it), so the corpus has two letter shapes: the
# simplex script (scripts, cursive) and the complex one (scriptc). Writers differ mostly by slant, size and spacing.
# scriptc draws its thick parts as two or three parallel strokes, so its writers lift the pen
# four times more often than the others: it gets a smaller share of the writers.
FONT_WEIGHTS = (0.45, 0.1, 0.45)
CORPUS_VERSION = 3  # part of the cache file name: raise it when the writing changes
_fonts: dict = {}  # parsed fonts, loaded on first use


@dataclass
class WriterStyle:
    """How one writer writes; `random_style` draws one."""

    font: str = "scripts"  # one of FONTS
    slant: float = 0.2  # shear: x += slant * y (positive leans right)
    x_scale: float = 1.0  # width of the letters
    y_scale: float = 1.0  # height of the letters
    letter_spacing: float = 0.0  # extra space after each letter, in font units (a letter is about 15)
    word_spacing: float = 0.0  # extra space after each space
    drift: float = 1.0  # amplitude of the slow baseline wave, font units
    warp: float = 0.6  # amplitude of the smooth elastic warp, font units
    jitter: float = 0.15  # standard deviation of the pen noise, font units
    speed: float = 1.6  # pen speed on straight lines, font units per tablet sample
    seed: int = 0  # randomness of drift, warp, jitter


def font_weights(fonts) -> tuple[float, ...]:
    """The writers' font weights with only `fonts` (names from FONTS) kept, in FONT_WEIGHTS' proportions:
    ("scripts", "cursive") -> (0.5, 0.0, 0.5)."""
    fonts = list(fonts)
    unknown = [f for f in fonts if f not in FONTS]
    if unknown or not fonts:
        raise ValueError(f"fonts {fonts}: give one or more of {FONTS}.")
    kept = [w if f in fonts else 0.0 for f, w in zip(FONTS, FONT_WEIGHTS)]
    return tuple(w / sum(kept) for w in kept)


def random_style(rng: np.random.Generator, weights=FONT_WEIGHTS) -> WriterStyle:
    """A writer drawn at random within ranges that keep the writing legible; its font drawn with
    `weights` (one per name in FONTS, e.g. `font_weights(("scripts", "cursive"))`)."""
    return WriterStyle(
        font=str(rng.choice(FONTS, p=weights)),
        slant=float(rng.uniform(-0.05, 0.45)),
        x_scale=float(rng.uniform(0.85, 1.2)),
        y_scale=float(rng.uniform(0.85, 1.15)),
        letter_spacing=float(rng.uniform(-1.0, 1.5)),
        word_spacing=float(rng.uniform(0.0, 6.0)),
        drift=float(rng.uniform(0.0, 2.5)),
        warp=float(rng.uniform(0.2, 1.2)),
        jitter=float(rng.uniform(0.05, 0.25)),
        speed=float(rng.uniform(1.5, 2.5)),
        seed=int(rng.integers(2**31)),
    )


def _font(name: str):
    if name not in FONTS:
        raise ValueError(f"font {name!r} is not one of the cursive fonts {FONTS}.")
    if name not in _fonts:
        from HersheyFonts import HersheyFonts

        font = HersheyFonts()
        font.load_default_font(name)
        _fonts[name] = font
    return _fonts[name]


def glyph_strokes(text: str, style: WriterStyle, tol: float = 4.5, join: float = 22.0,
                  mark: float = 6.0) -> list[np.ndarray]:
    """The font's strokes for `text`, y up, in font units, with the writer's spacing: a list of (n, 2).

    A stroke that starts within `tol` of where the previous one ended in the font (a joined letter,
    the next hump of an 'm') is merged into it, even when the writer's extra spacing opens a gap.
    Inside a word, a stroke that starts within `join` (about a letter width) of the previous end is
    joined to it by a straight connector, as a fluent writer goes from the end of one letter to
    the start of an 'a' or 'o' without lifting the pen. Short marks (dots, crosses, apostrophes:
    shorter than `mark`) are written after their word, as people dot their i's. The pen then
    lifts about twice per word, mostly between words.
    """
    unknown = sorted({c for c in text if not " " <= c <= "~"})
    if unknown:
        raise ValueError(f"the fonts cover printable ASCII only; the text holds {unknown}.")
    strokes: list[np.ndarray] = []
    marks: list[np.ndarray] = []  # dots and crosses of the current word, written after it
    cursor = spaced = 0.0  # pen position without and with the writer's extra spacing
    last_end = None  # where the previous letter stroke ended in the word, without extra spacing
    for char, glyph in zip(text, _font(style.font).glyphs_for_text(text)):
        for stroke in glyph.strokes:
            points = np.asarray(stroke, dtype=np.float64)
            points[:, 1] *= -1  # the font's y points down
            plain = points + [cursor - glyph.left_offset, 0.0]
            placed = points + [spaced - glyph.left_offset, 0.0]
            gap = np.inf if last_end is None or not char.isalnum() else np.linalg.norm(plain[0] - last_end)
            if np.linalg.norm(np.diff(points, axis=0), axis=1).sum() < mark:
                marks.append(placed)
                continue
            if gap <= tol:
                strokes[-1] = np.concatenate([strokes[-1], placed[1:]])
            elif gap <= join:
                strokes[-1] = np.concatenate([strokes[-1], placed])  # a connector to the new start
            else:
                strokes.append(placed)
            last_end = plain[-1]
        if not char.isalnum():  # the pen lifts around spaces, hyphens and punctuation
            last_end = None
        if char == " ":
            strokes, marks = strokes + marks, []
        cursor += glyph.char_width
        spaced += glyph.char_width + style.letter_spacing + (style.word_spacing if char == " " else 0.0)
    return strokes + marks


def _smooth_field(rng, x: np.ndarray, amplitude: float, wavelengths=(60.0, 25.0, 11.0)) -> np.ndarray:
    """A smooth random function of x: a few sines with random phases, largest for long waves."""
    out = np.zeros_like(x)
    for i, wl in enumerate(wavelengths):
        out += amplitude / (i + 1) * np.sin(2 * np.pi * x / (wl * rng.uniform(0.8, 1.25)) + rng.uniform(0, 2 * np.pi))
    return out


def resample_like_a_tablet(points: np.ndarray, speed: float) -> np.ndarray:
    """Sample a polyline like a tablet: one point per time step, the pen slower in curves and at the ends."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    keep = np.concatenate([[True], seg > 1e-9])
    points = points[keep]
    if len(points) < 2:
        return points[:1]
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    d = np.diff(points, axis=0)
    heading = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    turn = np.abs(np.diff(heading, prepend=heading[0], append=heading[-1]))  # per vertex
    turn = np.minimum(turn, np.pi / 2)
    v = speed / (1.0 + 3.0 * turn)  # slow down where the pen turns
    ramp = np.minimum(1.0, 0.3 + np.minimum(s, s[-1] - s) / 3.0)  # accelerate and stop
    v = np.maximum(v * ramp, 0.15 * speed)
    t = np.concatenate([[0.0], np.cumsum(np.diff(s) * 2 / (v[1:] + v[:-1]))])  # time along the stroke
    steps = max(2, int(np.ceil(t[-1])) + 1)
    ts = np.linspace(0.0, t[-1], steps)
    return np.column_stack([np.interp(ts, t, points[:, 0]), np.interp(ts, t, points[:, 1])])


def write(text: str, style: WriterStyle) -> np.ndarray:
    """The (T, 3) pen offsets of `text` written by `style` (font units, y up)."""
    if not text.strip():
        raise ValueError("the text is empty: give at least one visible character.")
    dense = [densify(s, 0.5) for s in glyph_strokes(text, style)]
    p = np.concatenate(dense)
    fields = np.random.default_rng(style.seed + 1)  # drift and warp are smooth functions of x
    x = p[:, 0]
    y = p[:, 1] + _smooth_field(fields, x, style.drift, (200.0, 90.0))
    x, y = x + _smooth_field(fields, x, style.warp), y + _smooth_field(fields, x, style.warp)
    warped = np.column_stack([style.x_scale * (x + style.slant * y), style.y_scale * y])
    pen = np.random.default_rng(style.seed)
    out = []
    for stroke in np.split(warped, np.cumsum([len(d) for d in dense])[:-1]):
        sampled = resample_like_a_tablet(stroke, style.speed)
        out.append(sampled + pen.normal(0.0, style.jitter, sampled.shape))
    return from_stroke_list(out)


def densify(points: np.ndarray, step: float) -> np.ndarray:
    """Insert points so that no segment is longer than `step` (the warp then bends straight lines)."""
    seg = np.diff(points, axis=0)
    n = np.maximum(1, np.ceil(np.linalg.norm(seg, axis=1) / step)).astype(int)  # pieces per segment
    idx = np.repeat(np.arange(len(seg)), n)
    frac = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 1) / np.repeat(n, n)
    return np.concatenate([points[:1], points[idx] + seg[idx] * frac[:, None]])


# ---------------------------------------------------------------- text lines
def ptb_lines(text: str, *, min_chars: int = 20, max_chars: int = 45, punctuate: int | None = None,
              capitalize: str = "lines") -> list[str]:
    """Handwriting-sized lines from Penn Treebank sentences without '<unk>' and 'N' tokens.

    capitalize="lines" starts every line with a capital; "sentences" only the first line of each sentence,
    so that the lines that go on a sentence start in lower case, as in running text.

    The Penn Treebank text has no commas, semicolons or full stops. With `punctuate` (a seed), the
    sentences get them back at random, as ordinary prose has them: a comma after about one word in
    twelve, now and then a semicolon, colon or dash, and a full stop, question or exclamation mark
    at the end of a sentence; a writer must also learn to write those.
    """
    if capitalize not in ("lines", "sentences"):
        raise ValueError(f"capitalize={capitalize!r}: use 'lines' or 'sentences'.")
    rng = np.random.default_rng(punctuate) if punctuate is not None else None
    lines = []
    for sentence in text.split("\n"):
        first = len(lines)  # the index of this sentence's first line
        tokens = sentence.split()
        # drop unknown words and numbers, with the '$' before a number and the '%' after it
        drop = {i for i, w in enumerate(tokens) if w == "<unk>"}
        for i, w in enumerate(tokens):
            if w == "N":
                drop |= {i} | ({i - 1} if i > 0 and tokens[i - 1] == "$" else set())
                drop |= {i + 1} if i + 1 < len(tokens) and tokens[i + 1] == "%" else set()
        sentence = " ".join(w for i, w in enumerate(tokens) if i not in drop)
        sentence = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", sentence)  # did n't -> didn't
        sentence = re.sub(r" ([.,;:?%])", r"\1", sentence).replace("$ ", "$")
        words = sentence.split()
        if rng is not None and words:
            marks = rng.choice([",", ";", ":", " -", ""], size=len(words), p=[0.08, 0.01, 0.005, 0.005, 0.9])
            words = [w + m if w[-1].isalnum() else w for w, m in zip(words[:-1], marks)] + words[-1:]
            words[-1] += str(rng.choice([".", "?", "!", ""], p=[0.55, 0.03, 0.02, 0.4]))
        line = ""
        for word in words:
            if len(line) + 1 + len(word) > max_chars and len(line) >= min_chars:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        if len(line) >= min_chars:
            lines.append(line)
        if capitalize == "sentences" and len(lines) > first:
            lines[first] = lines[first][0].upper() + lines[first][1:]
    return lines if capitalize == "sentences" else [line[0].upper() + line[1:] for line in lines]


# ---------------------------------------------------------------- the corpus
@dataclass
class SyntheticConfig:
    num_lines: int = 3000  # lines of handwriting to generate
    seed: int = 0  # picks the sentences and the writers
    min_chars: int = 20  # shortest text line
    max_chars: int = 45  # longest text line (IAM lines hold about 30-50 characters)
    source_split: str = "train"  # the Penn Treebank split the sentences come from


def make_corpus(config: SyntheticConfig = SyntheticConfig(), *, cache: bool = True) -> list[dict]:
    """`num_lines` lines, each {'text', 'strokes' (T, 3) in font units, 'writer' (a WriterStyle)}.

    Deterministic for a config; cached under the data folder (handwriting/synthetic-<...>.npz).
    """
    from dataclasses import asdict

    from ..runtime import data_dir, save_npz_atomic
    from ..text import load_ptb

    if config.num_lines < 1:
        raise ValueError(f"num_lines must be at least 1, got {config.num_lines}.")
    name = "synthetic-v{}-{num_lines}-{seed}-{min_chars}-{max_chars}-{source_split}.npz".format(
        CORPUS_VERSION, **asdict(config))
    path = data_dir() / "handwriting" / name
    if cache and path.exists():
        return _load_corpus(path)
    rng = np.random.default_rng(config.seed)
    sentences = ptb_lines(load_ptb(config.source_split), min_chars=config.min_chars, max_chars=config.max_chars,
                          punctuate=config.seed)
    picks = rng.choice(len(sentences), size=config.num_lines, replace=config.num_lines > len(sentences))
    lines = []
    for i in picks:
        style = random_style(rng)
        lines.append({"text": sentences[i], "strokes": write(sentences[i], style), "writer": style})
    if cache:
        save_npz_atomic(
            path, compressed=True,
            texts=np.array([ln["text"] for ln in lines]),
            lengths=np.array([len(ln["strokes"]) for ln in lines]),
            strokes=np.concatenate([ln["strokes"] for ln in lines]),
            writers=np.array([json.dumps(asdict(ln["writer"])) for ln in lines]),
        )
    return lines


def _load_corpus(path) -> list[dict]:
    try:
        with np.load(path) as data:
            texts, lengths, rows, writers = data["texts"], data["lengths"], data["strokes"], data["writers"]
    except Exception as err:  # a damaged cache file: say so and how to fix it
        raise ValueError(f"The cached corpus {path} is damaged ({err}); delete it to generate it again.") from err
    starts = np.concatenate([[0], np.cumsum(lengths)])
    return [{"text": str(t), "strokes": rows[a:b], "writer": WriterStyle(**json.loads(str(w)))}
            for t, a, b, w in zip(texts, starts[:-1], starts[1:], writers)]
