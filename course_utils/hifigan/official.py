"""The authors' published generators (jik876/hifi-gan, e.g. `generator_v1` or `g_02500000`) in the course's
Generator, for users who are online and download them: the same network, other parameter names.

Their file is `torch.save({"generator": state_dict})`, with the old weight norm (`weight_g`, `weight_v`) and
the residual blocks in one flat list `resblocks.{i * K + j}` (upsampling layer i, kernel j of K), each
with `convs1` (dilated) and `convs2` (plain) for ResBlock1, or `convs` for ResBlock2.

    G = load_official_generator("generator_v1")          # V1, V2 or V3: found from the shapes
"""
from __future__ import annotations

import os
import re

import torch

from . import configs
from .generator import Generator

_LEAF = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1",
         "weight": "weight", "bias": "bias"}
_BLOCK = re.compile(r"resblocks\.(\d+)\.(convs1|convs2|convs)\.(\d+)$")


def official_key(key: str, num_kernels: int) -> str:
    """One key of the authors' generator state dict -> the course Generator's key (`num_kernels`: K, the
    residual blocks per upsampling layer)."""
    module, _, leaf = key.rpartition(".")
    if leaf not in _LEAF:
        raise KeyError(f"{key!r}: not a parameter name of the authors' generator (weight_g, weight_v, weight, bias).")
    block = _BLOCK.match(module)
    if block:
        r, kind, n = int(block[1]), block[2], block[3]
        module = f"mrf.{r // num_kernels}.{r % num_kernels}.{'plain' if kind == 'convs2' else 'dilated'}.{n}"
    elif not re.fullmatch(r"conv_pre|conv_post|ups\.\d+", module):
        raise KeyError(f"{key!r}: not a parameter name of the authors' generator.")
    return f"{module}.{_LEAF[leaf]}"


def convert_state_dict(state: dict, config: configs.GeneratorConfig) -> dict:
    """The authors' generator state dict -> the course Generator's (with weight norm if theirs has it)."""
    return {official_key(k, len(config.resblock_kernel_sizes)): v for k, v in state.items()}


def load_official_generator(path: str | os.PathLike, config: configs.GeneratorConfig | None = None,
                            device: str | torch.device = "cpu") -> Generator:
    """A generator file of jik876/hifi-gan -> the course Generator with weight norm removed, in eval mode.
    `config`: V1, V2 or V3 (`configs`); None tries each and keeps the one whose shapes fit. Loaded with
    `weights_only=True`: no code in the file runs."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"No file at {path}: download a generator of jik876/hifi-gan first "
                                "(e.g. generator_v1 from the links in its README).") from None
    except Exception as err:
        raise ValueError(f"{path} is not a PyTorch file that loads without running code ({err}).") from err
    state = saved.get("generator", saved) if isinstance(saved, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path} holds no generator state dict (expected {{'generator': state_dict}}).")
    candidates = [config] if config is not None else [configs.V1, configs.V2, configs.V3]
    errors = []
    for cfg in candidates:
        G = Generator(cfg)
        try:
            mapped = convert_state_dict(state, cfg)
            if not any(k.endswith("original0") for k in mapped):  # saved after their remove_weight_norm()
                G.remove_weight_norm()
            G.load_state_dict(mapped)
        except (KeyError, RuntimeError) as err:
            errors.append(str(err).splitlines()[0])
            continue
        return G.remove_weight_norm().to(device).eval()
    names = {id(c): n for n, c in configs.GENERATORS.items()}
    tried = ", ".join(names.get(id(c), "the given config") for c in candidates)
    raise ValueError(f"{path} does not fit the course's generator {tried}: {errors[0]}. Is it a HiFi-GAN "
                     "generator (not a discriminator file do_...) with 80 mel bands and the hop of 256?")
