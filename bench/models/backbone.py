"""Dilated (output stride 8) timm ResNet backbone returning layer3 and layer4 features.

The official TMANet backbone is mmseg's ResNetV1c-50 with strides (1, 2, 1, 1), dilations (1, 1, 2, 4) and
``contract_dilation=True`` (docs/tmanet.md §1.2). timm's ``features_only=True, output_stride=8`` builds exactly that
dilation pattern (the first block of a dilated stage uses half the dilation); ``resnet50c`` / ``resnet50d`` have
the deep stem of V1c (``resnet50d`` adds avg-down), ``resnet18`` is the tiny model used by the tests. A dilated
convolution on a map no larger than its dilation computes only its centre tap (``bench.models.dilated``: the
other taps read zero padding; at demo scale, 32x32 images, layer4's maps are 4x4).

Pretrained weights are never downloaded silently in offline settings:

* ``pretrained_path="/path/file.pth"`` (or ``.safetensors``) loads a local file's backbone non-strictly and
  records missing keys in ``Backbone.load_report`` (also emitted as a warning). The file is read and its keys
  mapped by ``bench.weights`` (``backbone_weights``): timm / torchvision ResNet keys, mmcv/mmseg ResNetV1c keys
  such as ``resnet50_v1c-2cccc1ad.pth``, or the backbone of a whole mmseg model or suite checkpoint;
* ``pretrained=True`` without a path first looks in the local caches (the Hugging Face hub cache,
  ``HF_HUB_CACHE``, and torch's ``$TORCH_HOME/hub/checkpoints/``) and loads a copy found there; otherwise, when
  huggingface.co cannot be reached (or ``HF_HUB_OFFLINE=1``), it fails at once (no download retries) with a
  ``PretrainedWeightsError`` naming the file to download and where to put it; online, timm downloads it.

Usage::

    from bench.models.backbone import Backbone
    bb = Backbone("resnet18")                        # random init
    layer3, layer4 = bb(images)                      # (B, 256, H/8, W/8), (B, 512, H/8, W/8) for resnet18
    bb.aux_channels, bb.out_channels                 # 256, 512 (1024, 2048 for resnet50c, the default)
    bb.features(images)                              # {"layer3": ..., "layer4": ...} (bench.models.pyramid's interface)

``resnet50c`` / ``resnet101c`` are the R50-D8 / R101-D8 backbones of mmseg's PSPNet and FCN configs
(``ResNetV1c``, depth 50 / 101).
"""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch
from timm.models import get_pretrained_cfg
from torch import Tensor, nn

from bench.errors import BenchError
from bench.models.dilated import skip_padding_taps
from bench.weights import MissingCheckpointFile, WeightsError, backbone_weights

HUB_HOST = "huggingface.co"
REACH_TIMEOUT_S = 3.0


class PretrainedWeightsError(BenchError, RuntimeError):
    """Pretrained backbone weights are neither where the user put them nor downloadable from here; the message
    names the file to download and where to put it."""


class MissingWeightsFile(PretrainedWeightsError, FileNotFoundError):
    """``model.pretrained_path`` names no file."""


class ForeignWeightsFile(PretrainedWeightsError, ValueError):
    """``model.pretrained_path`` names a file that holds no weights of the backbone (a text file, another dict)."""


# Indices of timm's ResNet feature pyramid: 0 stem, 1 layer1, 2 layer2, 3 layer3, 4 layer4.
LAYER3_INDEX, LAYER4_INDEX = 3, 4


class Backbone(nn.Module):
    """timm ResNet-like backbone at output stride 8: image (B, 3, H, W) -> (layer3, layer4) at (H/8, W/8).

    Attributes: ``aux_channels`` (layer3 channels, aux head input), ``out_channels`` (layer4 channels, decoder
    input), ``load_report`` (``{"missing": [...], "unexpected": [...], "mismatched": [...]}`` after loading a
    local file, else ``None``).
    """

    def __init__(self, name: str = "resnet50c", pretrained: bool = False, pretrained_path: str = "") -> None:
        super().__init__()
        self.name = name
        self.load_report: dict[str, list[str]] | None = None
        kwargs = dict(features_only=True, output_stride=8, out_indices=(LAYER3_INDEX, LAYER4_INDEX))
        if pretrained and not pretrained_path:
            self.body = _create_from_hub(name, kwargs)
        else:
            self.body = timm.create_model(name, pretrained=False, **kwargs)
            if pretrained_path:
                self.load_report = self.load_pretrained(pretrained_path)
        self.aux_channels, self.out_channels = self.body.feature_info.channels()
        skip_padding_taps(self.body)  # dilated 3x3 convolutions on maps smaller than their dilation (demo scale)
        # the feature-level interface shared with bench.models.pyramid (levels, strides, default levels)
        self.levels = {"layer3": self.aux_channels, "layer4": self.out_channels}
        self.strides = {"layer3": 8, "layer4": 8}
        self.default_levels = ("layer4", "layer3")

    def load_pretrained(self, path: str | Path) -> dict[str, list[str]]:
        """Load a local state dict non-strictly; warn about missing keys; error if nothing matches."""
        own = self.body.state_dict()
        try:
            state = backbone_weights(path)
        except MissingCheckpointFile as err:
            raise MissingWeightsFile(f"model.pretrained_path: {err}") from err
        except WeightsError as err:  # empty, truncated, refused or not a weights file at all
            raise ForeignWeightsFile(f"model.pretrained_path: {err}") from err
        usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        report = {
            "missing": sorted(k for k in own if k not in usable and not k.endswith("num_batches_tracked")),
            "unexpected": sorted(k for k in state if k not in own and not k.startswith("fc.")),
            "mismatched": sorted(k for k in state if k in own and own[k].shape != state[k].shape),
        }
        if not usable:
            raise ForeignWeightsFile(
                f"model.pretrained_path: no tensor in {str(path)!r} matches backbone {self.name!r} (e.g. file keys "
                f"{list(state)[:3]}, model keys {list(own)[:3]}); is it a {self.name} checkpoint?"
            )
        self.body.load_state_dict(usable, strict=False)
        if report["missing"] or report["mismatched"]:
            warnings.warn(
                f"backbone {self.name!r} from {str(path)!r}: {len(usable)} tensors loaded, "
                f"{len(report['missing'])} missing (e.g. {report['missing'][:5]}), "
                f"{len(report['mismatched'])} with another shape (e.g. {report['mismatched'][:5]})",
                stacklevel=2,
            )
        return report

    def features(self, image: Tensor) -> dict[str, Tensor]:
        """(B, 3, H, W) -> {"layer3": (B, aux_channels, h, w), "layer4": (B, out_channels, h, w)} (through
        ``forward``, so its hooks run)."""
        layer3, layer4 = self(image)
        return {"layer3": layer3, "layer4": layer4}

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, H, W) -> layer3 (B, aux_channels, h, w), layer4 (B, out_channels, h, w), h = ceil(H/8)."""
        layer3, layer4 = self.body(image)
        return layer3, layer4


def hub_reachable(timeout_s: float = REACH_TIMEOUT_S) -> bool:
    """Whether huggingface.co answers a TCP connection (False at once with ``HF_HUB_OFFLINE=1``)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def cached_weights(name: str) -> Path | None:
    """A local copy of timm's pretrained weights for ``name``: the Hugging Face hub cache, then torch's hub
    checkpoints folder (where a by-hand download can go); None when there is none."""
    cfg = get_pretrained_cfg(name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import constants, try_to_load_from_cache

        cache = os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE
        for filename in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(cfg.hf_hub_id, filename, cache_dir=cache)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    if cfg.url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name
        if path.is_file():
            return path
    return None


def _create_from_hub(name: str, kwargs: dict) -> nn.Module:
    """timm's pretrained weights: a cached copy, else timm's own download; offline or on failure, an error
    naming the file to fetch by hand (at once: no download is attempted when the hub cannot be reached)."""
    local = cached_weights(name)
    if local is not None:
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(local)}, **kwargs)
    if not hub_reachable():
        raise PretrainedWeightsError(
            fetch_hint(name, f"no copy in the local caches and {HUB_HOST} cannot be reached from here")
        )
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as err:  # network / hub errors come in many types (OSError, HTTPError, hub errors)
        raise PretrainedWeightsError(fetch_hint(name, f"{type(err).__name__}: {err}")) from err


def fetch_hint(name: str, why: str) -> str:
    """Why timm's weights of backbone ``name`` could not be had, and where to download them by hand."""
    cfg = get_pretrained_cfg(name)
    source = []
    if cfg is not None and cfg.hf_hub_id:
        source.append(f"https://huggingface.co/{cfg.hf_hub_id} (file model.safetensors)")
    if cfg is not None and cfg.url:
        source.append(cfg.url)
    where = " or ".join(source) or f"the timm weights of {name!r}"
    return (
        f"could not fetch pretrained weights for backbone {name!r} ({why}). Download {where} on a machine "
        f"with internet access, copy it here and set model.pretrained_path=/path/to/that/file (or put the .pth "
        f"in {Path(torch.hub.get_dir()) / 'checkpoints'}/, or set model.pretrained=false to train from scratch)."
    )
