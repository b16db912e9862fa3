"""What a suite state dict's keys and shapes say about the model's settings (no model is built).

Usage::

    from bench.weights.structure import memory_slots, encoding_of, aggregation_of, out_channels, pool_bins
    memory_slots(state)                         # TMANet's memory length T (0 without a memory)
    encoding_of(state), aggregation_of(state)   # "1x1+3x3", "concat" for the official TMANet head
    out_channels(state, "query_key.0.0.weight") # key channels (None when the key is absent)
"""

from __future__ import annotations

import re

from torch import Tensor

State = dict[str, Tensor]


def memory_slots(state: State) -> int:
    """The number of memory slots with their own key encoders (``memory_keys.{t}``)."""
    return len({k.split(".")[1] for k in state if k.startswith("memory_keys.")})


def encoding_of(state: State) -> str | None:
    """TMANet's encoding layers: "1x1+3x3" (two stages), "1x1" or "3x3"; None without a query key encoder."""
    first = state.get("query_key.0.0.weight")
    if first is None:
        return None
    return "1x1+3x3" if "query_key.1.0.weight" in state else f"{first.shape[-1]}x{first.shape[-1]}"


def _last_conv(state: State, module: str) -> Tensor | None:
    convs = sorted(k for k in state if re.fullmatch(rf"{module}\.\d+\.0\.weight", k))
    return state[convs[-1]] if convs else None


def aggregation_of(state: State) -> str | None:
    """TMANet's aggregation from the bottleneck's input width: "concat" (2 Cv) or "sum" (Cv); None otherwise."""
    fused, value = state.get("bottleneck.0.weight"), _last_conv(state, "query_value")
    if fused is None or value is None or "memory_keys.0.0.0.weight" not in state:
        return None
    if fused.shape[1] == 2 * value.shape[0]:
        return "concat"
    return "sum" if fused.shape[1] == value.shape[0] else None


def out_channels(state: State, key: str) -> int | None:
    """Output channels of the conv ``key`` (its weight's first dimension); None when absent."""
    return int(state[key].shape[0]) if key in state else None


def pool_bins(state: State) -> int | None:
    """The number of PSPNet pyramid bins (``psp.stages.{i}``); None without a pyramid."""
    return len({k.split(".")[2] for k in state if k.startswith("psp.stages.")}) or None
