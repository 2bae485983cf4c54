"""The IAM On-Line Handwriting Database (IAM-OnDB): text lines as pen strokes with their transcriptions.

    <root>/lineStrokes/a01/a01-000/a01-000u-01.xml   the strokes of text line 1 of form a01-000u
    <root>/ascii/a01/a01-000/a01-000u.txt            the form's text; line k of its CSR: section is line k
"""
from __future__ import annotations

import math
import os
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFoundError
from .strokes import clip_jumps, from_stroke_list

IAM_ENV = "IAM_ONDB_DIR"
IAM_URL = "https://fki.tic.heia-fr.ch/databases/iam-on-line-handwriting-database"
# Offsets longer than this (tablet units) are clipped. A text line is a few hundred units high and a
# pen-up move between words a few hundred long, while the tablet's spurious jumps are thousands long.
MAX_JUMP = 1000.0

_HOW_TO_INSTALL = (
    f"IAM-OnDB needs a free registration at {IAM_URL}. Download lineStrokes-all.tar.gz and ascii-all.tar.gz, "
    f"unpack both into one folder (it then holds lineStrokes/ and ascii/), and set {IAM_ENV} to that folder."
)


class IAMFormatError(ValueError):
    """An IAM-OnDB file that does not have the expected format."""


@dataclass
class HandwritingLine:
    """One text line: its id (e.g. 'a01-000u-01'), its text and (T, 3) pen offsets in tablet units, y up."""

    id: str
    text: str
    strokes: np.ndarray


def iam_root(path: str | Path | None = None) -> Path:
    """The database folder: `path`, else $IAM_ONDB_DIR; it must hold lineStrokes/ and ascii/."""
    if path is None:
        value = os.environ.get(IAM_ENV, "").strip()
        if not value:
            raise DatasetNotFoundError(f"{IAM_ENV} is not set. {_HOW_TO_INSTALL}")
        path = value
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"The IAM-OnDB folder {root} does not exist. {_HOW_TO_INSTALL}")
    missing = [name + "/" for name in ("lineStrokes", "ascii") if not (root / name).is_dir()]
    if missing:
        raise DatasetNotFoundError(f"The IAM-OnDB folder {root} has no {' and no '.join(missing)}. {_HOW_TO_INSTALL}")
    return root


def _number(point: ET.Element, name: str, where: str, path: Path) -> float:
    text = point.get(name)
    if text is None:
        raise IAMFormatError(f"{path}: {where}: Point without {name}; expected <Point x=... y=... time=.../>.")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise IAMFormatError(f"{path}: {where}: {name}={text!r} is not a number; expected tablet coordinates.")
    return value


def read_stroke_file(path: str | Path) -> list[np.ndarray]:
    """The strokes of one lineStrokes XML file: a list of (n_i, 2) float32 absolute points, y flipped up."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise IAMFormatError(f"{path}: not well-formed XML ({err}); the file may be truncated, unpack it again.") from err
    stroke_set = root if root.tag == "StrokeSet" else root.find(".//StrokeSet")
    if stroke_set is None:
        raise IAMFormatError(f"{path}: no <StrokeSet>; expected a lineStrokes file of IAM-OnDB.")
    strokes = []
    for i, stroke in enumerate(stroke_set.iter("Stroke"), start=1):
        points = stroke.findall("Point")
        if not points:
            raise IAMFormatError(f"{path}: stroke {i} has no <Point>; every stroke needs at least one.")
        xy = [(_number(p, "x", f"stroke {i}, point {j}", path), -_number(p, "y", f"stroke {i}, point {j}", path))
              for j, p in enumerate(points, start=1)]
        strokes.append(np.array(xy, dtype=np.float32))
    if not strokes:
        raise IAMFormatError(f"{path}: the <StrokeSet> holds no <Stroke>.")
    return strokes


def read_transcriptions(path: str | Path) -> list[str]:
    """The text lines of one ascii file: the non-empty lines after 'CSR:', stripped, in order."""
    path = Path(path)
    lines = path.read_text(encoding="latin-1").splitlines()
    starts = [k for k, line in enumerate(lines) if line.strip() == "CSR:"]
    if not starts:
        raise IAMFormatError(f"{path}: no CSR: section; expected an ascii file of IAM-OnDB with 'CSR:' on its own line.")
    texts = [line.strip() for line in lines[starts[0] + 1:] if line.strip()]
    if not texts:
        raise IAMFormatError(f"{path}: the CSR: section holds no text lines.")
    return texts


def preprocess(strokes: list, max_jump: float = MAX_JUMP) -> np.ndarray:
    """Strokes of (n_i, 2) points to (T, 3) offsets: outlier jumps clipped to `max_jump`, duplicates dropped.

    A duplicate is a zero offset inside a stroke that does not end it; a stroke's first point is kept.
    """
    if not max_jump > 0:
        raise ValueError(f"max_jump must be a positive length in tablet units, got {max_jump}.")
    offsets = clip_jumps(from_stroke_list(strokes), max_jump)
    pen_was_up = np.concatenate([[True], offsets[:-1, 2] == 1])
    duplicate = (offsets[:, 0] == 0) & (offsets[:, 1] == 0) & (offsets[:, 2] == 0) & ~pen_was_up
    return offsets[~duplicate]


def _line_ref(xml: Path, root: Path) -> tuple[Path, int]:
    """The ascii file and 1-based line number of a stroke file: .../a01-000u-01.xml -> .../a01-000u.txt, 1."""
    form, _, number = xml.stem.rpartition("-")
    if not form or not number.isdigit():
        raise IAMFormatError(f"{xml}: the file name should be <form>-<NN>.xml, like a01-000u-01.xml.")
    relative = xml.parent.relative_to(root / "lineStrokes")
    return root / "ascii" / relative / f"{form}.txt", int(number)


def load_iam(root: str | Path | None = None, *, limit: int | None = None,
             max_jump: float = MAX_JUMP) -> list[HandwritingLine]:
    """All text lines (or the first `limit`, in sorted file order) with preprocessed (T, 3) strokes.

    Stroke files without an ascii file are skipped with a warning; malformed files raise IAMFormatError.
    """
    root = iam_root(root)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or a count >= 0, got {limit}.")
    files = sorted((root / "lineStrokes").rglob("*.xml"))
    if not files:
        raise DatasetNotFoundError(f"{root / 'lineStrokes'} holds no .xml files. {_HOW_TO_INSTALL}")
    texts: dict[Path, list[str]] = {}
    lines: list[HandwritingLine] = []
    for xml in files:
        if limit is not None and len(lines) >= limit:
            break
        ascii_file, k = _line_ref(xml, root)
        if ascii_file not in texts:
            if not ascii_file.is_file():
                warnings.warn(f"{xml.name}: skipped, its transcription {ascii_file} does not exist.", stacklevel=2)
                continue
            texts[ascii_file] = read_transcriptions(ascii_file)
        form_lines = texts[ascii_file]
        if k < 1 or k > len(form_lines):
            raise IAMFormatError(
                f"{ascii_file}: line {k} missing (for {xml.name}): the transcription has {len(form_lines)} lines."
            )
        offsets = preprocess(read_stroke_file(xml), max_jump=max_jump)
        lines.append(HandwritingLine(xml.stem, form_lines[k - 1], offsets))
    return lines
