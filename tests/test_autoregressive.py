"""The WaveNet of the speed comparison: the cached sample-by-sample generation is the same network as the
parallel (teacher-forced) forward; mu-law round trip; the speed table runs."""
import torch
import torch.nn.functional as F

from course_utils.hifigan import autoregressive as ar


def test_cached_generation_equals_the_parallel_network():
    cfg = ar.WaveNetConfig(residual_channels=8, gate_channels=8, skip_channels=8, dilations=(1, 2, 4, 1, 2, 4),
                           n_mels=5, hop_size=4)
    torch.manual_seed(0)
    net = ar.WaveNet(cfg).eval()
    mel = torch.randn(1, 5, 10)
    codes = net.generate(mel, generator=torch.Generator().manual_seed(3))
    assert codes.shape == (40,) and codes.dtype == torch.long
    # replay: the parallel network's logits for these codes, sampled with the same random stream
    logits = net(codes[None], mel)[0]  # (Q, T)
    g = torch.Generator().manual_seed(3)
    replay = [int(torch.multinomial(F.softmax(logits[:, t], -1), 1, generator=g)[0]) for t in range(40)]
    assert replay == codes.tolist()
    assert len(set(codes.tolist())) > 5  # not a constant output


def test_mu_law_round_trip_and_receptive_field():
    x = torch.linspace(-1, 1, 1001)
    codes = ar.mu_law_encode(x)
    assert codes.min() == 0 and codes.max() == 255
    err = (ar.mu_law_decode(codes) - x).abs()
    assert err.max() < 0.025 and err[499:502].max() < 1e-4  # steps of 0.04 near +-1, of 2e-4 near 0
    assert ar.WaveNetConfig().receptive_field == 2 * 1023 + 1


def test_speed_table_names_every_model():
    rates = ar.speed_table(0.05, wavenet_seconds=0.005, hifigan_configs=("v3",), rnn_budget=5_000, repeats=1)
    assert set(rates) == {"WaveNet (cached)", "speech LSTM (10 samples a step)", "HiFi-GAN V3"}
    assert all(r > 0 for r in rates.values())
    assert rates["HiFi-GAN V3"] > 10 * rates["WaveNet (cached)"]
