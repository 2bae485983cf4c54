"""The shipped models: small, loadable without executing code, described by a model card, and working."""
from pathlib import Path

import pytest
import torch

from course_utils.handwriting import synthesis
from course_utils import speech
from course_utils.hifigan import evaluate
from course_utils.hifigan import training
from course_utils.hifigan.mel import MelSpectrogram

PRETRAINED = Path(synthesis.pretrained_path()).parent
MAX_BYTES = 10 * 2**20


@pytest.mark.parametrize("name", ["writer", "vocoder_v3"])
def test_file_is_small_and_has_a_model_card(name):
    weights, card = PRETRAINED / f"{name}.pt", PRETRAINED / f"{name}.md"
    assert weights.stat().st_size <= MAX_BYTES
    text = card.read_text()
    for heading in ("## Command", "## Data", "## Training", "## Measured"):
        assert heading in text, f"{card.name} lacks {heading}"
    assert "python -m course_utils." in text


def test_writer_loads_with_weights_only_and_writes():
    saved = torch.load(PRETRAINED / "writer.pt", weights_only=True)  # refuses pickled code
    assert saved["metadata"]["updates"] >= 1000
    model, scale, meta = synthesis.load_writer()
    w = synthesis.write(model, "hello", bias=2.0, generator=torch.Generator().manual_seed(0), max_steps_per_char=10)
    assert w.strokes.shape[1] == 3 and len(w.strokes) > 5
    assert meta["quality_trained"]["alignment_completion"] >= 0.9


def test_vocoder_loads_with_weights_only_and_vocodes():
    torch.load(PRETRAINED / "vocoder_v3.pt", weights_only=True)
    G, meta = training.load_vocoder(PRETRAINED / "vocoder_v3.pt")
    assert meta["step"] >= 1000 and G.num_parameters() == 1_462_273  # the paper's V3
    with torch.inference_mode():
        audio = G(torch.full((1, 80, 8), -5.0))
    assert audio.shape == (1, 1, 8 * 256) and audio.abs().max() <= 1


def test_vocoder_beats_griffin_lim_on_the_full_band_mel_of_held_out_speech(fillets):
    clips = speech.load_speech("fillets", sample_rate=22050)
    held_out = [c for c in clips["test"] if len(c) > 2 * 22050][:4]
    G, _ = training.load_vocoder(PRETRAINED / "vocoder_v3.pt")
    mel = MelSpectrogram()
    for clip in held_out:
        log_mel = mel(torch.from_numpy(clip)[None])
        with torch.inference_mode():
            ours = evaluate.scores(clip, G(log_mel)[0, 0].numpy())
        theirs = evaluate.scores(clip, evaluate.griffin_lim(log_mel[0]))
        assert ours["mel_l1"] < theirs["mel_l1"]


def test_shipped_files_are_found_through_the_package_from_any_folder(tmp_path, monkeypatch):
    from course_utils import pretrained

    monkeypatch.chdir(tmp_path)  # as on Colab: an empty working folder, no checkout around it
    for name in ("writer.pt", "writer.md", "vocoder_v3.pt", "vocoder_v3.md"):
        assert pretrained.path(name).is_file()
    assert pretrained.path("writer.pt") == synthesis.pretrained_path()
    with pytest.raises(FileNotFoundError, match="ships no 'vocoder_v9.pt'; it ships .*'vocoder_v3.pt'"):
        pretrained.path("vocoder_v9.pt")


def test_the_gan_vocoder_run_goes_on_from_its_stored_point_and_state(tmp_path):
    """A new machine continues the GAN vocoder's run (data/training_state) with the discriminators and
    optimisers it had."""
    import dataclasses

    import numpy as np
    import soundfile as sf

    folder = Path(__file__).parents[1] / "data" / "training_state"
    points = sorted(folder.glob("*_last.pt"))  # one arm's point; the file names follow the arm
    assert len(points) == 1, f"data/training_state/ should hold one run's point, found {points}"
    point = points[0]
    state_file = point.with_name(point.stem + "_state.pt")
    assert state_file.stat().st_size <= MAX_BYTES
    meta = training.load_checkpoint(point)["metadata"]
    state = training.load_checkpoint(state_file)
    assert state["step"] == meta["step"] and state["generator_v_norms"]  # checked by train against the point
    t = np.arange(22050) / 22050
    sf.write(tmp_path / "a.wav", (0.3 * np.sin(2 * np.pi * 140 * t)).astype(np.float32), 22050)
    fields = {f.name for f in dataclasses.fields(training.VocoderRun)}
    run = training.VocoderRun(**{**{k: v for k, v in meta["run"].items() if k in fields},
                                 "data": str(tmp_path), "steps": meta["step"] + 1, "warmup": meta["step"],
                                 "disc_warmup": 0, "batch_size": 2, "segment_size": 2048, "max_seconds": None,
                                 "pitch_shift": tuple(meta["run"]["pitch_shift"])})
    log = []
    history = training.train(run, tmp_path / "go_on.pt", init_generator=point,
                             init_state=state_file, log=log.append)
    assert history.step == [meta["step"] + 1] and history.loss_d[0] > 0
    assert any("discriminators and optimisers from" in line for line in log)
    after = training.load_checkpoint(tmp_path / "go_on.pt")["mpd"]
    moved = [float((after[k[4:]] - v).abs().max()) for k, v in state["model"].items() if k.startswith("mpd.")]
    assert 0 < max(moved) < 0.01  # one small step from the shipped discriminators, not new ones
