"""The shipped models: small, loadable without executing code, described by a model card, and working."""
from pathlib import Path

import pytest
import torch

from course_utils.handwriting import synthesis
from course_utils.hifigan import train as vtrain

PRETRAINED = Path(synthesis.pretrained_path()).parent
MAX_BYTES = 10 * 2**20


@pytest.mark.parametrize("name", ["writer", "vocoder_small"])
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
    torch.load(PRETRAINED / "vocoder_small.pt", weights_only=True)
    G, meta = vtrain.load_vocoder(PRETRAINED / "vocoder_small.pt")
    assert meta["step"] >= 1000
    with torch.inference_mode():
        audio = G(torch.full((1, 80, 8), -5.0))
    assert audio.shape == (1, 1, 8 * 256) and audio.abs().max() <= 1
