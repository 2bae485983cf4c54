"""Results records: a metric next to the paper's value, printed and written to build/results/.

    record("ptb_test_bpc", 1.83, paper=1.32, source="Graves 2013, Table 1")
    RESULT ptb_test_bpc=1.83 paper=1.32 source="Graves 2013, Table 1"

`python -m course_utils.results` prints the table of every notebook's records.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from .runtime import build_dir, get_profile

_notebook = {"name": "scratch"}  # set by runtime.setup() at the top of each notebook


def set_notebook(name: str) -> None:
    """Name the file that the following records go to: build/results/<name>.json."""
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"notebook name {name!r} must be a plain file name such as '01_text_prediction'.")
    _notebook["name"] = name


def results_dir() -> Path:
    path = build_dir() / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def record(name: str, value: float, *, paper: float | None = None, source: str | None = None,
           unit: str | None = None, note: str | None = None) -> None:
    """Print one RESULT line and store the record in build/results/<notebook>.json."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"record({name!r}, ...) needs a number, got {type(value).__name__}: {value!r}.")
    entry = {"name": name, "value": float(value), "paper": paper, "source": source, "unit": unit, "note": note,
             "profile": get_profile()}
    line = f"RESULT {name}={_fmt(float(value))}"
    if paper is not None:
        line += f" paper={_fmt(paper)}"
    if source:
        line += f' source="{source}"'
    print(line)
    path = results_dir() / f"{_notebook['name']}.json"
    records = json.loads(path.read_text()) if path.exists() else {}
    records[name] = entry
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(records, indent=2))
    tmp.replace(path)


def load_all(folder: Path | None = None) -> dict[str, dict[str, dict]]:
    """Every notebook's records: {notebook: {name: record}}."""
    folder = folder or results_dir()
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


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
