import math

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.stats import multivariate_normal

from course_utils import speech
from course_utils.text import DatasetNotFoundError


def tone(seconds=0.5, rate=22050, freq=220.0):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_read_audio_resamples_mono_and_explains(tmp_path):
    stereo = np.stack([tone(), tone()], 1)
    sf.write(tmp_path / "a.wav", stereo, 22050)
    audio = speech.read_audio(tmp_path / "a.wav", 16000)
    assert audio.ndim == 1 and abs(len(audio) - 8000) <= 1 and audio.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 220) < 3  # the tone survives resampling
    with pytest.raises(ValueError, match="22050 Hz, not 16000"):
        speech.read_audio(tmp_path / "a.wav", 16000, strict=True)
    (tmp_path / "bad.wav").write_bytes(b"RIFF....not audio")
    with pytest.raises(ValueError, match="bad.wav"):
        speech.read_audio(tmp_path / "bad.wav", 16000)


def test_folder_and_ljspeech_readers(tmp_path, monkeypatch):
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(12):
        sf.write(folder / f"clip{i}.flac", tone(0.2, 16000, 200 + 10 * i), 16000)
    clips = speech.load_speech(str(folder), sample_rate=16000)
    assert sum(len(v) for v in clips.values()) == 12 and len(clips["train"]) > len(clips["valid"])
    monkeypatch.setenv(speech.SPEECH_ENV, str(folder))
    assert sum(len(v) for v in speech.load_speech(sample_rate=16000).values()) == 12
    lj = tmp_path / "LJSpeech-1.1"
    (lj / "wavs").mkdir(parents=True)
    sf.write(lj / "wavs" / "LJ001-0001.wav", tone(0.3), 22050)
    (lj / "metadata.csv").write_text("LJ001-0001|Printing, in the only sense|Printing, in the only sense\n")
    (clip,) = [c for split in speech.load_speech(f"ljspeech:{lj}", sample_rate=22050).values() for c in split]
    assert len(clip) == len(tone(0.3))
    (lj / "metadata.csv").write_text("LJ001-0001|a|a\nLJ001-0002|b|b\n")
    with pytest.raises(DatasetNotFoundError, match="line 2, names LJ001-0002.wav"):
        speech.load_speech(f"ljspeech:{lj}", sample_rate=22050)
    with pytest.raises(DatasetNotFoundError, match="apt-get install"):
        speech.load_speech(str(tmp_path / "empty"))


def test_split_is_stable():
    assert speech.split_of("vit-v-proc.ogg") == speech.split_of("vit-v-proc.ogg")
    names = [f"clip{i}.ogg" for i in range(2000)]
    share = np.mean([speech.split_of(n) == "valid" for n in names])
    assert 0.07 < share < 0.13


def test_frames_read_20_and_predict_the_next_10():
    clip = np.arange(100, dtype=np.float32)
    x, y = speech.frames(clip)
    assert x.shape == (8, 20) and y.shape == (8, 10)
    assert x[1, 0] == 10 and y[1].tolist() == list(range(30, 40))
    with pytest.raises(ValueError, match="too short"):
        speech.frames(np.zeros(25))
    xb, yb = speech.random_batches([np.arange(500, dtype=np.float32)], 3, 4, seed=0)(0)
    assert xb.shape == (3, 4, 20) and (yb[:, :, 0] == xb[:, :, -1] + 1).all()


def test_gmm_nll_one_component_matches_scipy_and_gradcheck():
    g = torch.Generator().manual_seed(0)
    params = torch.randn(2, speech.gmm_output_size(1, 10), generator=g, dtype=torch.float64)
    target = torch.randn(2, 10, generator=g, dtype=torch.float64)
    got = speech.gmm_nll(params, target)
    for b in range(2):
        mu, sigma = params[b, 1:11].numpy(), np.exp(params[b, 11:].numpy())
        want = -multivariate_normal(mu, np.diag(sigma**2)).logpdf(target[b].numpy())
        assert got[b].item() == pytest.approx(want, rel=1e-9)
    params3 = torch.randn(2, speech.gmm_output_size(3, 10), generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: speech.gmm_nll(p, target), (params3,))
    extreme = torch.full((1, speech.gmm_output_size(20, 10)), -1e4)
    assert torch.isfinite(speech.gmm_nll(extreme, torch.ones(1, 10) * 1e3)).all()
    draws = speech.gmm_sample(params[:1].float().repeat(4000, 1), 10, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(draws.mean(0).numpy(), params[0, 1:11].numpy(), atol=0.15 * np.exp(params[0, 11:].numpy()).max())


def test_single_gaussian_baseline_and_generate():
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 1, 2000).astype(np.float32) for _ in range(3)]
    nll = speech.single_gaussian_nll(clips, clips)
    assert nll == pytest.approx(0.5 * 10 * (1 + math.log(2 * math.pi)), rel=0.02)  # white noise, unit variance
    silent = lambda x, state: (torch.cat([torch.zeros(1, 1), torch.zeros(1, 10), torch.full((1, 10), -7.0)], 1), state)  # noqa: E731
    audio = speech.generate(silent, 0.01, 16000, generator=torch.Generator().manual_seed(0))
    assert audio.shape == (160,) and np.abs(audio).max() < 0.01


@pytest.mark.skipif(not speech.FILLETS_DIR.is_dir(), reason="the Debian package fillets-ng-data-cs is not installed")
def test_a_real_clip_reads():
    path = sorted(speech.FILLETS_DIR.rglob("*-v-*.ogg"))[0]
    audio = speech.read_audio(path, 16000)
    assert len(audio) > 1000 and 0.01 < np.abs(audio).max() <= 1.0
