"""The neutral scorer (bench.evaluation.scoring) on a tiny VSPW tree: the same numbers as a written-out
official scripts (VC_perclip.py of VSPW_baseline and of CFFM, VSPW's Evaluator), palette and index PNGs alike,
and a one-line error for every kind of bad prediction folder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from helpers.vspw_tree import H, W, frame_name, write_mask, write_vspw_tree
from PIL import Image

from bench.data import DatasetError
from bench.data.catalog import default_palette
from bench.data.submission import read_prediction, submission_file, write_prediction
from bench.data.vspw import VspwVideos, vspw_lut
from bench.evaluation.scoring import score_predictions

VIDEOS = {"3_ccc": 11, "5_eee": 20}
PALETTE = default_palette(124)


def official_vc(masks: list[np.ndarray], preds: list[np.ndarray], clip_num: int) -> list[float]:
    """``get_common`` of VC_perclip.py, written out: window i compares frames i+1..i+C-1 with frame i."""
    accs = []
    for i in range(len(masks) - clip_num):
        global_common, pred_common = np.ones(masks[0].shape, bool), np.ones(masks[0].shape, bool)
        for j in range(1, clip_num):
            global_common &= masks[i] == masks[i + j]
            pred_common &= preds[i] == preds[i + j]
        with np.errstate(invalid="ignore"):
            accs.append((pred_common & global_common).sum() / global_common.sum())
    return accs


def evaluator_miou(matrix: np.ndarray) -> float:
    """VSPW's ``Evaluator.Mean_Intersection_over_Union``: classes present in the ground truth."""
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.diag(matrix) / (matrix.sum(1) + matrix.sum(0) - np.diag(matrix))
    present = matrix.sum(1) > 0
    return float(np.nansum(iou * present) / present.sum())


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A val split of two videos (one alternating 'others' and void in a column) and noisy predictions."""
    root = write_vspw_tree(tmp_path, {"val": VIDEOS})
    rng = np.random.default_rng(0)
    for k in range(VIDEOS["5_eee"]):
        mask = np.zeros((H, W), np.uint8)
        mask[:, 4:], mask[:, 0] = 7, (0 if k % 2 else 255)  # column 0: others / void, one value once mapped
        mask[:4, 8:] = 9 if k < 12 else 10
        write_mask(root / "data" / "5_eee" / "mask" / f"{frame_name(k)}.png", mask)
    out = tmp_path / "predictions"
    lut = vspw_lut()
    for video, frames in VIDEOS.items():
        for k in range(frames):
            mask = np.asarray(Image.open(root / "data" / video / "mask" / f"{frame_name(k)}.png"))
            pred = np.where(lut[mask] == 255, 3, lut[mask])
            flicker = rng.random((H, W)) < 0.08
            pred[flicker] = rng.integers(0, 124, flicker.sum())
            write_prediction(submission_file(out, video, frame_name(k)), pred, PALETTE)
    return root, out


def test_scores_equal_the_official_scripts_written_out(tree):
    root, out = tree
    result = score_predictions(out, VspwVideos(root, "val"), convention="present_in_gt")
    lut = vspw_lut()
    windows = {8: [], 16: []}
    cffm = {8: [], 16: []}
    matrix = np.zeros((124, 124), np.int64)
    for video, frames in VIDEOS.items():
        masks = [np.asarray(Image.open(root / "data" / video / "mask" / f"{frame_name(k)}.png")) for k in range(frames)]
        preds = [
            np.asarray(Image.open(out / "result_submission" / video / f"{frame_name(k)}.png")) for k in range(frames)
        ]
        for c in (8, 16):
            if frames > c:
                windows[c] += official_vc(masks, preds, c)  # VSPW_baseline: raw masks, N <= C skipped
            if frames > 16:
                cffm[c] += official_vc([lut[m] for m in masks], preds, c)  # CFFM: mapped masks, N <= 16 skipped
        for mask, pred in zip(masks, preds):
            keep = lut[mask] != 255
            matrix += np.bincount(lut[mask][keep] * 124 + pred[keep], minlength=124 * 124).reshape(124, 124)
    for c in (8, 16):
        assert result["mvc"]["official"][f"mvc_{c}"] == pytest.approx(np.nanmean(windows[c]), abs=1e-12)
        assert result["mvc"]["cffm"][f"mvc_{c}"] == pytest.approx(np.nanmean(cffm[c]), abs=1e-12)
    assert (
        result["mvc"]["cffm"]["counts"]["8"]["videos"] == 1 and result["mvc"]["official"]["counts"]["8"]["videos"] == 2
    )
    assert result["mvc"]["remapped_gt"]["mvc_8"] != result["mvc"]["official"]["mvc_8"]  # column 0 alternates 0 / 255
    assert result["miou"] == pytest.approx(evaluator_miou(matrix), abs=1e-12)
    assert result["miou_convention"] == "present_in_gt" and result["miou_nonzero_union"] < result["miou"]
    assert result["per_video"]["names"] == list(VIDEOS) and result["per_video"]["frames"] == [11, 20]
    assert np.array(result["per_video"]["intersection"]).sum(0).tolist() == np.diag(matrix).tolist()
    total, count = np.array(result["per_video"]["vc"]["official"]["8"]).sum(0)
    assert total / count == pytest.approx(result["mvc"]["official"]["mvc_8"])
    assert (result["num_videos"], result["num_frames"], result["skipped_videos"]) == (2, 31, [])


def test_index_pngs_and_mask_ids_read_like_palette_pngs(tree, tmp_path):
    root, out = tree
    videos = VspwVideos(root, "val")
    reference = score_predictions(out, videos, convention="nonzero_union")
    index_dir = tmp_path / "index" / "nested"  # no result_submission level, raw mask ids as greyscale PNGs
    for video, frames in VIDEOS.items():
        for k in range(frames):
            ids = read_prediction(out / "result_submission" / video / f"{frame_name(k)}.png", 124)
            (index_dir / video).mkdir(parents=True, exist_ok=True)
            Image.fromarray((ids + 1).astype(np.uint8), mode="L").save(index_dir / video / f"{frame_name(k)}.png")
    again = score_predictions(index_dir, videos, convention="nonzero_union", ids="mask")
    for key in ("miou", "miou_present_in_gt", "mvc"):
        assert again[key] == reference[key]
    with pytest.raises(DatasetError, match=r"holds values \[124\] that are not class ids 0..123"):
        score_predictions(index_dir, videos, convention="nonzero_union")


def test_bad_prediction_folders_get_one_line_errors(tree, tmp_path):
    root, out = tree
    videos = VspwVideos(root, "val")
    sub = out / "result_submission"
    with pytest.raises(DatasetError, match="prediction folder not found"):
        score_predictions(tmp_path / "nowhere", videos, convention="nonzero_union")
    (sub / "5_eee" / f"{frame_name(4)}.png").unlink()
    with pytest.raises(DatasetError, match=rf"prediction not found: .*5_eee/{frame_name(4)}.png$"):
        score_predictions(out, videos, convention="nonzero_union", missing="skip")  # partial: always an error
    for path in (sub / "5_eee").iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match="missing=skip to leave such videos out"):
        score_predictions(out, videos, convention="nonzero_union")
    skipping = score_predictions(out, videos, convention="nonzero_union", missing="skip")
    assert skipping["skipped_videos"] == ["5_eee"] and skipping["num_videos"] == 1
    rgb = sub / "3_ccc" / f"{frame_name(0)}.png"
    Image.new("RGB", (W, H)).save(rgb)
    with pytest.raises(DatasetError, match="is a RGB colour image; save class ids as a palette or index PNG"):
        score_predictions(out, videos, convention="nonzero_union", missing="skip")
    write_prediction(rgb, np.zeros((H + 1, W), np.int64), PALETTE)
    with pytest.raises(DatasetError, match="is 9x12 but its ground truth is 8x12"):
        score_predictions(out, videos, convention="nonzero_union", missing="skip")
    with pytest.raises(DatasetError, match="unknown prediction id space 'raw'"):
        score_predictions(out, videos, convention="nonzero_union", ids="raw")
    assert not math.isnan(skipping["miou"])
