"""Which past frames form a clip's memory: offsets from the current frame, fixed or drawn (docs/tmanet.md §2.1).

Config keys (``bench/config/schema.py`` ``DataConfig``)::

    data.memory_offsets: [-4, -3, -2, -1]   # explicit offsets, oldest first; their number must be model.memory_length
    data.memory_stride: k                   # or offsets -T*k .. -k (default k = 1: the official {t-T .. t-1})
    data.memory_sampling: random            # or the official random_select: T distinct offsets from
    data.sequence_range: R                  #   -R..-1, sorted oldest first, drawn ONCE per labelled image
    data.memory_seed: 0                     #   when the dataset is built (as the official __init__-time draw)

The official configs set ``sequence_range == sequence_num``, so their draw is always {t-T .. t-1}: the
default here. Offsets count video frames (``memory_source=video``) or labelled frames of the same video
(``memory_source=labelled``, CamVid only).

Usage::

    offsets = memory_offsets(data_cfg, split, count=4, num_items=len(names))   # one tuple per labelled image

A dataset asked for one frame more than the offsets give (evaluation's temporal consistency reads T+1) gets
the stride pattern extended by one step; that is defined only for evenly spaced fixed offsets
(:func:`temporal_consistency_problem` says why not otherwise).
"""

from __future__ import annotations

import random

from bench.config import ConfigError, DataConfig


def stride_of(offsets: list[int]) -> int | None:
    """k when ``offsets == [-n*k, ..., -k]`` (evenly spaced, ending at -k), else None."""
    if not offsets:
        return None
    k = -offsets[-1]
    return k if list(offsets) == [-k * i for i in range(len(offsets), 0, -1)] else None


def fixed_offsets(data_cfg: DataConfig, count: int) -> tuple[int, ...]:
    """The fixed offsets for ``count`` memory frames (oldest first); ConfigError when the config cannot give them."""
    if count == 0:
        return ()
    given = [int(o) for o in data_cfg.memory_offsets]
    if not given:
        k = int(data_cfg.memory_stride)
        return tuple(-k * i for i in range(count, 0, -1))
    if count == len(given):
        return tuple(given)
    k = stride_of(given)
    if count == len(given) + 1 and k is not None:
        return tuple(-k * i for i in range(count, 0, -1))
    raise ConfigError(
        f"data.memory_offsets {given} has {len(given)} entries but {count} memory frames were asked "
        f"for; set model.memory_length={len(given)} or give {count} offsets"
        + (
            ""
            if count != len(given) + 1
            else " (temporal consistency needs evenly spaced offsets; set eval.temporal_consistency=false)"
        )
    )


def random_offsets(sequence_range: int, count: int, seed: int, split: str, num_items: int) -> list[tuple[int, ...]]:
    """``num_items`` draws of ``count`` distinct offsets from ``-sequence_range..-1``, each sorted oldest first.

    Mirrors ``CustomVideoDataset.load_annotations`` (``random.sample(range(1, R + 1), T)``, sorted so the
    oldest frame is slot 0); seeded by ``(seed, split)`` so a split's draws are the same in every process.
    """
    if count > sequence_range:
        raise ConfigError(
            f"data.sequence_range={sequence_range} is smaller than the {count} memory frames asked "
            f"for; set data.sequence_range >= model.memory_length (or 0 for = T)"
        )
    rng = random.Random(f"{seed}:{split}")
    return [
        tuple(-i for i in sorted(rng.sample(range(1, sequence_range + 1), count), reverse=True))
        for _ in range(num_items)
    ]


def memory_offsets(data_cfg: DataConfig, split: str, count: int, num_items: int) -> list[tuple[int, ...]]:
    """Offsets (oldest first) of the ``count`` memory frames of each of ``num_items`` labelled images."""
    if data_cfg.memory_sampling == "random" and count > 0:
        sequence_range = int(data_cfg.sequence_range) or count
        return random_offsets(sequence_range, count, int(data_cfg.memory_seed), split, num_items)
    return [fixed_offsets(data_cfg, count)] * num_items


def temporal_consistency_problem(data_cfg: DataConfig) -> str | None:
    """Why the T+1-frame clips of the temporal-consistency metric are undefined for this config, or None."""
    if data_cfg.memory_sampling == "random" and int(data_cfg.sequence_range) > 0:
        return "data.memory_sampling=random draws offsets per image; t-1 has no memory of its own"
    if data_cfg.memory_offsets and stride_of([int(o) for o in data_cfg.memory_offsets]) is None:
        return f"data.memory_offsets {list(data_cfg.memory_offsets)} are not evenly spaced up to t-k"
    return None


def is_consecutive(data_cfg: DataConfig) -> bool:
    """True when the memory is the default consecutive frames {t-T .. t-1} (the only choice synthetic clips have)."""
    return (
        (data_cfg.memory_sampling == "fixed" or int(data_cfg.sequence_range) == 0)
        and int(data_cfg.memory_stride) == 1
        and stride_of([int(o) for o in data_cfg.memory_offsets]) in (None, 1)
    )
