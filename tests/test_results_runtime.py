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


def test_two_processes_recording_at_once_lose_nothing(tmp_path):
    import subprocess
    import sys

    script = ("import sys\nfrom course_utils import results\nresults.set_notebook('shared')\n"
              "for i in range(200):\n    results.record(f'{sys.argv[1]}_{i}', i)\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, who], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for who in ("a", "b")]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    folder = runtime.build_dir() / "results"
    saved = json.loads((folder / "shared.json").read_text())
    assert sorted(saved) == sorted(f"{who}_{i}" for who in "ab" for i in range(200))
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_damaged_results_file_is_set_aside_with_a_message_and_the_table_still_prints(capsys):
    results.set_notebook("01_text_prediction")
    folder = results.results_dir()
    (folder / "01_text_prediction.json").write_text('{"a": {"value": 1}}{"b": 2}')  # two documents spliced
    (folder / "02_other.json").write_text('{"x": {"name": "x", "value": 2.5, "paper": null}}')
    with pytest.warns(UserWarning, match="01_text_prediction.json is not valid JSON.*left out. Delete it"):
        assert "2.5" in results.table() and "01_text_prediction" not in results.table()
    with pytest.warns(UserWarning, match="not valid JSON.*set aside as 01_text_prediction.json.damaged-"):
        results.record("ptb_test_bpc", 1.5)
    assert json.loads((folder / "01_text_prediction.json").read_text())["ptb_test_bpc"]["value"] == 1.5
    kept = [p for p in folder.iterdir() if ".damaged-" in p.name]
    assert len(kept) == 1 and kept[0].read_text().startswith('{"a"')  # nothing lost


def test_record_accepts_numpy_numbers_and_refuses_non_finite_values():
    import numpy as np

    results.set_notebook("numbers")
    results.record("count", np.int64(3), paper=np.float32(2.5))
    results.record("bpc", np.float64(1.25))
    saved = json.loads((runtime.build_dir() / "results" / "numbers.json").read_text())
    assert saved["count"]["value"] == 3.0 and saved["count"]["paper"] == 2.5 and saved["bpc"]["value"] == 1.25
    for bad in (float("nan"), float("inf"), np.float32("nan")):
        with pytest.raises(ValueError, match="finite number"):
            results.record("bad", bad)
    with pytest.raises(TypeError, match=r"loss.item\(\)"):
        results.record("loss", torch.tensor(1.0))
    assert "bad" not in json.loads((runtime.build_dir() / "results" / "numbers.json").read_text())


def test_cache_files_written_by_racing_writers_are_whole(tmp_path):
    """Writers that race on one cache file (two notebooks under `pytest -n 2`, DDP ranks) each write a
    temporary file of their own: the file left is one writer's whole payload, and no temporary file stays."""
    import threading

    import numpy as np

    path = tmp_path / "cache" / "corpus.npz"
    payloads = [np.full(200_000, i, np.float32) for i in range(6)]
    errors = []

    def write(x):
        try:
            runtime.save_npz_atomic(path, compressed=True, x=x)
        except Exception as err:  # a shared temporary file makes a rename fail
            errors.append(err)

    threads = [threading.Thread(target=write, args=(x,)) for x in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with np.load(path) as data:
        x = data["x"]
    assert any(np.array_equal(x, p) for p in payloads)
    assert [f.name for f in path.parent.iterdir()] == ["corpus.npz"]


def test_an_interrupted_atomic_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "cache" / "table.json"
    runtime.write_atomic(path, lambda tmp: tmp.write_text("old"))

    def cut_off(tmp):
        tmp.write_text("half a fi")
        raise KeyboardInterrupt  # the student pressed stop while the file was being written

    with pytest.raises(KeyboardInterrupt):
        runtime.write_atomic(path, cut_off)
    assert path.read_text() == "old"
    assert [f.name for f in path.parent.iterdir()] == ["table.json"]
