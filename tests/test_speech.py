import math
import shutil
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.stats import multivariate_normal

from course_utils import speech
from course_utils.text import DatasetNotFoundError


def tone(seconds=0.5, rate=22050, freq=220.0, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(audio, rate):
    return np.argmax(np.abs(np.fft.rfft(audio))) * rate / len(audio)


# ---------------------------------------------------------------- one file
def test_read_audio_averages_channels_resamples_and_keeps_the_pitch(tmp_path):
    left = tone()
    sf.write(tmp_path / "a.wav", np.stack([left, np.zeros_like(left)], 1), 22050, subtype="FLOAT")
    audio = speech.read_audio(tmp_path / "a.wav", 16000)
    assert audio.dtype == np.float32 and audio.shape == (8000,)  # 11025 samples x 320 / 441
    assert peak_hz(audio, 16000) == pytest.approx(220, abs=2)
    assert np.abs(audio[1000:-1000]).max() == pytest.approx(0.25, abs=0.005)  # (0.5 + 0) / 2
    same = speech.read_audio(tmp_path / "a.wav", 22050)
    np.testing.assert_array_equal(same, left / 2)  # no resampling at the file's own rate


def test_read_audio_errors_name_the_file(tmp_path):
    sf.write(tmp_path / "a.flac", tone(), 22050)
    with pytest.raises(ValueError, match=r"a\.flac is at 22050 Hz, not the 16000 Hz"):
        speech.read_audio(tmp_path / "a.flac", 16000, strict=True)
    (tmp_path / "bad.wav").write_bytes(b"RIFF....not audio")
    with pytest.raises(ValueError, match=r"bad\.wav is not a readable audio file"):
        speech.read_audio(tmp_path / "bad.wav", 16000)
    with pytest.raises(DatasetNotFoundError, match="gone.ogg"):
        speech.read_audio(tmp_path / "gone.ogg", 16000)


def test_too_loud_and_anti_phase_files_are_read_with_a_warning(tmp_path):
    sf.write(tmp_path / "loud.wav", 8 * tone(), 22050, subtype="FLOAT")  # peaks at 4.0
    with pytest.warns(UserWarning, match=r"loud\.wav peaks at 4\.00.*clipped.*Scale the file down"):
        audio = speech.read_audio(tmp_path / "loud.wav", 22050)
    assert np.abs(audio).max() == 1.0
    left = tone()
    sf.write(tmp_path / "phase.wav", np.stack([left, -left], 1), 22050, subtype="FLOAT")
    with pytest.warns(UserWarning, match=r"phase\.wav: its channels cancel.*anti-phase.*one channel"):
        speech.read_audio(tmp_path / "phase.wav", 22050)
    sf.write(tmp_path / "hot.wav", 2.3 * tone(), 22050, subtype="FLOAT")  # 1.15: a lossy codec's overshoot
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        speech.read_audio(tmp_path / "hot.wav", 22050)


def test_an_unreadable_file_in_a_folder_is_skipped_with_a_warning_that_names_it(tmp_path):
    folder = make_folder(tmp_path / "clips", n=4)
    (folder / "sub" / "broken.wav").write_bytes(b"RIFF....not audio")
    with pytest.warns(UserWarning, match=r"skipped .*broken\.wav: .*not a readable audio file"):
        clips = speech.read_speech(folder, sample_rate=16000)
    assert sorted(clips) == ["clip0.flac", "clip2.flac", "sub/clip1.flac", "sub/clip3.flac"]
    with pytest.warns(UserWarning, match=r"1 files were skipped as unreadable .*sub/broken\.wav"):
        assert sorted(speech.read_speech(folder, sample_rate=16000)) == sorted(clips)  # from the cache
    with pytest.raises(ValueError, match=r"broken\.wav is not a readable audio file"):
        speech.read_speech(folder, sample_rate=16000, strict=True, cache=False)


# ---------------------------------------------------------------- sources
def make_folder(folder, n=12, rate=16000):
    (folder / "sub").mkdir(parents=True)
    for i in range(n):
        sf.write(folder / ("sub" if i % 2 else "") / f"clip{i}.flac", tone(0.2, rate, 200 + 10 * i), rate)
    return folder


def test_folder_reader_names_env_and_split(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "clips")
    clips = speech.read_speech(folder, sample_rate=16000)
    assert list(clips)[:3] == ["clip0.flac", "clip10.flac", "clip2.flac"] and "sub/clip1.flac" in clips
    assert all(c.shape == (3200,) and c.dtype == np.float32 for c in clips.values())
    assert peak_hz(clips["sub/clip3.flac"], 16000) == pytest.approx(230, abs=6)
    monkeypatch.setenv(speech.SPEECH_ENV, str(folder))
    split = speech.load_speech(sample_rate=16000, valid=0.3, test=0.3)
    want = {s: sum(speech.split_of(n, valid=0.3, test=0.3) == s for n in clips) for s in speech.SPLITS}
    assert {s: len(v) for s, v in split.items()} == want and sum(want.values()) == 12


def test_ljspeech_reader_and_missing_wav(tmp_path):
    lj = tmp_path / "LJSpeech-1.1"
    (lj / "wavs").mkdir(parents=True)
    sf.write(lj / "wavs" / "LJ001-0001.wav", tone(0.3), 22050, subtype="PCM_16")
    sf.write(lj / "wavs" / "LJ001-0002.wav", tone(0.2, freq=440), 22050, subtype="PCM_16")
    (lj / "metadata.csv").write_text(
        "LJ001-0001|Printing, in the only sense with which we are at present concerned,|"
        "Printing, in the only sense with which we are at present concerned,\n"
        "LJ001-0002|in being comparatively modern.|in being comparatively modern.\n", encoding="utf-8")
    clips = speech.read_speech(f"ljspeech:{lj}", sample_rate=22050)
    assert list(clips) == ["LJ001-0001.wav", "LJ001-0002.wav"]
    np.testing.assert_allclose(clips["LJ001-0001.wav"], tone(0.3), atol=1 / 32768)
    assert list(speech.read_speech(lj, sample_rate=16000)) == list(clips)  # found by its metadata.csv
    with open(lj / "metadata.csv", "a", encoding="utf-8") as f:
        f.write("LJ001-0003|produced the block books,|produced the block books,\n")
    with pytest.raises(DatasetNotFoundError, match=r"line 3, names LJ001-0003\.wav, which is not in"):
        speech.read_speech(f"ljspeech:{lj}", sample_rate=22050)


def test_no_speech_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(speech, "FILLETS_DIR", tmp_path / "not-installed")
    monkeypatch.delenv(speech.SPEECH_ENV, raising=False)
    with pytest.raises(DatasetNotFoundError) as err:
        speech.load_speech()
    for hint in ("sudo apt-get install --no-install-recommends fillets-ng-data-cs", "COURSE_SPEECH_DIR",
                 "https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"):
        assert hint in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="No .wav, .flac or .ogg files under"):
        speech.load_speech(tmp_path / "empty")


def test_strict_rejects_another_rate_even_from_the_cache(tmp_path):
    folder = make_folder(tmp_path / "clips", n=2, rate=22050)
    speech.read_speech(folder, sample_rate=16000)  # resampled and cached
    with pytest.raises(ValueError, match=r"clip0\.flac is at 22050 Hz, not the 16000 Hz"):
        speech.read_speech(folder, sample_rate=16000, strict=True)


def test_cache_is_reused_and_a_damaged_one_says_delete_it(tmp_path, monkeypatch, capsys):
    folder = make_folder(tmp_path / "clips", n=4)
    first = speech.read_speech(folder, sample_rate=16000)
    assert "decoded 4 clips" in capsys.readouterr().out
    (cached,) = (tmp_path / "data" / "speech").glob(f"speech-v{speech.CACHE_VERSION}-*-16000.npz")
    monkeypatch.setattr(speech, "read_audio", lambda *a, **k: pytest.fail("decoded again despite the cache"))
    again = speech.read_speech(folder, sample_rate=16000)
    assert list(again) == list(first) and all(np.array_equal(again[n], first[n]) for n in first)
    cached.write_bytes(cached.read_bytes()[:200])
    with pytest.raises(ValueError, match="is damaged.*delete it"):
        speech.read_speech(folder, sample_rate=16000)


def test_split_is_stable_and_about_ten_percent_each():
    assert speech.split_of("let-v-budrada.ogg") == "valid"  # pinned: both notebooks hold out the same clips
    assert speech.split_of("kni-v-amforstvi.ogg") == "test" and speech.split_of("vit-v-proc.ogg") == "train"
    names = [f"clip{i}.ogg" for i in range(5000)]
    share = {s: np.mean([speech.split_of(n) == s for n in names]) for s in ("valid", "test")}
    assert 0.08 < share["valid"] < 0.12 and 0.08 < share["test"] < 0.12
    with pytest.raises(ValueError, match="leave some training clips"):
        speech.split_of("a.wav", valid=0.5, test=0.5)


# ---------------------------------------------------------------- the frame task
def test_frames_read_20_and_predict_the_next_10():
    x, y = speech.frames(np.arange(100, dtype=np.float32))
    assert x.shape == (8, 20) and y.shape == (8, 10)
    assert x[1].tolist() == list(range(10, 30)) and y[1].tolist() == list(range(30, 40))
    assert y[-1].tolist() == list(range(90, 100))
    with pytest.raises(ValueError, match="at least 30 samples"):
        speech.frames(np.zeros(29))


def test_random_batches_are_windows_and_fixed_per_step():
    clips = [np.arange(500, dtype=np.float32), 1000 + np.arange(700, dtype=np.float32)]
    batch_fn = speech.random_batches(clips, 3, 4, seed=0)
    x, y = batch_fn(0)
    assert x.shape == (3, 4, 20) and y.shape == (3, 4, 10) and x.dtype == torch.float32
    assert (y[:, :, 0] == x[:, :, -1] + 1).all() and (x[:, 1:, 0] == x[:, :-1, 0] + 10).all()
    assert torch.equal(batch_fn(0)[0], x) and not torch.equal(batch_fn(1)[0], x)
    with pytest.raises(ValueError, match="lower seq_len"):
        speech.random_batches(clips, 3, 100, seed=0)


def test_wave_scale_fits_on_training_clips_and_inverts():
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, 5000).astype(np.float32) for _ in range(3)]
    scale = speech.WaveScale.fit(clips)
    assert scale.std == pytest.approx(0.1, rel=0.02)
    assert speech.frames(scale.apply(clips[0]))[0].std() == pytest.approx(1.0, rel=0.03)
    np.testing.assert_allclose(scale.invert(scale.apply(clips[0])), clips[0], rtol=1e-6)
    with pytest.raises(ValueError, match="silent"):
        speech.WaveScale.fit([np.zeros(100, np.float32)])


# ---------------------------------------------------------------- mixture of Gaussians
def test_one_component_is_the_diagonal_gaussian_of_scipy():
    g = torch.Generator().manual_seed(0)
    params = torch.randn(2, 3, speech.gmm_output_size(1, 10), generator=g, dtype=torch.float64)
    target = torch.randn(2, 3, 10, generator=g, dtype=torch.float64)
    got = speech.gmm_nll(params, target)
    assert got.shape == (2, 3)
    for b in range(2):
        for t in range(3):
            mu, sigma = params[b, t, 1:11].numpy(), np.exp(params[b, t, 11:].numpy())
            want = -multivariate_normal(mu, np.diag(sigma**2)).logpdf(target[b, t].numpy())
            assert got[b, t].item() == pytest.approx(want, rel=1e-10)


def test_two_components_mix_by_their_softmax_weights():
    p = torch.zeros(speech.gmm_output_size(2, 2), dtype=torch.float64)
    p[:2] = torch.tensor([0.0, math.log(3.0)])  # weights 1/4, 3/4
    p[2:6] = torch.tensor([-1.0, 0.0, 2.0, 1.0])  # means (-1, 0), (2, 1); unit sigmas
    x = np.array([0.5, 0.5])
    want = -np.log(0.25 * multivariate_normal([-1, 0]).pdf(x) + 0.75 * multivariate_normal([2, 1]).pdf(x))
    assert speech.gmm_nll(p, torch.tensor(x)).item() == pytest.approx(want, rel=1e-10)


def test_gmm_nll_gradcheck_and_extreme_inputs():
    g = torch.Generator().manual_seed(1)
    params = torch.randn(2, 2, speech.gmm_output_size(3, 4), generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 2, 4, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: speech.gmm_nll(p, target), (params,))
    for value in (-1e4, 1e4):
        extreme = torch.full((1, 1, speech.gmm_output_size(20, 10)), value, requires_grad=True)
        loss = speech.gmm_loss(extreme, torch.full((1, 1, 10), 30.0))
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(extreme.grad).all()
    with pytest.raises(ValueError, match="gmm_output_size"):
        speech.gmm_nll(torch.zeros(1, 1, 40), torch.zeros(1, 1, 10))


def test_gmm_sample_draws_from_the_mixture():
    p = torch.zeros(4000, speech.gmm_output_size(2, 3))
    p[:, :2] = torch.tensor([0.0, math.log(3.0)])  # weights 1/4, 3/4
    p[:, 2:8] = torch.tensor([-5.0, -5.0, -5.0, 5.0, 5.0, 5.0])
    p[:, 8:] = math.log(0.5)
    draws = speech.gmm_sample(p, 3, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (4000, 3)
    assert (draws[:, 0] > 0).float().mean().item() == pytest.approx(0.75, abs=0.03)
    high = draws[draws[:, 0] > 0]
    assert high.mean(0).tolist() == pytest.approx([5.0] * 3, abs=0.05)
    assert high.std(0).tolist() == pytest.approx([0.5] * 3, abs=0.03)
    again = speech.gmm_sample(p, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


def test_single_gaussian_baseline_in_closed_form():
    rng = np.random.default_rng(0)
    noise = [rng.normal(0, 1, 20_000).astype(np.float32) for _ in range(3)]
    entropy = 0.5 * 10 * (1 + math.log(2 * math.pi))  # white noise of unit variance: nats per 10 samples
    unit = speech.WaveScale(1.0)
    assert speech.single_gaussian_nll(noise[:2], noise[2:], scale=unit) == pytest.approx(entropy, abs=0.03)
    # AR(1) x_t = a x_{t-1} + e_t: one full-covariance Gaussian over 10 samples has the chain's entropy
    # h(x_1) + 9 h(e), below the 10 h(x_1) that a diagonal one would give.
    a, clips = 0.9, []
    for _ in range(3):
        e, x = rng.normal(0, 1, 30_000), np.zeros(30_000)
        for t in range(1, len(x)):
            x[t] = a * x[t - 1] + e[t]
        clips.append(x[1000:].astype(np.float32))
    h = lambda var: 0.5 * (1 + math.log(2 * math.pi * var))  # noqa: E731
    want = h(1 / (1 - a**2)) + 9 * h(1.0)
    assert speech.single_gaussian_nll(clips[:2], clips[2:], scale=unit) == pytest.approx(want, abs=0.05)


# ---------------------------------------------------------------- generation
def ramp_model(calls):
    """A model whose next frame is the last input + 1 ... + 10 (sigma e^-7), counting its calls."""

    def step_fn(x, state):
        calls.append(x.clone())
        params = torch.cat([torch.zeros(1, 1), x[:, -1:] + torch.arange(1.0, 11.0)[None], torch.full((1, 10), -7.0)], 1)
        return params, (0 if state is None else state + 1)

    return step_fn


def test_generate_feeds_the_primer_then_its_own_samples():
    calls = []
    audio = speech.generate(ramp_model(calls), 0.002, 16000, primer=np.arange(45, dtype=np.float32),
                            generator=torch.Generator().manual_seed(0))
    assert audio.shape == (32,) and audio.dtype == np.float32
    np.testing.assert_allclose(audio, np.arange(45, 77), atol=0.01)
    assert [c[0, 0].item() for c in calls[:3]] == [5, 15, 25]  # the primer, frame by frame, ending at its end
    assert len(calls) == 3 + 3 and calls[3][0].tolist() == pytest.approx(list(range(35, 55)), abs=0.01)
    silent = speech.generate(ramp_model([]), 0.01, 16000, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(silent[:10], np.arange(1, 11), atol=0.01)  # from 20 zeros
    with pytest.raises(ValueError, match="at least in_len=20"):
        speech.generate(ramp_model([]), 0.01, 16000, primer=np.zeros(5))


# ---------------------------------------------------------------- the real speaker
def test_the_debian_speaker(fillets):
    clips = sorted(fillets.rglob("*-v-*.ogg"))
    assert len(clips) == 643
    names = [p.name for p in clips]
    assert len(set(names)) == 643  # names are unique, so the split by name is well defined
    counts = {s: sum(speech.split_of(n) == s for n in names) for s in speech.SPLITS}
    assert counts == {"train": 510, "valid": 65, "test": 68}
    path = speech.FILLETS_DIR / "city" / "cs" / "vit-v-proc.ogg"
    info = sf.info(str(path))
    assert (info.samplerate, info.channels) == (22050, 1)
    audio = speech.read_audio(path, 16000)
    assert abs(len(audio) - info.frames * 16000 / 22050) <= 1
    assert 0.3 < np.abs(audio).max() <= 1.0 and 0.03 < audio.std() < 0.3


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get (Debian/Ubuntu)")
def test_fetch_unpacks_the_debian_speaker_into_the_data_cache_and_the_reader_finds_it(tmp_path, monkeypatch):
    monkeypatch.setattr(speech, "FILLETS_DIR", tmp_path / "not-installed")
    monkeypatch.delenv(speech.SPEECH_ENV, raising=False)
    folder = speech.fetch_fillets()  # apt-get download + dpkg -x into COURSE_DATA_DIR (a temporary folder here)
    assert folder == speech.fillets_dirs()[1] and folder.is_relative_to(tmp_path)
    source, files = speech.speech_files()
    assert source == "fillets" and len(files) == 643
    assert all(p.is_relative_to(folder) for p in files.values())
    assert len(speech.read_audio(files["vit-v-proc.ogg"], 16000)) > 16000


def test_fetch_without_apt_says_how_to_get_the_speech(monkeypatch):
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(DatasetNotFoundError, match="apt-get and dpkg are not on this machine") as err:
        speech.fetch_fillets()
    assert "COURSE_SPEECH_DIR" in str(err.value)


def test_periodicity_tells_a_buzz_from_noise():
    sr = 16000
    t = np.arange(sr) / sr
    buzz = ((t * 120.0) % 1.0) - 0.5  # a 120 Hz sawtooth
    assert speech.periodicity(buzz, sr) > 0.9
    noise = np.random.default_rng(0).standard_normal(sr)
    assert speech.periodicity(noise, sr) < 0.1
    assert speech.periodicity(np.zeros(sr), sr) == 0.0
    with pytest.raises(ValueError, match="too few"):
        speech.periodicity(buzz[:100], sr)
