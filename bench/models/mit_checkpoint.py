"""Released Mix Transformer checkpoints onto ``bench.models.mit.MixTransformer``: key maps and size checks.

Two layouts are read (recognised from their keys):

* ``nvlabs``: the ImageNet-1k checkpoints released with SegFormer (``mit_b0.pth`` .. ``mit_b5.pth``, the files
  the SegFormer and CFFM configs load): ``patch_embed{1-4}.proj``, ``block{1-4}.{j}.attn.{q,kv,proj,sr,norm}``,
  ``block{i}.{j}.mlp.{fc1,dwconv.dwconv,fc2}``, ``norm{1-4}``; the classifier ``head.*`` is ignored.
* ``mmseg``: mmsegmentation's converted files (``tools/model_converters/mit2mmseg.py``, the ``mit_b*_2022*.pth``
  of its model zoo): ``layers.{i}.0.projection``, ``layers.{i}.1.{j}.attn.attn.in_proj_{weight,bias}`` (the
  query rows first, then keys and values: split here into ``q`` and ``kv``), ``attn.attn.out_proj``, 1x1-conv
  FFN weights ``ffn.layers.{0,1,4}`` (squeezed back to linear), ``layers.{i}.2`` (the stage norm).

Containers (``state_dict`` / ``model``) and ``backbone.`` / ``module.`` prefixes are unwrapped
(``bench.models.backbone.read_state_dict``). Loading is strict: a checkpoint of another MiT size is a one-line
``CheckpointSizeError`` naming both sizes; a missing or unexpected key names the key.

Usage::

    from bench.models.mit_checkpoint import load_mit_checkpoint
    load_mit_checkpoint(mit, "/data/weights/mit_b1.pth")     # -> {"layout": "nvlabs", "loaded": 100, "ignored": [...]}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bench.errors import BenchError
from bench.models.backbone import read_state_dict
from bench.models.mit import MIT_VARIANTS, MixTransformer


class CheckpointSizeError(BenchError, ValueError):
    """A MiT checkpoint whose widths or depths are another variant's than the model's."""


class CheckpointLayoutError(BenchError, ValueError):
    """A file that is no MiT checkpoint, or one with missing or unexpected tensors."""


# nvlabs name -> ours (applied in order; the first matching rule rewrites the key)
_NVLABS_RULES: tuple[tuple[str, str], ...] = (
    (r"^patch_embed(\d)\.", "stages.{0}.embed."),
    (r"^block(\d)\.(\d+)\.mlp\.dwconv\.dwconv\.", "stages.{0}.blocks.{1}.ffn.dwconv."),
    (r"^block(\d)\.(\d+)\.mlp\.", "stages.{0}.blocks.{1}.ffn."),
    (r"^block(\d)\.(\d+)\.", "stages.{0}.blocks.{1}."),
    (r"^norm(\d)\.", "stages.{0}.norm."),
)
# mmseg name -> ours; the stage index is already 0-based
_MMSEG_RULES: tuple[tuple[str, str], ...] = (
    (r"^layers\.(\d)\.0\.projection\.", "stages.{0}.embed.proj."),
    (r"^layers\.(\d)\.0\.norm\.", "stages.{0}.embed.norm."),
    (r"^layers\.(\d)\.1\.(\d+)\.attn\.attn\.out_proj\.", "stages.{0}.blocks.{1}.attn.proj."),
    (r"^layers\.(\d)\.1\.(\d+)\.attn\.", "stages.{0}.blocks.{1}.attn."),
    (r"^layers\.(\d)\.1\.(\d+)\.ffn\.layers\.0\.", "stages.{0}.blocks.{1}.ffn.fc1."),
    (r"^layers\.(\d)\.1\.(\d+)\.ffn\.layers\.1\.", "stages.{0}.blocks.{1}.ffn.dwconv."),
    (r"^layers\.(\d)\.1\.(\d+)\.ffn\.layers\.4\.", "stages.{0}.blocks.{1}.ffn.fc2."),
    (r"^layers\.(\d)\.1\.(\d+)\.", "stages.{0}.blocks.{1}."),
    (r"^layers\.(\d)\.2\.", "stages.{0}.norm."),
)


def _rewrite(key: str, rules: tuple[tuple[str, str], ...], one_based: bool) -> str | None:
    for pattern, template in rules:
        match = re.match(pattern, key)
        if match:
            groups = list(match.groups())
            if one_based:
                groups[0] = str(int(groups[0]) - 1)
            return template.format(*groups) + key[match.end() :]
    return None


def detect_layout(state: dict[str, Tensor]) -> str:
    """``"nvlabs"``, ``"mmseg"`` or ``"ours"`` from the keys; a ``CheckpointLayoutError`` for anything else."""
    keys = list(state)
    if any(k.startswith("stages.0.embed.proj.") for k in keys):
        return "ours"
    if any(k.startswith("patch_embed1.") for k in keys):
        return "nvlabs"
    if any(k.startswith("layers.0.0.projection.") for k in keys):
        return "mmseg"
    raise CheckpointLayoutError(
        f"no Mix Transformer checkpoint: none of the keys of the NVlabs (patch_embed1.proj.weight), mmseg "
        f"(layers.0.0.projection.weight) or this suite's layout (e.g. file keys {keys[:3]})"
    )


def _from_mmseg(state: dict[str, Tensor]) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        new = _rewrite(key, _MMSEG_RULES, one_based=False)
        if new is None:
            out[key] = value
            continue
        if new.endswith("attn.attn.in_proj_weight") or new.endswith("attn.attn.in_proj_bias"):
            base, kind = new.rsplit(".attn.in_proj_", 1)
            dim = value.shape[0] // 3
            out[f"{base}.q.{kind}"], out[f"{base}.kv.{kind}"] = value[:dim], value[dim:]
            continue
        if value.dim() == 4 and (".ffn.fc1." in new or ".ffn.fc2." in new):
            value = value.flatten(1)  # a 1x1 conv weight (out, in, 1, 1) is the linear weight (out, in)
        out[new] = value
    return out


def to_our_layout(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], str]:
    """Any supported layout -> (our key names, the layout's name)."""
    layout = detect_layout(state)
    if layout == "ours":
        return dict(state), layout
    if layout == "mmseg":
        return _from_mmseg(state), layout
    mapped = {}
    for key, value in state.items():
        new = _rewrite(key, _NVLABS_RULES, one_based=True)
        mapped[new if new is not None else key] = value
    return mapped, layout


def describe_size(state: dict[str, Tensor]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(stage widths, stage depths) of a state dict in our layout."""
    keys = [f"stages.{i}.embed.proj.weight" for i in range(4)]
    dims = tuple(int(state[k].shape[0]) for k in keys if k in state)
    depths = []
    for i in range(4):
        blocks = {int(m.group(1)) for k in state if (m := re.match(rf"stages\.{i}\.blocks\.(\d+)\.", k))}
        depths.append(max(blocks) + 1 if blocks else 0)
    return dims, tuple(depths)


def _variant_name(dims: tuple[int, ...], depths: tuple[int, ...]) -> str:
    for name, variant in MIT_VARIANTS.items():
        if tuple(variant.dims) == dims and tuple(variant.depths) == depths:
            return name
    return "no known variant"


def check_size(model: MixTransformer, state: dict[str, Tensor], path: str | Path) -> None:
    """A ``CheckpointSizeError`` when the checkpoint's widths or depths are not the model's."""
    dims, depths = describe_size(state)
    want_dims, want_depths = tuple(model.variant.dims), tuple(model.variant.depths)
    if (dims, depths) != (want_dims, want_depths):
        found = _variant_name(dims, depths)
        raise CheckpointSizeError(
            f"{str(path)!r} is a MiT with widths {list(dims)} and depths {list(depths)} ({found}), but the "
            f"backbone is {model.name} (widths {list(want_dims)}, depths {list(want_depths)}); set "
            f"model.backbone={found if found in MIT_VARIANTS else 'the matching mit_b*'} or give the "
            f"{model.name}.pth checkpoint (valid sizes: {', '.join(MIT_VARIANTS)})"
        )


def load_mit_checkpoint(model: MixTransformer, path: str | Path) -> dict[str, Any]:
    """Load a released MiT checkpoint into ``model`` (strict); returns ``{"layout", "loaded", "ignored"}``."""
    raw = read_state_dict(path)
    state, layout = to_our_layout(raw)
    check_size(model, state, path)
    ignored = sorted(k for k in state if k.startswith("head."))  # the ImageNet classifier
    state = {k: v for k, v in state.items() if not k.startswith("head.")}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or mismatched:
        raise CheckpointLayoutError(
            f"{str(path)!r} ({layout} layout) does not fit {model.name}: {len(missing)} missing (e.g. "
            f"{missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), {len(mismatched)} of "
            f"another shape (e.g. {mismatched[:3]})"
        )
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
    return {"layout": layout, "loaded": len(state), "ignored": ignored}
