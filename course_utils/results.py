"""Results records: a metric next to the paper's value, printed and written to build/results/.

    record("ptb_test_bpc", 1.83, paper=1.32, source="Graves 2013, Table 1")
    RESULT ptb_test_bpc=1.83 paper=1.32 source="Graves 2013, Table 1"

`python -m course_utils.results` prints the table of every notebook's records.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from .runtime import build_dir, get_profile, notebook_name, set_notebook, write_atomic  # noqa: F401 (set_notebook: re-exported)


def results_dir() -> Path:
    path = build_dir() / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _number(name: str, what: str, value) -> float:
    """A finite Python float from an int, float or NumPy number; anything else is refused with a message."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        hint = " (a tensor: pass loss.item())" if hasattr(value, "item") else ""
        raise TypeError(f"record({name!r}, ...) needs a number for {what}, got {type(value).__name__}: {value!r}{hint}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"record({name!r}, ...) got {value} for {what}: a result must be a finite number (JSON has "
                         "no NaN or infinity). Check the computation that produced it (a diverged run?).")
    return value


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on `path`.lock: one process at a time reads, changes and writes `path`."""
    with open(path.with_name(path.name + ".lock"), "a+b") as lock:
        try:
            import fcntl
        except ImportError:  # Windows
            import msvcrt

            lock.seek(0)
            while True:
                try:
                    msvcrt.locking(lock.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after 10 s; keep waiting
                    pass
            try:
                yield
            finally:
                lock.seek(0)
                msvcrt.locking(lock.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


class DamagedResultsError(ValueError):
    """A results file that is not a JSON object of records (e.g. two writes spliced together)."""


def _read_records(path: Path) -> dict:
    """The records of one results file, or DamagedResultsError saying what is wrong with it."""
    try:
        records = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedResultsError(f"{path} is not valid JSON ({err})") from err
    if not (isinstance(records, dict) and all(isinstance(r, dict) and "value" in r for r in records.values())):
        raise DamagedResultsError(f"{path} does not hold results records")
    return records


def record(name: str, value: float, *, paper: float | None = None, source: str | None = None,
           unit: str | None = None, note: str | None = None) -> None:
    """Print one RESULT line and store the record in build/results/<notebook>.json.

    Safe when several processes record at once (a lock); a damaged file is set aside, not lost."""
    value = _number(name, "the value", value)
    paper = None if paper is None else _number(name, "paper", paper)
    entry = {"name": name, "value": value, "paper": paper, "source": source, "unit": unit, "note": note,
             "profile": get_profile()}
    line = f"RESULT {name}={_fmt(float(value))}"
    if paper is not None:
        line += f" paper={_fmt(paper)}"
    if source:
        line += f' source="{source}"'
    print(line)
    path = results_dir() / f"{notebook_name()}.json"
    with _locked(path):
        try:
            records = _read_records(path) if path.exists() else {}
        except DamagedResultsError as err:
            kept = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(path, kept)
            warnings.warn(f"{err}: set aside as {kept.name} (nothing is deleted); a new file starts with this record.",
                          stacklevel=2)
            records = {}
        records[name] = entry
        text = json.dumps(records, indent=2, allow_nan=False)
        write_atomic(path, lambda tmp: tmp.write_text(text))


def load_all(folder: Path | None = None) -> dict[str, dict[str, dict]]:
    """Every notebook's records: {notebook: {name: record}}."""
    folder = folder or results_dir()
    out = {}
    for path in sorted(folder.glob("*.json")):
        try:
            out[path.stem] = _read_records(path)
        except DamagedResultsError as err:
            warnings.warn(f"{err}: left out. Delete it, or re-run its notebook, which sets it aside.", stacklevel=2)
    return out


def table(folder: Path | None = None) -> str:
    """A plain-text table of all records, one row each."""
    rows = [("notebook", "result", "value", "paper", "unit", "profile", "source")]
    for notebook, records in load_all(folder).items():
        for r in records.values():
            rows.append((notebook, r["name"], _fmt(r["value"]), "" if r["paper"] is None else _fmt(r["paper"]),
                         r.get("unit") or "", r.get("profile") or "", r.get("source") or ""))
    if len(rows) == 1:
        return "No results yet: run the notebooks (make course)."
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    print(table(folder))
