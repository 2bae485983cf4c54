"""Small trained models shipped inside the package, each with its model card (`<name>.md`).

Found with importlib.resources, so they load wherever the package is installed (a pip install on
Colab, a wheel in a fresh virtual environment), whatever the working directory.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def path(name: str) -> Path:
    """The shipped file `name` (e.g. 'vocoder_v3.pt', 'writer.md') as a path on disk."""
    found = resources.files(__name__) / name
    if not found.is_file():
        shipped = sorted(p.name for p in resources.files(__name__).iterdir() if p.name.endswith((".pt", ".md")))
        raise FileNotFoundError(f"course_utils.pretrained ships no {name!r}; it ships {shipped}. "
                                "Reinstall the package if one of those is missing.")
    return Path(str(found))  # an installed (unzipped) package: the resource is a real file
