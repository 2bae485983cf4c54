"""Write the repository URL of course_utils.runtime into every notebook's Colab badge and set-up cell.

    python scripts/sync_notebooks.py          # rewrite the notebooks in place
    python scripts/sync_notebooks.py --check  # exit 1 if a notebook is out of date
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

from course_utils.runtime import REPO_URL

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))
COLAB = REPO_URL.replace("https://github.com/", "https://colab.research.google.com/github/")


def expected(name: str) -> tuple[str, str]:
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"({COLAB}/blob/main/notebooks/{name}.ipynb)")
    setup = ("# Set-up: on Colab, install the course package (keeping Colab's torch); elsewhere nothing happens.\n"
             "import sys\n"
             'if "google.colab" in sys.modules:\n'
             f'    !pip install -q "seqgen-course @ git+{REPO_URL}"')
    return badge, setup


def sync(path: Path) -> bool:
    """Bring one notebook up to date; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    badge, setup = expected(path.stem)
    first, second = nb.cells[0], nb.cells[1]
    new_first = re.sub(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)", lambda _: badge, first.source)
    if not new_first.startswith(badge):
        new_first = badge + "\n\n" + new_first
    changed = (new_first, setup) != (first.source, second.source)
    first.source, second.source = new_first, setup
    if changed:
        nbformat.write(nb, path)
    return changed


if __name__ == "__main__":
    if "--check" in sys.argv:
        stale = [p.name for p in NOTEBOOKS if expected(p.stem)[1] != nbformat.read(p, as_version=4).cells[1].source
                 or not nbformat.read(p, as_version=4).cells[0].source.startswith(expected(p.stem)[0])]
        print("out of date: " + ", ".join(stale) if stale else "all notebooks name " + REPO_URL)
        sys.exit(1 if stale else 0)
    for p in NOTEBOOKS:
        print(("updated " if sync(p) else "up to date ") + p.name)
