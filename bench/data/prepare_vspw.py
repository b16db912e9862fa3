"""Check a downloaded VSPW_480p tree before anyone trains on it (``bench prepare-vspw --root VSPW_480p``).

    report = check_vspw("data/VSPW_480p")                 # every split file present; decode=True opens every file
    print("\\n".join(report.lines()))                     # counts per split, then each problem with its path
    report.ok                                             # False when a file is missing, empty or unreadable

Per split: videos listed and found, frames (images) and masks; problems named by path: a missing image or mask,
a 0-byte file (both occur in the 480p release), a file that does not decode (truncated JPEG or PNG), a mask
holding a value outside 0..124 and 255, and a ``label_num_dic_final.json`` whose classes differ from the ones
the suite uses (``bench.data.classes.VSPW_CLASSES``). The counts are compared with the paper's (Miao et al.,
CVPR 2021: 3,536 videos and 251,633 frames in all; 2,806 training and 343 validation videos); the 480p
release is known to hold fewer frames (its download repository, issue 4), so a frame count below the paper's is
reported, not treated as an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.classes import VSPW_CLASSES
from bench.data.errors import DatasetError
from bench.data.vspw import index_video, read_split, vspw_lut

PAPER_VIDEOS = {"train": 2806, "val": 343}
PAPER_TOTAL_VIDEOS, PAPER_TOTAL_FRAMES = 3536, 251633
SPLITS = ("train", "val", "test")


@dataclass
class SplitReport:
    """Counts and problems of one split."""

    split: str
    videos_listed: int = 0
    videos_found: int = 0
    frames: int = 0
    masks: int = 0
    problems: list[str] = field(default_factory=list)  # "<path>: <what is wrong>"


@dataclass
class VspwReport:
    """The check of a whole tree: one ``SplitReport`` per split file, and tree-level problems."""

    root: Path
    splits: dict[str, SplitReport] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not any(s.problems for s in self.splits.values())

    def lines(self) -> list[str]:
        """Human-readable report: one line per split, the totals against the paper's, then every problem."""
        out = [f"VSPW tree {self.root}"]
        for s in self.splits.values():
            expected = f" (paper: {PAPER_VIDEOS[s.split]})" if s.split in PAPER_VIDEOS else ""
            out.append(
                f"  {s.split}: {s.videos_found}/{s.videos_listed} videos{expected}, {s.frames} frames, "
                f"{s.masks} masks, {len(s.problems)} problems"
            )
        videos = sum(s.videos_found for s in self.splits.values())
        frames = sum(s.frames for s in self.splits.values())
        out.append(
            f"  all splits: {videos} videos (paper: {PAPER_TOTAL_VIDEOS}), {frames} frames "
            f"(paper: {PAPER_TOTAL_FRAMES}; the 480p release lacks some)"
        )
        problems = self.problems + [p for s in self.splits.values() for p in s.problems]
        out += [f"  problem: {p}" for p in problems]
        advice = "re-download the videos named above, or train with data.missing_files=skip (missing and 0-byte only)"
        out.append("OK" if self.ok else f"{len(problems)} problems: {advice}")
        return out


def decode_problem(path: Path, is_mask: bool, lut: np.ndarray) -> str | None:
    """Why ``path`` cannot be used although it is there (does not decode; a mask value outside the classes)."""
    try:
        with Image.open(path) as image:
            image.load()
            pixels = np.asarray(image) if is_mask else None
    except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for truncated or malformed files
        return f"does not decode ({err})"
    if pixels is not None:
        if pixels.ndim != 2:
            return f"mask has shape {pixels.shape}; expected a single-channel index PNG"
        bad = np.unique(pixels[lut[pixels] < 0])
        if bad.size:
            return f"mask holds values {bad[:10].tolist()} outside 0..124 and 255"
    return None


def check_split(root: Path, split: str, decode: bool, tick: Callable[[], None] = lambda: None) -> SplitReport:
    """The ``SplitReport`` of ``{root}/{split}.txt`` (see the module docstring)."""
    report, lut = SplitReport(split), vspw_lut()
    names = read_split(root, split)
    report.videos_listed = len(names)
    for name in names:
        skipped: list[str] = []
        video = index_video(root, name, "skip", skipped)
        report.videos_found += (root / "data" / name / "origin").is_dir()
        for path in map(Path, skipped):
            report.problems.append(f"{path}: {'0 bytes' if path.is_file() else 'missing'}")
        report.frames += len(video.images)
        report.masks += sum(m is not None for m in video.masks)
        if decode:
            for image, mask in zip(video.images, video.masks):
                for path, is_mask in ((image, False), (mask, True)):
                    why = decode_problem(path, is_mask, lut) if path is not None else None
                    if why:
                        report.problems.append(f"{path}: {why}")
        tick()
    return report


def check_class_file(root: Path) -> list[str]:
    """Problems of ``label_num_dic_final.json`` (class name -> mask value) against ``VSPW_CLASSES``; [] if absent."""
    path = root / "label_num_dic_final.json"
    if not path.is_file():
        return []
    try:
        values = {name: int(value) for name, value in json.loads(path.read_text()).items()}
    except (ValueError, AttributeError, TypeError) as err:
        return [f"{path}: not a JSON mapping of class name to mask value ({err})"]
    expected = {name: k + 1 for k, name in enumerate(VSPW_CLASSES)}
    differing = sorted(n for n in set(values) | set(expected) if n != "others" and values.get(n) != expected.get(n))
    return [f"{path}: classes differ from the suite's VSPW_CLASSES: {differing[:10]}"] if differing else []


def check_vspw(
    root: str | Path, splits: tuple[str, ...] = SPLITS, decode: bool = True, tick: Callable[[], None] = lambda: None
) -> VspwReport:
    """Check the split files ``splits`` that exist under ``root`` (at least one must); ``tick`` runs per video."""
    root = Path(root)
    present = [s for s in splits if (root / f"{s}.txt").is_file()]
    if not present:
        read_split(root, splits[0])  # the one-line layout error (root missing, or no split file)
        raise DatasetError(f"no split file of {list(splits)} under {root}")
    report = VspwReport(root, problems=check_class_file(root))
    for split in present:
        report.splits[split] = check_split(root, split, decode, tick)
    return report
