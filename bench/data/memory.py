"""Which past frames form a clip's memory: offsets from the current frame, fixed or drawn (docs/tmanet.md §2.1).

Config keys (``bench/config/schema.py`` ``DataConfig``)::

    data.memory_offsets: [-4, -3, -2, -1]   # explicit offsets, oldest first; their number must be model.memory_length
    data.memory_stride: k                   # or offsets -T*k .. -k (default k = 1: the official {t-T .. t-1})
    data.memory_sampling: random            # or the official random_select: T distinct offsets from
    data.sequence_range: R                  #   -R..-1, sorted oldest first, drawn ONCE per labelled image
    data.memory_seed: 0                     #   when the dataset is built (as the official __init__-time draw)
    data.memory_preset: cffm                # CFFM's reference frames t-9, t-6, t-3 and its first-frames table

The official configs set ``sequence_range == sequence_num``, so their draw is always {t-T .. t-1}: the
default here. Offsets count video frames (``memory_source=video``) or labelled frames of the same video
(``memory_source=labelled``, CamVid only).

Presets name the conventions of other codebases. ``cffm`` (Sun et al., CVPR 2022; GuoleiSun/VSS-CFFM,
``dilation=[-9,-6,-3]`` in its VSPW configs) reads frames t-9, t-6 and t-3 (``model.memory_length=3``), counted
in positions of the video's sorted frame list. A frame with fewer than 9 earlier frames follows CFFM's test-time
table (``prepare_test_img2``; ``CFFM_FIRST_FRAMES``): position 3 reads 0, 1, 2; 4 reads 0, 2, 3; 5 and 6 read
0, 2, 4; 7 reads 0, 3, 5; 8 reads 0, 3, 6. Positions 0..2 are decoded by CFFM without any reference frame; a
model with a fixed memory length cannot do that, so here their memory is the current frame repeated (the
closest input: nothing but the current frame). With ``data.first_frames=skip`` these frames are left out
instead, as CFFM's training sampler does (it draws the current frame among positions >= 9).

Usage::

    offsets = memory_offsets(data_cfg, split, count=4, num_items=len(names))   # one tuple per labelled image
    memory_positions(position, offsets, "repeat")   # list positions of a labelled frame's memory, or None (skip)

A dataset asked for one frame more than the offsets give (evaluation's temporal consistency reads T+1) gets
the stride pattern extended by one step; that is defined only for evenly spaced fixed offsets
(:func:`temporal_consistency_problem` says why not otherwise).
"""

from __future__ import annotations

import random

from bench.config import ConfigError, DataConfig

PRESET_OFFSETS: dict[str, tuple[int, ...]] = {"cffm": (-9, -6, -3)}
# CFFM's memory positions for a current frame at positions 3..8 (VSS-CFFM mmseg/datasets/custom.py)
CFFM_FIRST_FRAMES: dict[int, tuple[int, int, int]] = {
    3: (0, 1, 2),
    4: (0, 2, 3),
    5: (0, 2, 4),
    6: (0, 2, 4),
    7: (0, 3, 5),
    8: (0, 3, 6),
}


def configured_offsets(data_cfg: DataConfig) -> list[int]:
    """The explicit offsets of the config: its preset's, else ``data.memory_offsets`` ([] when neither)."""
    if data_cfg.memory_preset != "none":
        return list(PRESET_OFFSETS[data_cfg.memory_preset])
    return [int(o) for o in data_cfg.memory_offsets]


def memory_positions(
    current: int, offsets: tuple[int, ...], policy: str, earliest: int = 0, preset: str = "none"
) -> list[int] | None:
    """Positions (oldest first) of the memory of the frame at ``current``: ``current + o`` for each offset.

    Positions before ``earliest`` (a video's first frame) follow ``policy``: ``repeat`` uses ``earliest`` instead
    (or ``current`` when even that lies after it), ``skip`` returns None (the frame is left out). With
    ``preset="cffm"``, CFFM's offsets and ``earliest=0``, ``repeat`` follows CFFM's table (module docstring).
    """
    positions = [current + o for o in offsets]
    if min(positions, default=earliest) >= earliest:
        return positions
    if policy == "skip":
        return None
    if preset == "cffm" and tuple(offsets) == PRESET_OFFSETS["cffm"] and earliest == 0:
        return list(CFFM_FIRST_FRAMES.get(current, (current,) * 3))
    return [max(p, min(earliest, current)) for p in positions]


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
    given = configured_offsets(data_cfg)
    if not given:
        k = int(data_cfg.memory_stride)
        return tuple(-k * i for i in range(count, 0, -1))
    if count == len(given):
        return tuple(given)
    k = stride_of(given)
    if count == len(given) + 1 and k is not None:
        return tuple(-k * i for i in range(count, 0, -1))
    source = (
        "data.memory_offsets" if data_cfg.memory_preset == "none" else f"data.memory_preset={data_cfg.memory_preset}"
    )
    raise ConfigError(
        f"{source} {given} has {len(given)} entries but {count} memory frames were asked "
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
    offsets = configured_offsets(data_cfg)
    if offsets and stride_of(offsets) is None:
        return f"data.memory_offsets {offsets} are not evenly spaced up to t-k"
    return None


def is_consecutive(data_cfg: DataConfig) -> bool:
    """True when the memory is the default consecutive frames {t-T .. t-1} (the only choice synthetic clips have)."""
    return (
        (data_cfg.memory_sampling == "fixed" or int(data_cfg.sequence_range) == 0)
        and int(data_cfg.memory_stride) == 1
        and stride_of(configured_offsets(data_cfg)) in (None, 1)
    )
