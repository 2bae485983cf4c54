import os

os.environ.setdefault("MPLBACKEND", "Agg")  # tests draw figures without a screen

import pytest

from course_utils import speech

# The Debian speaker, installed or fetched into the real data cache by `make speech`, found before the
# fixture below points the data cache to a temporary folder; tests that need it use the `fillets` fixture.
FILLETS_FOUND = next((d for d in speech.fillets_dirs() if d.is_dir()), None)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Tests write results and caches to a temporary folder, never to the checkout."""
    monkeypatch.setenv("COURSE_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.delenv("COURSE_MAX_STEPS", raising=False)


@pytest.fixture
def fillets(monkeypatch):
    """The Debian speaker's clips folder, set as the installed one (so the readers find it while caches go
    to the temporary data folder); the test is skipped where the speaker is absent."""
    if FILLETS_FOUND is None:
        pytest.skip("needs the Debian speaker: make speech "
                    "(or sudo apt-get install --no-install-recommends fillets-ng-data-cs)")
    monkeypatch.setattr(speech, "FILLETS_DIR", FILLETS_FOUND)
    return FILLETS_FOUND
