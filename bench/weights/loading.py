"""Putting a checkpoint's weights into a suite model, strictly; and a backbone's weights for initialisation.

    from bench.weights.loading import load_weights, backbone_weights
    report = load_weights(model, "tmanet_cityscapes.pth")                 # official TMANet (mmseg 0.x layout)
    report = load_weights(model, ckpt, checkpoint_format="mmcv_resnet")   # only the backbone of a whole model
    model = built_with_weights(make_model, "tmanet_cityscapes.pth", "auto")   # build, then load (a run's builder)
    describe_file("tmanet_cityscapes.pth")   # {"checkpoint", "format", "layout", "sha256", "bytes"}: for records
    report.describe()        # "official TMANet (mmseg layout), ResNet-50 (deep stem), T = 2, 19 classes: 377 tensors"
    state = backbone_weights("resnet50_v1c.pth")     # timm names (conv1.0.weight, layer1.0.conv1.weight, ...)

``load_weights`` is strict: a whole-model checkpoint must fill every tensor of the model, a backbone checkpoint
every tensor of ``model.backbone``; a missing, unexpected or mis-shaped key is a one-line
``WeightsMismatchError`` with the likely cause (``bench.weights.mismatch``), a checkpoint of another model a
``LayoutError``. Nothing is loaded unless everything fits. ``backbone_weights`` feeds the backbone's own, lenient
``model.pretrained_path`` initialisation (``bench.models.backbone.Backbone.load_pretrained``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from bench.weights.errors import LayoutError
from bench.weights.files import Checkpoint, read_checkpoint, sha256_of
from bench.weights.layouts import BACKBONE_FORMATS, Layout, detect_layout, guess_format
from bench.weights.mapping import SUITE_BACKBONE, Mapped, backbone_state, suite_model, suite_state
from bench.weights.mismatch import check_fit


@dataclass(frozen=True)
class LoadReport:
    """What ``load_weights`` put into the model: from which file, read how, how many tensors, what was left out."""

    path: Path
    layout: Layout
    loaded: int
    ignored: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def backbone_only(self) -> bool:
        return self.layout.format in BACKBONE_FORMATS

    def describe(self) -> str:
        part = "backbone only" if self.backbone_only else "the whole model"
        left = f", {len(self.ignored)} left out (e.g. {self.ignored[0]})" if self.ignored else ""
        return f"{self.layout.describe()}: {self.loaded} tensors ({part}){left}"


def _check_model(layout: Layout, ckpt: Checkpoint, own: dict[str, Tensor], model_name: str) -> None:
    """A whole model must be the suite model of the same kind (a PSPNet file never fills a TMANet)."""
    if layout.format == "mmseg" and suite_model(own) != layout.model:
        raise LayoutError(
            f"{ckpt.path} holds another model than {model_name}: {layout.describe()}; set model.name="
            f"{layout.model} to evaluate it, or model.checkpoint_format=mmcv_resnet to take only its backbone"
        )
    if layout.format == "bench":
        theirs, ours = _modules(ckpt.state), _modules(own)
        if theirs != ours:
            config = ckpt.meta.get("config")
            trained = config.get("model", {}).get("name") if isinstance(config, dict) else None
            written = f" (written for model.name={trained})" if trained else ""
            raise LayoutError(
                f"{ckpt.path} holds another model than {model_name}{written}: modules "
                f"{', '.join(sorted(theirs - ours)) or 'none'} only in the file, "
                f"{', '.join(sorted(ours - theirs)) or 'none'} only in the model; build the model it was trained as"
            )


def _modules(state: dict[str, Tensor]) -> set[str]:
    return {key.split(".")[0] for key in state}


def load_weights(model: nn.Module, source: str | Path | Checkpoint, checkpoint_format: str = "auto") -> LoadReport:
    """Load ``source`` (a path or a read ``Checkpoint``) into ``model`` strictly; see the module docstring."""
    ckpt = source if isinstance(source, Checkpoint) else read_checkpoint(source)
    layout = detect_layout(ckpt.state, checkpoint_format, ckpt.path)
    own = model.state_dict()
    name = type(model).__name__
    _check_model(layout, ckpt, own, name)
    mapped = suite_state(ckpt.state, layout)
    if layout.format in BACKBONE_FORMATS:
        own = {k: v for k, v in own.items() if k.startswith(SUITE_BACKBONE)}
        name = f"{name}'s backbone"
    check_fit(mapped, own, layout, ckpt.path, name)
    model.load_state_dict(mapped.state, strict=layout.format not in BACKBONE_FORMATS)
    return LoadReport(ckpt.path, layout, len(mapped.state), tuple(mapped.ignored), dict(ckpt.meta))


def backbone_weights(path: str | Path) -> dict[str, Tensor]:
    """The backbone weights of a file under timm's names, for the lenient ``model.pretrained_path``: mmcv/mmseg
    ResNet keys (a backbone, or the backbone of a whole mmseg model) mapped (``stem.*`` -> ``conv1.*`` / ``bn1``),
    a suite checkpoint's ``backbone.body.*``, and any other layout (timm, Swin, ...) as it is, a ``backbone.``
    prefix removed. An ImageNet classifier (``fc.*``) stays in; the backbone's loader ignores it."""
    ckpt = read_checkpoint(path, hint="give the path of the downloaded file, or set model.pretrained=false")
    found = guess_format(list(ckpt.state))
    if found in ("mmseg", "mmcv_resnet"):
        mapped = Mapped()
        backbone_state(ckpt.state, "mmcv_resnet", mapped)
        return {k[len(SUITE_BACKBONE) :]: v for k, v in mapped.state.items()} | {
            k: ckpt.state[k] for k in mapped.unmapped
        }
    prefix = SUITE_BACKBONE if found == "bench" else "backbone."
    return {k.removeprefix(prefix): v for k, v in ckpt.state.items() if found != "bench" or k.startswith(prefix)}


def built_with_weights(build: Callable[[], nn.Module], checkpoint: str | Path, checkpoint_format: str) -> nn.Module:
    """``build()``, then ``load_weights`` of ``checkpoint`` into it: a run's model builder with ``model.checkpoint``
    (``bench.run.model.model_builder`` hands this, partially applied, to the engine)."""
    model = build()
    load_weights(model, checkpoint, checkpoint_format)
    return model


def describe_file(checkpoint: str | Path, checkpoint_format: str = "auto") -> dict[str, Any]:
    """What a record says about loaded weights: the path, the format asked for, the layout the keys show, the
    file's SHA-256 and size (the path alone does not name the weights: the file may be replaced)."""
    ckpt = read_checkpoint(checkpoint)
    layout = detect_layout(ckpt.state, checkpoint_format, ckpt.path)
    return {
        "checkpoint": str(checkpoint),
        "format": checkpoint_format,
        "layout": layout.describe(),
        "sha256": sha256_of(ckpt.path),
        "bytes": ckpt.path.stat().st_size,
    }
