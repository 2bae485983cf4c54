"""Write the repository URL of course_utils.runtime into every notebook's Colab badge and set-up cell
(which on Colab also installs the speech of the notebooks that use course_utils.speech).

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


SPEECH = "fillets-ng-data-cs"  # the Debian/Ubuntu package of course_utils.speech's default speaker


def expected(name: str, uses_speech: bool = False) -> tuple[str, str]:
    """The badge and the set-up cell of notebook `name`; with `uses_speech`, the set-up also installs the speech."""
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"({COLAB}/blob/main/notebooks/{name}.ipynb)")
    if not uses_speech:
        return badge, ("# Set-up: on Colab, install the course package (keeping Colab's torch); elsewhere nothing "
                       "happens.\n"
                       "import sys\n"
                       'if "google.colab" in sys.modules:\n'
                       f'    !pip install -q "seqgen-course @ git+{REPO_URL}"')
    install = f"apt-get install -y -qq --no-install-recommends {SPEECH} > /dev/null"
    return badge, ("# Set-up: on Colab, install the course package (keeping Colab's torch) and this notebook's speech,\n"
                   f"# the Debian/Ubuntu package {SPEECH} (39 MB, with apt-get as Colab allows); elsewhere nothing\n"
                   "# happens (`make` fetches the speech; see the README).\n"
                   "import sys\n"
                   'if "google.colab" in sys.modules:\n'
                   f'    !pip install -q "seqgen-course @ git+{REPO_URL}"\n'
                   f"    !{install} || (apt-get update -qq && {install})")


def sync(path: Path, write: bool = True) -> bool:
    """Bring one notebook up to date (or only look, with write=False); True if it was out of date."""
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells[2:] if c.cell_type == "code")
    badge, setup = expected(path.stem, uses_speech="speech." in code)
    first, second = nb.cells[0], nb.cells[1]
    new_first = re.sub(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)", lambda _: badge, first.source)
    if not new_first.startswith(badge):
        new_first = badge + "\n\n" + new_first
    changed = (new_first, setup) != (first.source, second.source)
    if changed and write:
        first.source, second.source = new_first, setup
        nbformat.write(nb, path)
    return changed


if __name__ == "__main__":
    check = "--check" in sys.argv
    stale = [p.name for p in NOTEBOOKS if sync(p, write=not check)]
    if check:
        print("out of date: " + ", ".join(stale) if stale else "all notebooks name " + REPO_URL)
        sys.exit(1 if stale else 0)
    print("updated: " + ", ".join(stale) if stale else "all notebooks were up to date")
