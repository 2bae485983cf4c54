"""Every notebook follows the course's shape; nbval (make test) executes them."""
from pathlib import Path

import nbformat
import pytest

from course_utils.runtime import REPO_URL

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def test_the_first_notebook_exists():
    assert [p.stem for p in NOTEBOOKS][:1] == ["01_text_prediction"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    nb = nbformat.read(path, as_version=4)
    first, setup = nb.cells[0].source, nb.cells[1].source
    assert first.startswith("[![Open In Colab]") and f"notebooks/{path.name})" in first
    assert REPO_URL.replace("https://github.com/", "") in first and REPO_URL in setup
    assert 'if "google.colab" in sys.modules:' in setup
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert f'runtime.setup("{path.stem}"' in code
    assert any(c.cell_type == "markdown" and c.source.startswith("## Exercises") for c in nb.cells)
    assert "import *" not in code


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_with_outputs_and_no_errors(path):
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code_cells[1:]), "run the notebook before committing"
    for cell in code_cells:
        assert not any(o.output_type == "error" for o in cell.outputs), cell.source[:80]


def test_notebooks_name_the_repository_of_runtime():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "sync_notebooks.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
