import numpy as np
import pytest
import torch

from course_utils.hifigan import configs, discriminators, losses
from course_utils.hifigan.generator import Generator
from course_utils.hifigan.mel import MelSpectrogram


@pytest.mark.parametrize("name, millions", [("v1", 13.92), ("v2", 0.92), ("v3", 1.46)])
def test_generator_parameter_counts_match_the_paper(name, millions):
    # The paper's counts are those of the inference generator (weight norm removed), cut to two decimals.
    g = Generator(configs.GENERATORS[name], hop_size=256).remove_weight_norm()
    assert int(g.num_parameters() / 1e4) / 100 == millions


def test_upsampling_must_multiply_to_the_hop_size():
    with pytest.raises(ValueError, match="multiply to 256, but the hop size is 300"):
        Generator(configs.V3, hop_size=300)
    with pytest.raises(ValueError, match="resblock"):
        configs.GeneratorConfig(resblock="3").check()


@pytest.mark.parametrize("name", ["small", "v3"])
def test_output_length_and_weight_norm_removal(name):
    torch.manual_seed(0)
    g = Generator(configs.GENERATORS[name], hop_size=256).eval()
    mel = torch.randn(2, 80, 6)
    with torch.no_grad():
        before = g(mel)
        after = g.remove_weight_norm()(mel)
    assert before.shape == (2, 1, 6 * 256) and before.abs().max() <= 1
    torch.testing.assert_close(before, after, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="80"):
        g(torch.randn(2, 64, 6))


def test_other_numbers_of_mel_bands():
    from dataclasses import replace

    g = Generator(replace(configs.SMALL, n_mels=64), hop_size=256)
    assert g(torch.randn(1, 64, 3)).shape == (1, 1, 768)


def test_period_reshape_places_sample_t_at_row_t_div_p():
    audio = torch.arange(10.0).view(1, 1, 10)
    folded = discriminators.period_reshape(audio, 3)
    assert folded.shape == (1, 1, 4, 3)
    for t in range(10):
        assert folded[0, 0, t // 3, t % 3] == t
    assert folded[0, 0, 3, 1:].tolist() == [8.0, 7.0]  # reflect padding


def test_discriminators_return_scores_and_features():
    audio = torch.randn(2, 1, 2048)
    for cls, count in ((discriminators.MultiPeriodDiscriminator, 5), (discriminators.MultiScaleDiscriminator, 3)):
        scores, features = cls(configs.SLIM)(audio)
        assert len(scores) == len(features) == count
        assert all(s.shape[0] == 2 for s in scores) and all(len(f) >= 6 for f in features)
    paper = discriminators.MultiPeriodDiscriminator(configs.PAPER)
    assert paper.discriminators[0].convs[3].out_channels == 1024


def test_losses_by_hand():
    real, fake = [torch.tensor([1.0, 0.5])], [torch.tensor([0.0, 1.0])]
    assert losses.discriminator_loss(real, fake).item() == pytest.approx((0 + 0.25) / 2 + (0 + 1) / 2)
    assert losses.generator_adversarial_loss(fake).item() == pytest.approx((1 + 0) / 2)
    feats_r = [[torch.ones(2, 3), torch.zeros(4)]]
    feats_f = [[torch.zeros(2, 3), torch.ones(4) * 2]]
    assert losses.feature_matching_loss(feats_r, feats_f).item() == pytest.approx(1 + 2)
    assert losses.mel_loss(torch.zeros(1, 2, 2), torch.ones(1, 2, 2)).item() == 1.0


def test_mel_matches_librosa():
    import librosa

    c = configs.AudioConfig()
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(4096)).astype(np.float32)
    got = MelSpectrogram(c)(torch.from_numpy(audio)[None])[0].numpy()
    pad = (c.n_fft - c.hop_size) // 2
    padded = np.pad(audio, pad, mode="reflect")
    spec = np.abs(librosa.stft(padded, n_fft=c.n_fft, hop_length=c.hop_size, win_length=c.win_size, center=False))
    fb = librosa.filters.mel(sr=c.sampling_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax)
    want = np.log(np.maximum(fb @ spec, 1e-5))
    assert got.shape == want.shape == (80, 4096 // 256)
    np.testing.assert_allclose(got, want, atol=1e-3)
    with pytest.raises(ValueError, match="shape"):
        MelSpectrogram(c)(torch.zeros(1, 1, 1, 4096))


def test_griffin_lim_and_scores_on_a_real_like_signal():
    from course_utils.hifigan import evaluate

    c = configs.AudioConfig()
    t = np.arange(22050) / c.sampling_rate
    rng = np.random.default_rng(0)
    voice = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.3 * np.sin(2 * np.pi * 900 * t)
             ).astype(np.float32)
    noise = (0.3 * rng.standard_normal(len(t))).astype(np.float32)
    perfect = evaluate.scores(voice, voice)
    assert perfect["mel_l1"] < 1e-6 and perfect["stoi"] > 0.99 and perfect["pesq"] > 4.4
    assert evaluate.scores(voice, noise)["stoi"] < 0.5
    log_mel = MelSpectrogram(c)(torch.from_numpy(voice)[None])
    rebuilt = evaluate.griffin_lim(log_mel[0], c)
    assert abs(len(rebuilt) - len(voice)) <= c.hop_size * 4
    table = evaluate.compare([voice], {"griffin-lim": lambda m: evaluate.griffin_lim(m[0], c)})
    assert table["griffin-lim"]["mel_l1"] < evaluate.scores(voice, noise)["mel_l1"]
    with pytest.raises(ValueError, match="too short"):
        evaluate.scores(voice[:100], voice[:100])
