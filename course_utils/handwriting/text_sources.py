"""What the recognizer and the writer read and write: not only Penn Treebank.

Three sources of lines: Penn Treebank sentences, Jane Austen's Lady Susan (public domain, shipped inside
music21) and generated everyday sentences with names, digits, dates, times and signs (`TextMix` sets their
shares), and `held_out_set`, the fixed evaluation lines no recognizer or writer trains on (one Austen
paragraph or generated sentence in ten, by its CRC-32, and Penn Treebank validation lines).
"""
from __future__ import annotations

import string
import zlib
from dataclasses import dataclass

import numpy as np

def is_held_out(text: str) -> bool:
    """One paragraph or generated sentence in ten, by the CRC-32 of its text, is kept for evaluation only."""
    return zlib.crc32(text.encode()) % 10 == 0


def austen_paragraphs() -> list[str]:
    """Jane Austen's Lady Susan (public domain; the Project Gutenberg etext that music21 ships) in paragraphs."""
    from importlib import resources

    text = (resources.files("music21.languageExcerpts") / "trainingData" / "en.txt").read_text(encoding="utf-8")
    body = "\n".join(text.splitlines()[1:-1])  # without the Project Gutenberg title and end lines
    return [" ".join(p.split()) for p in body.split("\n\n") if p.strip()]


_FIRST = ("Anna Ben Clara David Emma Felix Grace Henry Isla Jack Karen Liam Maria Noah Olivia Peter Quinn Rosa Sam "
          "Tara Umar Vera Walter Yusuf Zoe").split()
_SURNAME = ("Adams Brown Chen Dubois Evans Fischer Garcia Hughes Ito Jones Kowalski Lopez Murphy Nakamura O'Brien "
            "Patel Quist Rossi Smith Taylor Usman Virtanen Weber Young Zhang").split()
_CITY = ("Austin Boston Cairo Dublin Geneva Helsinki Istanbul Jakarta Kyoto Lima Madrid Nairobi Oslo Paris Quebec "
         "Rome Sydney Toronto Utrecht Vienna Warsaw York Zurich").split()
_MONTH = "January February March April May June July August September October November December".split()
_WEEKDAY = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_THING = "books apples tickets chairs letters bottles maps lamps shirts cups keys boxes".split()
_TITLE = "Mr. Mrs. Ms. Dr. Prof.".split()


def everyday_sentence(rng: np.random.Generator) -> str:
    """A made-up sentence with names, numbers, dates, times and the rarer ASCII signs."""
    def p(items):
        return items[int(rng.integers(len(items)))]

    def n(lo, hi):
        return int(rng.integers(lo, hi + 1))

    h, m = n(1, 12), n(0, 59)
    time = p([f"{h}:{m:02d}", f"{h} {p(['am', 'pm'])}", f"{h}:{m:02d} {p(['am', 'pm'])}", f"{n(0, 23):02d}:{m:02d}"])
    mo, d, y = n(1, 12), n(1, 28), n(1900, 2030)
    date = p([f"{_MONTH[mo - 1]} {d}", f"{d} {_MONTH[mo - 1]} {y}", f"{mo}/{d}/{y}", f"{y}-{mo:02d}-{d:02d}",
              f"{p(_WEEKDAY)}, {_MONTH[mo - 1]} {d}"])
    first, second, surname, city, thing = p(_FIRST), p(_FIRST), p(_SURNAME), p(_CITY), p(_THING)
    a, b, k = n(0, 99), n(1, 99), n(1, 999)
    templates = [
        f"{first} arrives on {date}.", f"Call {first} at {n(200, 999)}-{n(0, 9999):04d} after {time}.",
        f"The {thing} cost ${n(1, 99)}.{n(0, 99):02d} ({n(5, 70)}% off).", f"Meet me at {k} {surname} Street at {time}.",
        f"On {date}, {k} people came to {city}.", f"Flight {p(string.ascii_uppercase)}{p(string.ascii_uppercase)}{k} "
        f"to {city} leaves at {time}.", f'"Is it {time} yet?" asked {first}.', f"{first}'s score: {a}/{b} ({n(0, 100)}%)",
        f"Order #{k}: {n(1, 9)} x {thing} @ ${n(1, 99)}", f"Dear {p(_TITLE)} {surname}, see you on {date}!",
        f"{first} & {second} won {n(0, 9)}-{n(0, 9)} in {city}.", f"Room {k}{p('ABCD')}, floor {n(1, 30)}; ask for {first}.",
        f"Mail {first.lower()}.{surname.lower()}@{city.lower()}.org", f"{a} + {b} = {a + b}, not {a + b + 1}.",
        f"At {time} it was {n(-20, 40)} degrees in {city}.", f"{first.upper()} WINS {n(2, 9)} MEDALS!",
        f"Version {n(0, 9)}.{n(0, 20)}.{n(0, 9)} [beta] {{fixed}} *new*", f"Use C:\\{city}\\{thing}_{a}.txt ~ `{thing}`",
        f"if x < {a} and y > {b}: z = x^2 | y", f"Tel. +{n(1, 99)} {k} {n(1000, 9999)}; ask {p(_TITLE)} {surname}.",
        f"It's {p(_WEEKDAY)}, {_MONTH[mo - 1]} {d}, {y}.", f"{first} {surname} (born {y}) lives in {city}.",
    ]
    return p(templates)


@dataclass
class TextMix:
    """The texts the synthetic writers write for training: three sources, lines of min to max characters."""

    ptb: float = 0.4  # share of Penn Treebank training sentences, punctuated as in the writer's corpus
    austen: float = 0.3  # share of lines of Jane Austen's Lady Susan (capitals, dialogue punctuation)
    everyday: float = 0.3  # share of `everyday_sentence`s (names, digits, dates, times, signs)
    min_chars: int = 10  # shortest line
    max_chars: int = 45  # longest line (the writer writes 10 to 30, IAM lines hold about 30 to 50)
    capitalize: str = "lines"  # "lines": every line starts with a capital; "sentences": only a sentence's first


def training_texts(mix: TextMix, seed: int = 0) -> dict[str, list[str]]:
    """The line pools of the mix's fixed sources: Penn Treebank train (without the short lines that are also
    held-out validation lines, such as 'Production.'), and Austen's training paragraphs."""
    from ..text import load_ptb
    from .synthetic import ptb_lines

    held_out = {t.lower() for t in ptb_lines(load_ptb("valid"), min_chars=10, max_chars=30, punctuate=1)}  # `held_out_set`'s
    ptb = ptb_lines(load_ptb("train"), min_chars=mix.min_chars, max_chars=mix.max_chars, punctuate=seed,
                    capitalize=mix.capitalize)
    austen = "\n".join(p for p in austen_paragraphs() if not is_held_out(p))
    return {"ptb": [t for t in ptb if t.lower() not in held_out],
            "austen": ptb_lines(austen, min_chars=mix.min_chars, max_chars=mix.max_chars, capitalize=mix.capitalize)}


def _everyday(rng, min_chars: int, max_chars: int, held_out: bool, tries: int = 10_000) -> str:
    for _ in range(tries):  # about half the sentences fit 10 to 30 characters
        text = everyday_sentence(rng)
        if min_chars <= len(text) <= max_chars and is_held_out(text) == held_out:
            return text
    raise ValueError(f"no everyday sentence has {min_chars} to {max_chars} characters: they hold about 15 to 50; "
                     "allow longer lines (max_chars of at least 30).")


def synthetic_lines(pools: dict[str, list[str]], mix: TextMix, count: int, rng: np.random.Generator,
                    font_weights=None) -> list[dict]:
    """`count` lines {'text', 'strokes' (T, 3) font units, 'writer'}: texts from the mix, each by a new writer
    (its font drawn with `font_weights`, default `synthetic.FONT_WEIGHTS`; the same texts and writers' other
    traits whatever the weights)."""
    from .synthetic import FONT_WEIGHTS, random_style, write

    shares = np.array([mix.ptb, mix.austen, mix.everyday], dtype=float)
    lines = []
    for source in rng.choice(["ptb", "austen", "everyday"], size=count, p=shares / shares.sum()):
        text = (_everyday(rng, mix.min_chars, mix.max_chars, held_out=False) if source == "everyday"
                else pools[source][int(rng.integers(len(pools[source])))])
        style = random_style(rng, FONT_WEIGHTS if font_weights is None else font_weights)
        lines.append({"text": text, "strokes": write(text, style), "writer": style})
    return lines


def held_out_set(count: int = 100, *, seed: int = 1, min_chars: int = 10, max_chars: int = 30) -> list[dict]:
    """`count` lines no recognizer trained on, the same on every machine: half the Penn Treebank validation
    lines of notebook 03 (`quality.held_out_texts`), half other English (held-out Austen paragraphs and
    generated sentences), each written by a writer drawn from a random stream training never uses.

    -> [{'text', 'strokes' (T, 3) font units, 'writer', 'source'}]; 10 to 30 characters, as the writer writes."""
    from .quality import held_out_texts
    from .synthetic import ptb_lines, random_style, write

    rng = np.random.default_rng([2, seed])
    n_ptb, n_austen = count // 2, (count - count // 2) // 2
    austen = ptb_lines("\n".join(p for p in austen_paragraphs() if is_held_out(p)), min_chars=min_chars,
                       max_chars=max_chars)
    texts = ([(t, "ptb") for t in held_out_texts(n_ptb, seed=seed, min_chars=min_chars, max_chars=max_chars)]
             + [(austen[i], "austen") for i in sorted(rng.choice(len(austen), n_austen, replace=False))]
             + [(_everyday(rng, min_chars, max_chars, held_out=True), "everyday")
                for _ in range(count - n_ptb - n_austen)])
    lines = []
    for text, source in texts:
        style = random_style(rng)
        lines.append({"text": text, "strokes": write(text, style), "writer": style, "source": source})
    return lines
