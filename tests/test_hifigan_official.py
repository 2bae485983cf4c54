"""The authors' generator files (jik876/hifi-gan) load into the course Generator: a state dict built in
their format (old weight norm: weight_g / weight_v; flat `resblocks`; convs1/convs2 or convs)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.hifigan import configs
from course_utils.hifigan.official import load_official_generator, official_key

# the old weight norm is how the authors saved their files
pytestmark = pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")


def authors_format(cfg, seed=0):
    """A network with the authors' module names and torch.nn.utils.weight_norm (weight_g, weight_v)."""
    torch.manual_seed(seed)
    wn = torch.nn.utils.weight_norm
    m = nn.Module()
    C = cfg.upsample_initial_channel
    m.conv_pre = wn(nn.Conv1d(80, C, 7, padding=3))
    m.ups = nn.ModuleList(wn(nn.ConvTranspose1d(C // 2**i, C // 2 ** (i + 1), k, u, padding=(k - u) // 2))
                          for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)))
    m.resblocks = nn.ModuleList()
    for i in range(len(cfg.upsample_rates)):
        ch = C // 2 ** (i + 1)
        for k, ds in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
            block = nn.Module()
            dilated = nn.ModuleList(wn(nn.Conv1d(ch, ch, k, dilation=d, padding=d * (k - 1) // 2)) for d in ds)
            if cfg.resblock == "1":
                block.convs1 = dilated
                block.convs2 = nn.ModuleList(wn(nn.Conv1d(ch, ch, k, padding=(k - 1) // 2)) for _ in ds)
            else:
                block.convs = dilated
            m.resblocks.append(block)
    m.conv_post = wn(nn.Conv1d(ch, 1, 7, padding=3))
    return m


def authors_forward(m, cfg, mel):
    """The generator's forward as the paper describes it, on the authors' module names."""
    K = len(cfg.resblock_kernel_sizes)
    x = m.conv_pre(mel)
    for i, up in enumerate(m.ups):
        x = up(F.leaky_relu(x, 0.1))
        outs = []
        for block in m.resblocks[i * K:(i + 1) * K]:
            y = x
            if cfg.resblock == "1":
                for c1, c2 in zip(block.convs1, block.convs2):
                    y = y + c2(F.leaky_relu(c1(F.leaky_relu(y, 0.1)), 0.1))
            else:
                for c in block.convs:
                    y = y + c(F.leaky_relu(y, 0.1))
            outs.append(y)
        x = sum(outs) / K
    return torch.tanh(m.conv_post(F.leaky_relu(x)))


@pytest.mark.parametrize("name", ["v2", "v3"])
def test_an_authors_checkpoint_loads_and_gives_their_output(name, tmp_path):
    cfg = configs.GENERATORS[name]
    m = authors_format(cfg)
    assert any(k.endswith("weight_g") for k in m.state_dict())
    path = tmp_path / "g_02500000"
    torch.save({"generator": m.state_dict()}, path)
    G = load_official_generator(path)  # the config is found from the shapes
    mel = torch.randn(1, 80, 6) - 4
    with torch.no_grad():
        torch.testing.assert_close(G(mel), authors_forward(m, cfg, mel), rtol=1e-4, atol=1e-5)
        assert G.config == cfg


def test_a_checkpoint_saved_without_weight_norm_loads_too(tmp_path):
    cfg = configs.V3
    m = authors_format(cfg, seed=1)
    for module in m.modules():
        if hasattr(module, "weight_g"):
            torch.nn.utils.remove_weight_norm(module)
    torch.save({"generator": m.state_dict()}, tmp_path / "plain")
    G = load_official_generator(tmp_path / "plain", configs.V3)
    mel = torch.randn(1, 80, 4) - 4
    with torch.no_grad():
        torch.testing.assert_close(G(mel), authors_forward(m, cfg, mel), rtol=1e-4, atol=1e-5)


def test_wrong_files_give_clear_errors(tmp_path):
    assert official_key("resblocks.4.convs2.1.weight_v", 3) == "mrf.1.1.plain.1.parametrizations.weight.original1"
    with pytest.raises(KeyError, match="not a parameter name"):
        official_key("discriminators.0.convs.0.weight_g", 3)
    with pytest.raises(FileNotFoundError, match="download"):
        load_official_generator(tmp_path / "missing")
    torch.save({"generator": authors_format(configs.V3).state_dict()}, tmp_path / "v3")
    with pytest.raises(ValueError, match="does not fit"):
        load_official_generator(tmp_path / "v3", configs.V1)
    torch.save({"mpd": {"discriminators.0.convs.0.weight_g": torch.ones(1)}}, tmp_path / "do_02500000")
    with pytest.raises(ValueError, match="discriminator"):
        load_official_generator(tmp_path / "do_02500000")
    (tmp_path / "text").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a PyTorch file"):
        load_official_generator(tmp_path / "text")
