"""mmsegmentation as the tests' oracle: import it (with a stand-in for mmcv's compiled ops), build its models.

    from helpers.oracle import require_oracle, build_mmseg, randomise
    mmseg = require_oracle()                       # skip with the install command, or fail under BENCH_ORACLE=1
    net = build_mmseg(dict(type="EncoderDecoder", backbone=..., decode_head=...))    # mmseg.registry.MODELS
    randomise(net, seed=0, forward=lambda x: net.encode_decode(x, metas))   # random weights and BN statistics

The oracle extra (``make oracle``: ``pip install -e ".[dev,oracle]"`` and the headless OpenCV put back) is
mmsegmentation 1.2.2 with mmcv-lite 2.1.0 and mmengine: pure Python, so ``mmcv.ops`` (compiled CUDA/C++ operators)
is absent, while ``import mmseg.models`` imports it for heads the suite never builds (point_head, psa_head, ...).
``install_ops_stand_in`` registers a module whose every attribute is a class that raises when used, so those imports
succeed and nothing of them can run silently. ``.ci/run`` installs the extra and sets ``BENCH_ORACLE=1``: the oracle
tests fail there instead of skipping."""

from __future__ import annotations

import importlib
import os
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

INSTALL = "make oracle"  # pip install -e ".[dev,oracle]", then the headless OpenCV put back (Makefile)


class _CompiledOp:
    """An ``mmcv.ops`` name under mmcv-lite: importing it works, using it fails."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"{type(self).__name__} is a compiled mmcv op; mmcv-lite has none (tests/helpers/oracle.py)")


def install_ops_stand_in() -> None:
    """Register the stand-in ``mmcv.ops`` unless the real one imports (full mmcv)."""
    try:
        importlib.import_module("mmcv.ops")
        return
    except ImportError:
        pass
    stand_in = types.ModuleType("mmcv.ops")

    def __getattr__(name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (_CompiledOp,), {})

    stand_in.__getattr__ = __getattr__  # type: ignore[method-assign]  # PEP 562 module attribute hook
    sys.modules["mmcv.ops"] = stand_in
    sys.modules["mmcv"].ops = stand_in  # type: ignore[attr-defined]


def require_oracle(module: str = "mmseg") -> Any:
    """``mmseg`` (models importable) or another oracle module (``torchmetrics``); skip with the install command
    where it is missing, or fail when ``BENCH_ORACLE`` says it must be there."""
    try:
        if module == "mmseg":
            importlib.import_module("mmcv")
            install_ops_stand_in()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # mmcv-lite warns that its deformable attention is missing
                importlib.import_module("mmseg.models")
        return importlib.import_module(module)
    except ImportError as err:
        if os.environ.get("BENCH_ORACLE"):
            pytest.fail(f"BENCH_ORACLE is set but {module} cannot be imported ({err})", pytrace=False)
        pytest.skip(f"{module} not installed ({err}): {INSTALL}")


def build_mmseg(cfg: dict[str, Any]) -> nn.Module:
    """An mmseg model from its config dict, in eval mode."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    init_default_scope("mmseg")
    model = MODELS.build(cfg)
    model.eval()  # mmseg's ResNet.train() returns None, so not chained
    return model


def randomise(module: nn.Module, seed: int, forward: Callable[[torch.Tensor], Any]) -> None:
    """Random weights and BatchNorm statistics at the scale of a trained network, then eval mode.

    Conv weights He-normal, BN weight in [0.5, 1.5] and bias N(0, 0.1); the running statistics are measured on
    random images through ``forward`` (train mode, a cumulative average), then drawn around that: var x [0.8,
    1.25], mean + N(0, 0.1 sd). Without the measurement, 50 layers of random statistics grow logits to 1e6.
    """
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for name, tensor in module.named_parameters():
            if tensor.dim() == 1 and name.endswith("weight"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif tensor.dim() == 1:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * (2.0 / tensor[0].numel()) ** 0.5)
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average over the calibration batch
        module.train()
        forward(torch.randn(2, 3, 48, 64, generator=generator))  # the tests' image sizes
        for norm in norms:
            norm.momentum = 0.1
            scale = torch.rand(norm.running_var.shape, generator=generator) * 0.45 + 0.8
            shift = torch.randn(norm.running_mean.shape, generator=generator) * 0.1 * norm.running_var.sqrt()
            norm.running_var.mul_(scale)
            norm.running_mean.add_(shift)
    module.eval()
