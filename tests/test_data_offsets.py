"""Memory offsets as config: validation, the frames they select on disk, the seeded random draw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import write_frame as shared_write_frame
from PIL import Image

from bench.config import ConfigError, DataConfig, load_config
from bench.data import DatasetError, build_dataset
from bench.data.memory import fixed_offsets, memory_offsets, random_offsets, temporal_consistency_problem
from bench.data.transforms import denormalize

H, W = 8, 16


def write_frame(path: Path, number: int) -> None:
    """A frame whose red channel is its frame number."""
    shared_write_frame(path, (H, W), (number, 0, 0))


@pytest.fixture
def cityscapes_root(tmp_path: Path) -> Path:
    """aachen seq 1: frames 10..19 in leftImg8bit_sequence, frame 19 annotated (all road)."""
    root = tmp_path / "cityscapes"
    for number in range(10, 20):
        write_frame(root / f"leftImg8bit_sequence/val/aachen/aachen_000001_{number:06d}_leftImg8bit.png", number)
    label = root / "gtFine/val/aachen/aachen_000001_000019_gtFine_labelIds.png"
    label.parent.mkdir(parents=True)
    Image.fromarray(np.full((H, W), 7, dtype=np.uint8)).save(label)
    return root


def dataset(root: Path, memory_length: int, **data):
    cfg = load_config(
        None,
        [
            ("data.dataset", "cityscapes"),
            ("data.root", str(root)),
            ("data.base_size", []),
            *((f"data.{k}", v) for k, v in data.items()),
        ],
    )
    return build_dataset(cfg.data, "val", memory_length, train=False)


def frame_numbers(sample: dict) -> list[int]:
    return [int(v) for v in denormalize(sample["frames"]).round().long()[:, 0, 0, 0]]


@pytest.mark.parametrize(
    "override, message",
    [
        (("data.memory_offsets", [-1, -2]), "strictly increasing"),
        (("data.memory_offsets", [-2, 0]), "negative"),
        (("data.memory_offsets", [-3, -3]), "strictly increasing"),
        (("data.memory_stride", 0), "data.memory_stride"),
        (("data.memory_sampling", "sometimes"), "valid choices: fixed, random"),
    ],
)
def test_invalid_offsets_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_contradicting_memory_keys_are_config_errors():
    with pytest.raises(ConfigError, match="both set"):
        load_config(None, ["data.memory_offsets=[-4, -2]", "data.memory_stride=2"])
    with pytest.raises(ConfigError, match="draws its own offsets"):
        load_config(None, ["data.memory_sampling=random", "data.memory_offsets=[-2, -1]"])


def test_offsets_must_match_the_memory_length(cityscapes_root):
    with pytest.raises(ConfigError, match=r"\[-4, -1\] has 2 entries but 3 memory frames.*model.memory_length=2"):
        dataset(cityscapes_root, 3, memory_offsets=[-4, -1])
    with pytest.raises(ConfigError, match="temporal consistency needs evenly spaced"):
        fixed_offsets(DataConfig(memory_offsets=[-5, -1]), 3)


def test_offsets_are_honoured(cityscapes_root):
    assert frame_numbers(dataset(cityscapes_root, 2)[0]) == [17, 18, 19]  # default: the official t-2, t-1
    assert frame_numbers(dataset(cityscapes_root, 3, memory_offsets=[-9, -4, -1])[0]) == [10, 15, 18, 19]
    assert frame_numbers(dataset(cityscapes_root, 2, memory_stride=3)[0]) == [13, 16, 19]
    # one frame more (temporal consistency) extends an evenly spaced pattern by one step
    assert frame_numbers(dataset(cityscapes_root, 3, memory_offsets=[-4, -2])[0]) == [13, 15, 17, 19]
    assert frame_numbers(dataset(cityscapes_root, 0, memory_offsets=[-4, -2])[0]) == [19]


def test_missing_frame_is_a_one_line_error_naming_path_and_offsets(cityscapes_root):
    with pytest.raises(DatasetError) as error:
        dataset(cityscapes_root, 2, memory_offsets=[-12, -1])
    message = str(error.value)
    assert "\n" not in message
    assert "aachen_000001_000007_leftImg8bit.png" in message and "[-12, -1]" in message


def test_random_draw_is_seeded_sorted_and_in_range():
    draws = random_offsets(10, 3, seed=0, split="train", num_items=50)
    assert draws == random_offsets(10, 3, seed=0, split="train", num_items=50)
    assert draws != random_offsets(10, 3, seed=1, split="train", num_items=50)
    assert draws != random_offsets(10, 3, seed=0, split="val", num_items=50)
    assert all(list(d) == sorted(d) and len(set(d)) == 3 and -10 <= d[0] and d[-1] <= -1 for d in draws)
    assert len(set(draws)) > 10  # drawn per image, not once for all
    # sequence_range == T (the released configs, and sequence_range 0 here) is the deterministic {t-T .. t-1}
    assert set(memory_offsets(DataConfig(memory_sampling="random"), "train", 4, 20)) == {(-4, -3, -2, -1)}
    with pytest.raises(ConfigError, match="sequence_range=2 is smaller"):
        random_offsets(2, 3, seed=0, split="train", num_items=1)


def test_random_sampling_reads_the_drawn_frames(cityscapes_root):
    first = dataset(cityscapes_root, 3, memory_sampling="random", sequence_range=9, memory_seed=5)
    again = dataset(cityscapes_root, 3, memory_sampling="random", sequence_range=9, memory_seed=5)
    (offsets,) = random_offsets(9, 3, seed=5, split="val", num_items=1)
    assert frame_numbers(first[0]) == frame_numbers(again[0]) == [19 + o for o in offsets] + [19]


def test_synthetic_and_labelled_memory_limits(cityscapes_root):
    with pytest.raises(ConfigError, match="synthetic clips only have consecutive"):
        build_dataset(load_config(None, ["data.memory_stride=2"]).data, "train", 2, train=False)
    with pytest.raises(ConfigError, match="memory_source=labelled is for label-only"):
        dataset(cityscapes_root, 2, memory_source="labelled")
    assert temporal_consistency_problem(DataConfig()) is None
    assert temporal_consistency_problem(DataConfig(memory_stride=3)) is None
    assert "not evenly spaced" in temporal_consistency_problem(DataConfig(memory_offsets=[-5, -1]))
    assert "per image" in temporal_consistency_problem(DataConfig(memory_sampling="random", sequence_range=6))
