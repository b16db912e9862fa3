"""Evaluation outputs: mAcc and the confusion matrix in the summary, prediction PNGs (``--save-preds``)."""

from __future__ import annotations

import pytest
import torch

from bench.metrics import confusion_matrix, segmentation_summary


def test_summary_has_macc_and_the_confusion_counts():
    label = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 0, 1]])
    summary = segmentation_summary(confusion_matrix(pred, label, 4), ["a", "b", "c", "d"])
    assert summary["confusion_matrix"] == [[1, 1, 0, 0], [0, 3, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    # per present class: a 1/2, b 3/3, c 1/2; d is absent from the ground truth and skipped
    assert summary["macc"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert summary["pixel_acc"] == pytest.approx(5 / 7)


def test_macc_is_none_without_evaluated_pixels():
    summary = segmentation_summary(torch.zeros(2, 2, dtype=torch.int64), ["a", "b"])
    assert summary["macc"] is None and summary["confusion_matrix"] == [[0, 0], [0, 0]]


def test_palettes_are_fixed_per_dataset_and_cityscapes_is_official():
    from bench.config import load_config
    from bench.data.catalog import dataset_info

    city = dataset_info(load_config(None, ["data.dataset=cityscapes"]).data)
    assert city.palette[0] == (128, 64, 128) and city.palette[13] == (0, 0, 142)  # road, car
    assert city.label_ids[0] == 7 and city.label_ids[18] == 33  # road, bicycle (cityscapesscripts labels.py)
    synthetic = load_config(None, ["data.synthetic.num_classes=4"]).data
    assert (
        dataset_info(synthetic).palette == dataset_info(synthetic).palette
        and len(set(dataset_info(synthetic).palette)) == 4
    )
    assert dataset_info(synthetic).label_ids is None


def test_cityscapes_predictions_are_coloured_and_mapped_to_label_ids(tmp_path):
    import numpy as np
    from PIL import Image

    from bench.config import load_config
    from bench.data.catalog import dataset_info
    from bench.evaluation.predictions import PredictionWriter

    writer = PredictionWriter(tmp_path, dataset_info(load_config(None, ["data.dataset=cityscapes"]).data))
    pred = torch.tensor([[[0, 13], [18, 2]]])
    writer.write(["frankfurt/frankfurt_000000_000294"], pred)
    colour = np.array(Image.open(tmp_path / "frankfurt" / "frankfurt_000000_000294_color.png"))
    ids = np.array(Image.open(tmp_path / "frankfurt" / "frankfurt_000000_000294_labelIds.png"))
    assert colour[0, 0].tolist() == [128, 64, 128] and colour[0, 1].tolist() == [0, 0, 142]
    assert ids.tolist() == [[7, 26], [33, 11]] and writer.written == 1


def test_bench_eval_takes_a_run_folder_and_saves_predictions(tmp_path, tiny_cfg, capsys):
    import json

    import numpy as np
    from PIL import Image

    from bench.cli import main
    from bench.config import load_config
    from bench.data.catalog import dataset_info
    from bench.run import rundir
    from bench.run.execute import execute

    run_dir = tmp_path / "run"
    execute(tiny_cfg(run_dir, "train.iters=1", "eval.max_images=2"))
    # options and overrides in either order, as for bench sweep
    assert main(["eval", str(run_dir), "--save-preds", str(tmp_path / "preds"), "eval.max_images=3"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["num_images"] == 3 and 0 <= shown["macc"] <= 1 and "confusion_matrix" not in shown
    stored = json.loads((run_dir / rundir.EVAL).read_text())["metrics"]
    matrix = torch.tensor(stored["confusion_matrix"])
    classes = len(stored["per_class_iou"])
    assert matrix.shape == (classes, classes) and int(matrix.sum()) == sum(
        map(sum, stored["per_image"]["label_pixels"])
    )
    colours = sorted((tmp_path / "preds").rglob("*_color.png"))
    indices = sorted((tmp_path / "preds").rglob("*_index.png"))
    assert len(colours) == len(indices) == 3 and len(list((tmp_path / "preds").rglob("*.png"))) == 6
    palette = np.array(dataset_info(load_config(run_dir / rundir.CONFIG).data).palette, dtype=np.uint8)
    for colour, index in zip(colours, indices):
        classes_png = np.array(Image.open(index))
        assert classes_png.ndim == 2 and classes_png.max() < len(palette)  # class indices, not colours
        assert (palette[classes_png] == np.array(Image.open(colour))).all()
    assert main(["eval", str(tmp_path / "nowhere")]) == 2  # neither a run folder nor a config file
