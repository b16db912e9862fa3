"""VSPW (Miao et al., "VSPW: A Large-scale Dataset for Video Scene Parsing in the Wild", CVPR 2021), 480p release.

Layout under ``data.root`` (the ``VSPW_480p`` folder of the release)::

    {root}/{train,val,test}.txt              one video id per line, e.g. 1001_5z_lrHGtC1Q
    {root}/data/{video}/origin/{frame}.jpg   every frame of the video (15 fps), e.g. 00000001.jpg
    {root}/data/{video}/mask/{frame}.png     its index mask: 0 "others", 1..124 the classes, 255 void (train, val)

Labels follow the standard mapping (the VSPW download README; mmseg's ``reduce_zero_label``; ``vspw_lut``):
mask value 0 -> 255 (ignored), x -> x - 1 (classes 0..123), 255 -> 255; values 125..254 are errors. Frames of a
video are its file names in sorted order, as the official scripts list them; memory offsets count positions in
that list (``bench.data.memory``; ``data.memory_preset=cffm`` gives CFFM's t-9, t-6, t-3 and its first-frames
table).

The 480p release lacks some frames and holds 0-byte images. A missing or 0-byte image or mask is a one-line
``DatasetError`` naming the file; with ``data.missing_files=skip`` that frame is dropped from its video instead
(the positions of later frames shift by one) and listed in ``dataset.skipped_files``. A file that is there but
does not decode fails when it is read; ``bench prepare-vspw`` (``bench.data.prepare_vspw``) finds all three kinds
before anyone trains.

Training options of the CFFM line: ``data.reverse_prob`` reads a clip backwards in time (memory from later
frames, mirrored rule at the end of a video) and ``data.train_sampling=video`` makes one item per video, a
labelled frame drawn at random each time (CFFM's ``prepare_train_img2``); randomness comes from torch's global
generator, seeded per DataLoader worker like the augmentation.

Usage::

    dataset = VspwClips("/data/VSPW_480p", "val", memory_length=3, transform=ClipTransform(train=False),
                        data_cfg=cfg.data)
    videos = VspwVideos("/data/VSPW_480p", "val")          # whole videos (bench.data.videos), raw masks included
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bench.config import DataConfig
from bench.constants import IGNORE_INDEX
from bench.data.classes import VSPW_CLASSES
from bench.data.clips import FileClips
from bench.data.errors import DatasetError
from bench.data.io import layout_error, map_label, read_raw_label, read_rgb
from bench.data.memory import memory_positions
from bench.data.transforms import ClipTransform
from bench.data.videos import VideoFrame, VideoSet

log = logging.getLogger("bench.data.vspw")

NUM_CLASSES = len(VSPW_CLASSES)  # 124
MASK_VALUES = "0 (others), 1..124 (the classes) and 255 (void) in a VSPW mask"
LAYOUT = """\
  {root}/train.txt, val.txt, test.txt        one video id per line (e.g. 1001_5z_lrHGtC1Q)
  {root}/data/{video}/origin/{frame}.jpg     every frame, e.g. 00000001.jpg
  {root}/data/{video}/mask/{frame}.png       its mask: 0 others, 1..124 classes, 255 void (train and val)
Download the 480p release (VSPW_480p) as https://github.com/sssdddwww2/vspw_dataset_download describes and set
data.root to the VSPW_480p folder; check it with: bench prepare-vspw --root VSPW_480p"""


def vspw_lut() -> np.ndarray:
    """256-entry table mask value -> class id: 0 and 255 -> 255 (ignored), 1..124 -> 0..123, others -1 (invalid)."""
    lut = np.full(256, -1, dtype=np.int64)
    lut[1 : NUM_CLASSES + 1] = np.arange(NUM_CLASSES)
    lut[0] = lut[255] = IGNORE_INDEX
    return lut


@dataclass
class VspwVideo:
    """One video: frame names in sorted order, their image paths and mask paths (None: no mask, the test split)."""

    name: str
    frames: list[str] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    masks: list[Path | None] = field(default_factory=list)

    @property
    def labelled(self) -> bool:
        return bool(self.masks) and all(m is not None for m in self.masks)


def read_split(root: Path, split: str) -> list[str]:
    """Video ids of ``{root}/{split}.txt`` in file order (blank lines and names starting with '.' left out)."""
    if not str(root) or not root.is_dir():
        raise layout_error("VSPW root folder not found (set data.root to the VSPW_480p folder)", root, LAYOUT)
    split_file = root / f"{split}.txt"
    if not split_file.is_file():
        raise layout_error(f"VSPW split file not found (data split {split!r})", split_file, LAYOUT)
    videos = [line.strip() for line in split_file.read_text().splitlines()]
    videos = [v for v in videos if v and not v.startswith(".")]
    if not videos:
        raise layout_error("VSPW split file lists no video", split_file, LAYOUT)
    return videos


def _problem(path: Path) -> str | None:
    """Why ``path`` cannot be used (missing, 0 bytes), or None."""
    if not path.is_file():
        return "missing"
    return "0 bytes" if path.stat().st_size == 0 else None


def index_video(root: Path, name: str, missing: str, skipped: list[str]) -> VspwVideo:
    """The frames of video ``name``: the union of image and mask names (masks only if the video has a mask
    folder). A missing or 0-byte file raises, or with ``missing="skip"`` drops its frame and is added to
    ``skipped``."""
    folder = root / "data" / name
    origin, mask_dir = folder / "origin", folder / "mask"
    if not origin.is_dir():
        if missing == "skip":
            skipped.append(str(origin))
            return VspwVideo(name)
        raise layout_error(f"VSPW video folder not found (video {name} of the split file)", origin, LAYOUT)
    stems = {p.stem for p in origin.glob("*.jpg") if not p.name.startswith(".")}
    labelled = mask_dir.is_dir()
    if labelled:
        stems |= {p.stem for p in mask_dir.glob("*.png") if not p.name.startswith(".")}
    video = VspwVideo(name)
    for stem in sorted(stems):
        image, mask = origin / f"{stem}.jpg", (mask_dir / f"{stem}.png" if labelled else None)
        bad = [(p, why) for p in (image, mask) if p is not None and (why := _problem(p))]
        if bad and missing != "skip":
            path, why = bad[0]
            raise DatasetError(
                f"VSPW file {why}: {path} (the 480p release lacks some frames and has 0-byte images; "
                f"re-download that video, or set data.missing_files=skip to leave the frame out and count it)"
            )
        if bad:
            skipped.extend(str(p) for p, _ in bad)
            continue
        video.frames.append(stem)
        video.images.append(image)
        video.masks.append(mask)
    return video


def index_split(root: str | Path, split: str, missing: str = "error") -> tuple[list[VspwVideo], list[str]]:
    """(videos of ``split`` in split-file order, skipped files); see :func:`index_video`."""
    root, skipped = Path(root), []
    videos = [index_video(root, name, missing, skipped) for name in read_split(root, split)]
    videos = [v for v in videos if v.frames]
    if not videos:
        raise DatasetError(f"VSPW split {split!r} under {root}: no video has a usable frame")
    if skipped:
        log.warning("VSPW %s: skipped %d missing or 0-byte files (data.missing_files=skip)", split, len(skipped))
    return videos, skipped


def mirrored(position: int, length: int, offsets: tuple[int, ...], policy: str, preset: str) -> list[int] | None:
    """Memory positions of ``position`` when the video is read backwards (oldest first in reading order)."""
    reversed_positions = memory_positions(length - 1 - position, offsets, policy, preset=preset)
    return None if reversed_positions is None else [length - 1 - p for p in reversed_positions]


class VspwClips(FileClips):
    """VSPW labelled frames with their memory frames; samples follow docs/architecture.md ("Clips").

    An item holds ``frames`` (memory read forwards, None when the first-frames rule skips it) and ``backward``
    (read backwards; only with ``data.reverse_prob`` > 0 in training, None when skipped).
    """

    num_classes = NUM_CLASSES
    class_names = VSPW_CLASSES
    label_values = MASK_VALUES

    def __init__(
        self,
        root: str | Path,
        split: str,
        memory_length: int,
        transform: ClipTransform,
        data_cfg: DataConfig | None = None,
    ) -> None:
        data_cfg = data_cfg if data_cfg is not None else DataConfig(dataset="vspw")
        self.skipped_files: list[str] = []
        self.reverse_prob = float(data_cfg.reverse_prob) if transform.train else 0.0
        self.by_video = data_cfg.train_sampling == "video" and transform.train
        self.videos: list[VspwVideo] = []
        super().__init__(root, split, memory_length, transform, data_cfg)
        self.video_items = self._usable_by_video()

    def _usable_by_video(self) -> list[tuple[list[int], list[int]]]:
        """Per video with an item: (items to draw forwards, items to draw backwards) for train_sampling=video. As
        CFFM's sampler, a draw is among the frames whose memory lies inside the video in that direction; a video
        without any such frame draws among all its usable items."""
        usable: list[tuple[list[int], list[int]]] = [([], []) for _ in self.videos]
        complete: list[tuple[list[int], list[int]]] = [([], []) for _ in self.videos]
        for i, item in enumerate(self.items):
            for direction, key in enumerate(("frames", "backward")):
                if item[key] is not None:
                    usable[item["video"]][direction].append(i)
                    if item[f"{key}_complete"]:
                        complete[item["video"]][direction].append(i)
        drawn = [tuple(c or u for c, u in zip(full, all_)) for full, all_ in zip(complete, usable)]
        return [pair for pair in drawn if pair[0] or pair[1]]

    def _index(self) -> list[dict]:
        self.videos, self.skipped_files = index_split(self.root, self.split, self.data_cfg.missing_files)
        unlabelled = next((v for v in self.videos if not v.labelled), None)
        if unlabelled is not None:
            raise layout_error(
                f"VSPW video {unlabelled.name} of split {self.split!r} has no mask folder (the test masks are not "
                "released: train and evaluate on train / val)",
                self.root / "data" / unlabelled.name / "mask",
                LAYOUT,
            )
        lut, items = vspw_lut(), []
        offsets_of = iter(self.offsets(sum(len(v.frames) for v in self.videos)))  # one tuple per frame, in order
        for number, video in enumerate(self.videos):
            for position in range(len(video.frames)):
                offsets = next(offsets_of)
                forward, backward = self._memory(video, position, offsets)
                name = f"{video.name}/{video.frames[position]}"
                if forward is None and backward is None:
                    self.skipped.append(name)
                    continue
                item = {"name": name, "label": video.masks[position], "lut": lut, "video": number}
                items.append(
                    {**item, "frames": forward, "backward": backward, **self._complete(video, position, offsets)}
                )
        if self.skipped:
            log.info("VSPW %s: %d labelled frames skipped (data.first_frames=skip)", self.split, len(self.skipped))
        if not items:
            raise DatasetError(f"VSPW split {self.split!r}: every frame was skipped; use data.first_frames=repeat")
        return items

    def _memory(
        self, video: VspwVideo, position: int, offsets: tuple[int, ...]
    ) -> tuple[list[Path] | None, list[Path] | None]:
        """Clip paths (memory oldest first in reading order, current frame last) read forwards and backwards."""
        policy, preset, n = self.data_cfg.first_frames, self.data_cfg.memory_preset, len(video.frames)
        forward = memory_positions(position, offsets, policy, preset=preset)
        backward = mirrored(position, n, offsets, policy, preset) if self.reverse_prob > 0 else None
        return tuple(
            None if p is None else [video.images[i] for i in p] + [video.images[position]] for p in (forward, backward)
        )

    def _complete(self, video: VspwVideo, position: int, offsets: tuple[int, ...]) -> dict[str, bool]:
        """Whether the memory of ``position`` lies inside the video forwards and backwards (no first-frames rule)."""
        last = len(video.frames) - 1
        return {
            "frames_complete": all(position + o >= 0 for o in offsets),
            "backward_complete": all(position - o <= last for o in offsets),
        }

    def __len__(self) -> int:
        return len(self.video_items) if self.by_video else len(self.items)

    def __getitem__(self, index: int) -> dict:
        backward = float(torch.rand(())) < self.reverse_prob if self.reverse_prob > 0 else False
        if self.by_video:  # CFFM: the direction first, then a frame usable in that direction
            usable = self.video_items[index]
            candidates = usable[1] if (backward and usable[1]) or not usable[0] else usable[0]
            index = candidates[int(torch.randint(len(candidates), ()).item())]
        item = self.items[index]
        use_backward = item["backward"] is not None and (backward or item["frames"] is None)
        return self._read({**item, "frames": item["backward"] if use_backward else item["frames"]})


class VspwVideos(VideoSet):
    """The videos of a VSPW split for whole-video evaluation and scoring (``bench.data.videos``); test videos have
    no masks (their frames come with ``label=None``)."""

    num_classes = NUM_CLASSES
    class_names = VSPW_CLASSES

    def __init__(self, root: str | Path, split: str, missing: str = "error") -> None:
        self.root, self.split = Path(root), split
        videos, self.skipped_files = index_split(self.root, split, missing)
        self.videos = {video.name: video for video in videos}
        self.names = list(self.videos)
        self.gt_lut = vspw_lut()

    def frame_names(self, video: str) -> list[str]:
        return list(self.videos[video].frames)

    def frames(self, video: str, images: bool = True) -> Iterator[VideoFrame]:
        entry = self.videos[video]
        for name, image, mask in zip(entry.frames, entry.images, entry.masks):
            raw = None if mask is None else read_raw_label(mask).astype(np.int64)
            label = None if raw is None else map_label(raw, self.gt_lut, NUM_CLASSES, mask, MASK_VALUES)
            yield VideoFrame(name, read_rgb(image) if images else None, label, raw)


def build_vspw(data_cfg: DataConfig, split: str, memory_length: int, train: bool) -> VspwClips:
    """VSPW clips of ``split`` (a file ``{split}.txt``) under ``data_cfg.root``."""
    return VspwClips(data_cfg.root, split, memory_length, ClipTransform.from_config(data_cfg, train), data_cfg)
