import json

import pytest
import torch

from course_utils import results, runtime


def test_record_prints_and_writes_json(capsys):
    results.set_notebook("01_text_prediction")
    results.record("ptb_test_bpc", 1.83, paper=1.32, source="Graves 2013, Table 1", unit="bits/char")
    assert capsys.readouterr().out.strip() == 'RESULT ptb_test_bpc=1.83 paper=1.32 source="Graves 2013, Table 1"'
    saved = json.loads((runtime.build_dir() / "results" / "01_text_prediction.json").read_text())
    assert saved["ptb_test_bpc"]["value"] == 1.83 and saved["ptb_test_bpc"]["paper"] == 1.32
    results.record("ptb_test_bpc", 1.80)  # a re-run replaces the record
    table = results.table()
    assert "01_text_prediction" in table and "1.8 " in table + " " and "1.83" not in table


def test_record_rejects_non_numbers():
    with pytest.raises(TypeError, match="needs a number"):
        results.record("x", "1.2")


def test_profile_and_device_settings(monkeypatch):
    assert runtime.get_profile() == ("full" if torch.cuda.is_available() else "quick")
    monkeypatch.setenv("COURSE_PROFILE", "FULL")
    assert runtime.get_profile() == "full" and runtime.pick(quick=1, full=2) == 2
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="quick"):
        runtime.get_profile()
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert runtime.get_device() == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", "gpu0")
    with pytest.raises(ValueError, match="not a device"):
        runtime.get_device()


def test_seed_everything_returns_matching_generator():
    g = runtime.seed_everything(7)
    a = torch.rand(3)
    assert torch.equal(torch.rand(3, generator=g), a)


def test_command_line_modules_define_everything_before_running_main():
    """`python -m module` runs the `__main__` block where it stands: code after it is not yet defined."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    modules = [p for p in sorted((root / "course_utils").rglob("*.py")) + sorted((root / "scripts").glob("*.py"))
               if '__name__ == "__main__"' in p.read_text()]
    assert modules
    for path in modules:
        body = ast.parse(path.read_text()).body
        guards = [i for i, node in enumerate(body) if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
        assert guards == [len(body) - 1], f"{path.name}: the __main__ block must be the last statement"
