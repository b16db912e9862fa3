"""mVC_C (bench.metrics.video_consistency): the hand-checked examples, a video shorter than C, each variant's
difference, and agreement with a direct transcription of the official definition on random videos."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.metrics import VC_VARIANTS, VideoConsistency, mvc

# VSPW's standard mapping: 0 -> 255, x -> x - 1, 255 -> 255
VSPW_LUT = np.array([255] + list(range(254)) + [255])


def frames(*rows: list[int]) -> np.ndarray:
    """Frames of one row each: ``frames([1, 1, 2], [1, 2, 2])`` -> (2, 1, 3)."""
    return np.array(rows)[:, None, :]


GT = frames([1, 1, 2], [1, 2, 2], [1, 2, 2], [1, 2, 2])
PRED = frames([1, 1, 2], [1, 1, 2], [1, 2, 1], [0, 2, 2])


def reference_mvc(videos, window, remap=False, skip_at_most=None, last_window=False, exclude_void=False):
    """The official definition written out frame by frame (VC_perclip.py's loops), with the variants' switches."""
    scores = []
    for gts, preds in videos:
        n = len(gts)
        if n <= (window if skip_at_most is None else skip_at_most):
            continue
        gts = [VSPW_LUT[g] if remap else g for g in gts]
        for s in range(n - window + (1 if last_window else 0)):
            g_common = np.ones(gts[0].shape, dtype=bool)
            p_common = np.ones(gts[0].shape, dtype=bool)
            for j in range(1, window):
                g_common &= gts[s] == gts[s + j]
                p_common &= preds[s] == preds[s + j]
            if exclude_void:
                g_common &= VSPW_LUT[gts[s]] != 255 if not remap else gts[s] != 255
            scores.append((p_common & g_common).sum() / g_common.sum() if g_common.sum() else math.nan)
    scores = np.array(scores, dtype=float)
    return float(np.nanmean(scores)) if np.isfinite(scores).any() else None


def test_hand_checked_example_official_is_two_thirds_and_with_the_last_window_five_ninths():
    # window 0: G = {0, 2}, P = all -> 1; window 1: G = all, P = {0} -> 1/3; (window 2: G = all, P = {1} -> 1/3)
    assert mvc([(GT, PRED)], window=2) == pytest.approx(2 / 3)
    assert mvc([(GT, PRED)], window=2, variant="last_window") == pytest.approx(5 / 9)


def test_void_that_stays_void_counts_as_constant_unless_excluded():
    gt = frames([255, 255, 5], [255, 255, 5], [255, 255, 5])
    pred = frames([7, 8, 5], [7, 9, 5], [7, 9, 5])
    assert mvc([(gt, pred)], window=2) == pytest.approx(2 / 3)  # one window: G = all 3, P = {0, 2}
    assert mvc([(gt, pred)], window=2, variant="void_excluded", gt_lut=VSPW_LUT) == pytest.approx(1.0)  # G = {2}


def test_a_video_of_at_most_c_frames_is_skipped_and_alone_gives_no_value():
    short = (GT[:2], PRED[:2])  # N = 2 = C: skipped (official: N <= C)
    assert mvc([short], window=2) is None
    assert mvc([short, (GT, PRED)], window=2) == pytest.approx(2 / 3)
    vc = VideoConsistency((2,), ("official",))
    for name, (g, p) in {"short": short, "long": (GT, PRED)}.items():
        vc.begin_video(name)
        for a, b in zip(g, p):
            vc.add_frame(a, b)
        vc.end_video()
    assert vc.summary()["official"]["counts"]["2"] == {"videos": 1, "skipped": 1, "windows": 2, "nan_windows": 0}
    assert vc.per_video(2) == [("short", 0.0, 0), ("long", pytest.approx(4 / 3), 2)]


def test_windows_are_pooled_over_videos_so_long_videos_weigh_more():
    flicker = (frames([1], [1], [1], [1], [1]), frames([1], [2], [1], [2], [1]))  # 3 windows of C = 2, each 0
    steady = (frames([1], [1], [1]), frames([1], [1], [1]))  # 1 window, 1
    assert mvc([flicker, steady], window=2) == pytest.approx(1 / 4)  # not the mean of per-video means (1/2)


def test_remapping_merges_others_and_void_and_changes_the_number():
    gt = frames([0, 3], [255, 3], [0, 3])  # pixel 0 alternates "others" (0) and void (255): both void once mapped
    pred = frames([4, 3], [4, 3], [4, 3])
    assert mvc([(gt, pred)], window=2) == pytest.approx(1.0)  # raw: G = {1}
    assert mvc([(gt, pred)], window=2, variant="remapped_gt", gt_lut=VSPW_LUT) == pytest.approx(1.0)  # G = all
    pred = frames([4, 3], [5, 3], [4, 3])
    assert mvc([(gt, pred)], window=2) == pytest.approx(1.0)
    assert mvc([(gt, pred)], window=2, variant="remapped_gt", gt_lut=VSPW_LUT) == pytest.approx(0.5)


def test_the_cffm_copy_skips_videos_of_at_most_16_frames_for_both_windows():
    rng = np.random.default_rng(0)
    gt, pred = rng.integers(1, 3, (12, 2, 2)), rng.integers(1, 3, (12, 2, 2))
    gt[:, 0, 0], pred[:, 0, 0] = 1, 1  # one always-constant pixel: no NaN window
    assert mvc([(gt, pred)], window=8) is not None
    assert mvc([(gt, pred)], window=8, variant="cffm", gt_lut=VSPW_LUT) is None


def test_a_window_without_constant_ground_truth_is_nan_and_dropped():
    gt, pred = frames([1], [2], [1], [1], [1]), frames([1], [1], [1], [1], [1])
    vc = VideoConsistency((2,), ("official",))
    vc.begin_video("v")
    for g, p in zip(gt, pred):
        vc.add_frame(g, p)
    video = vc.end_video()
    assert video.nan_windows[("official", 2)] == 2 and video.scores[("official", 2)] == [1.0]
    assert vc.value(2) == 1.0


@pytest.mark.parametrize("variant", list(VC_VARIANTS))
def test_streaming_equals_the_written_out_definition_on_random_videos(variant):
    rng = np.random.default_rng(1)
    videos = []
    for n in (3, 8, 9, 17, 20):
        gt = rng.choice([0, 1, 2, 255], size=(n, 5, 6), p=[0.1, 0.6, 0.2, 0.1])
        gt[rng.random(n) < 0.5] = gt[0]  # long constant stretches
        gt[:, :, :2] = gt[0, :, :2]  # and constant pixels, so windows of 8 and 16 have non-empty G
        pred = np.where(rng.random((n, 5, 6)) < 0.9, np.maximum(gt, 1) - 1, rng.integers(0, 3, (n, 5, 6)))
        videos.append((gt, pred))
    v = VC_VARIANTS[variant]
    vc = VideoConsistency((2, 8, 16), (variant,), gt_lut=VSPW_LUT)
    for index, (gt, pred) in enumerate(videos):
        vc.begin_video(str(index))
        for g, p in zip(gt, pred):
            vc.add_frame(g, p)
        vc.end_video()
    for window in (2, 8, 16):
        assert vc.value(window, variant) is not None
        expected = reference_mvc(videos, window, v.remap_gt, v.skip_at_most, v.last_window, v.exclude_void)
        if expected is None:
            assert vc.value(window, variant) is None
        else:
            assert vc.value(window, variant) == pytest.approx(expected, abs=1e-12)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unknown mVC variant 'nope'"):
        VideoConsistency((8,), ("nope",))
    with pytest.raises(ValueError, match=">= 2 frames"):
        VideoConsistency((1,))
    vc = VideoConsistency((2,))
    vc.begin_video("v")
    vc.add_frame(np.zeros((2, 2), int), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="shape"):
        vc.add_frame(np.zeros((3, 2), int), np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="differ in shape"):
        vc.add_frame(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(KeyError, match="mVC_16"):
        VideoConsistency((8,)).value(16)


def test_the_config_offers_exactly_the_metric_variants_and_conventions():
    from bench.config import EvalConfig
    from bench.metrics import MIOU_CONVENTIONS

    fields = EvalConfig.__dataclass_fields__
    assert fields["vc_variant"].metadata["choices"] == tuple(VC_VARIANTS)
    assert fields["miou_convention"].metadata["choices"] == tuple(MIOU_CONVENTIONS)
