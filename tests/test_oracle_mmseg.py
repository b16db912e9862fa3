"""mmsegmentation 1.2.2 as the oracle of checkpoint import and export: its own ResNetV1c D8 + PSPHead / FCNHead
(+ the auxiliary FCNHead), with random weights and BatchNorm statistics, saved as an mmseg checkpoint, loaded
through ``bench.weights`` into the suite's model; the logits agree within 1e-5 with ``align_corners`` both ways,
whole and sliding-window (an image smaller than the window in one dimension included), and under multi-scale +
flip test-time augmentation (mmseg's ``SegTTAModel``). The other way, a suite model exported to the mmseg layout
builds and loads strictly in mmseg and agrees too.

Skips (with the install command) without the oracle extra; fails instead under ``BENCH_ORACLE=1`` (CI).
"""

from __future__ import annotations

import pytest
import torch
from helpers.oracle import build_mmseg, randomise, require_oracle

from baselines.image_heads import fcn, pspnet
from bench.evaluation.inference import predict_logits
from bench.evaluation.tta import Protocol, augment, predict_scores, scaled_size
from bench.weights import load_weights, mmseg_checkpoint

TOLERANCE = 1e-5
CLASSES = 7
IMAGE = (45, 61)  # not a multiple of 8: the feature maps round up, as in both libraries
NORM = dict(type="BN", requires_grad=True)

# mmsegmentation configs/_base_/models/pspnet_r50-d8.py and fcn_r50-d8.py (SyncBN -> BN: one process, eval mode)
BACKBONE = dict(
    type="ResNetV1c",
    depth=50,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    dilations=(1, 1, 2, 4),
    strides=(1, 2, 1, 1),
    norm_cfg=NORM,
    norm_eval=False,
    style="pytorch",
    contract_dilation=True,
)
HEADS = {
    "pspnet": dict(type="PSPHead", in_channels=2048, in_index=3, channels=512, pool_scales=(1, 2, 3, 6)),
    "fcn": dict(type="FCNHead", in_channels=2048, in_index=3, channels=512, num_convs=2, concat_input=True),
}
AUX = dict(type="FCNHead", in_channels=1024, in_index=2, channels=256, num_convs=1, concat_input=False)
FACTORIES = {"pspnet": pspnet, "fcn": fcn}


def mmseg_config(head: str, align_corners: bool) -> dict:
    shared = dict(dropout_ratio=0.1, num_classes=CLASSES, norm_cfg=NORM, align_corners=align_corners)
    return dict(
        type="EncoderDecoder",
        backbone=BACKBONE,
        decode_head={**HEADS[head], **shared},
        auxiliary_head={**AUX, **shared},
        test_cfg=dict(mode="whole"),
    )


def mmseg_logits(net: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """mmseg's whole inference: ``encode_decode`` resizes the head's logits to ``img_shape``."""
    with torch.no_grad():
        return net.encode_decode(image, [dict(img_shape=tuple(image.shape[-2:]))])


def suite_logits(model: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(image.unsqueeze(1))["out"]


def random_mmseg(head: str, seed: int, align_corners: bool = False) -> torch.nn.Module:
    """mmseg's model with random weights and BN statistics (``oracle.randomise``)."""
    net = build_mmseg(mmseg_config(head, align_corners))
    randomise(net, seed, forward=lambda x: net.encode_decode(x, [dict(img_shape=tuple(x.shape[-2:]))]))
    return net


def image(seed: int, size: tuple[int, int] = IMAGE) -> torch.Tensor:
    """A normalised image (the models' input): (1, 3, H, W), N(0, 1)."""
    return torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """head -> (mmseg's state dict with random weights, its checkpoint file in the mmseg container)."""
    require_oracle()
    found = {}
    for seed, head in enumerate(HEADS):
        state = random_mmseg(head, seed).state_dict()
        path = tmp_path_factory.mktemp("released") / f"{head}.pth"
        torch.save({"meta": {"CLASSES": tuple(map(str, range(CLASSES)))}, "state_dict": state}, path)
        found[head] = (state, path)
    return found


@pytest.mark.parametrize("head", sorted(HEADS))
def test_an_mmseg_checkpoint_gives_mmsegs_logits(released, head):
    state, path = released[head]
    for align_corners in (False, True):
        reference = build_mmseg(mmseg_config(head, align_corners))
        reference.load_state_dict(state, strict=True)
        model = FACTORIES[head](num_classes=CLASSES, backbone="resnet50c", align_corners=align_corners)
        report = load_weights(model, path)
        assert report.layout.model == head and not report.ignored and not report.backbone_only
        expected = mmseg_logits(reference, image(1))
        assert 1.0 < expected.abs().max() < 1e3  # logits of a trained network's scale: the tolerance means something
        torch.testing.assert_close(suite_logits(model, image(1)), expected, rtol=0, atol=TOLERANCE)


def test_an_exported_suite_model_loads_strictly_in_mmseg_and_agrees(tmp_path, released):
    """PSPNet (the export's key map of FCN and TMANet is checked by round trips in tests/test_weights.py)."""
    head = "pspnet"
    model = FACTORIES[head](num_classes=CLASSES, backbone="resnet50c", align_corners=True)
    randomise(model, seed=7, forward=lambda x: model(x.unsqueeze(1)))
    container = mmseg_checkpoint(model.state_dict(), [str(i) for i in range(CLASSES)], align_corners=True)
    torch.save(container, tmp_path / "exported.pth")
    saved = torch.load(tmp_path / "exported.pth", weights_only=True)
    net = build_mmseg(saved["meta"]["model"])
    net.load_state_dict(saved["state_dict"], strict=True)
    torch.testing.assert_close(suite_logits(model, image(2)), mmseg_logits(net, image(2)), rtol=0, atol=TOLERANCE)


def test_resnet101_v1c_d8_backbone_equals_mmsegs(tmp_path):
    """R101-D8 (mmseg ``ResNetV1c`` depth 101) is the suite's ``resnet101c``: same keys, same features."""
    require_oracle()
    net = build_mmseg({**BACKBONE, "depth": 101})
    randomise(net, seed=3, forward=net)
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "r101.pth")
    model = pspnet(num_classes=CLASSES, backbone="resnet101c").eval()
    report = load_weights(model, tmp_path / "r101.pth")  # a backbone-only file fills the model's backbone
    assert report.backbone_only and report.layout.backbone.depth == 101
    assert report.loaded == len(model.backbone.state_dict())
    with torch.no_grad():
        layer3, layer4 = model.backbone(image(4, (33, 41)))
        outs = net(image(4, (33, 41)))
    torch.testing.assert_close(layer3, outs[2], rtol=0, atol=TOLERANCE)
    torch.testing.assert_close(layer4, outs[3], rtol=0, atol=TOLERANCE)


def _reference(head: str, state: dict, align_corners: bool, test_cfg: dict) -> torch.nn.Module:
    from mmengine.config import ConfigDict  # mmseg reads test_cfg by attribute, as its configs build it

    net = build_mmseg({**mmseg_config(head, align_corners), "test_cfg": ConfigDict(test_cfg)})
    net.load_state_dict(state, strict=True)
    return net


@pytest.mark.parametrize("align_corners", [False, True])
def test_slide_inference_equals_mmsegs_where_the_image_is_smaller_than_the_window(released, align_corners):
    """A 40x150 image under 64x64 windows every 43 px: the windows are 40 high and run unpadded, as mmseg's
    ``slide_inference`` (padding them to 64 changed logits by up to 2.5 before)."""
    state, path = released["pspnet"]
    net = _reference("pspnet", state, align_corners, dict(mode="slide", crop_size=(64, 64), stride=(43, 43)))
    model = pspnet(num_classes=CLASSES, backbone="resnet50c", align_corners=align_corners)
    load_weights(model, path)
    frame = image(5, (40, 150))
    with torch.no_grad():
        expected = net.slide_inference(frame, [dict(img_shape=(40, 150), ori_shape=(40, 150))])
        got = predict_logits(model.eval(), frame.unsqueeze(1), None, "slide", (64, 64), (43, 43))
    torch.testing.assert_close(got, expected, rtol=0, atol=TOLERANCE)


def test_multi_scale_flip_equals_mmsegs_test_time_augmentation(released):
    """Each scaled and mirrored input through mmseg's ``predict`` (its ``postprocess_result`` mirrors back and
    resizes to the original size) and ``SegTTAModel.merge_preds`` (mean softmax, argmax) against
    ``predict_scores``; the inputs are the suite's resized tensors (mmseg resizes the 8-bit image)."""
    from mmseg.models.segmentors import SegTTAModel
    from mmseg.structures import SegDataSample

    state, path = released["fcn"]
    net = _reference("fcn", state, True, dict(mode="whole"))
    model = fcn(num_classes=CLASSES, backbone="resnet50c", align_corners=True)
    load_weights(model, path)
    protocol = Protocol(scales=(0.75, 1.25), flip=True)
    frame = image(6)
    size = tuple(frame.shape[-2:])
    passes = []
    with torch.no_grad():
        for scale, mirrored in protocol.augmentations():
            scaled, _ = augment(frame.unsqueeze(1), None, scaled_size(size, scale), mirrored)
            meta = dict(
                img_shape=tuple(scaled.shape[-2:]),
                ori_shape=size,
                flip=mirrored,
                flip_direction="horizontal",
                img_path="frame.png",
            )
            passes += net.predict(scaled[:, 0], [SegDataSample(metainfo=meta)])
        merged = SegTTAModel(module=net).merge_preds([passes])[0].pred_sem_seg.data
        expected = torch.stack([p.seg_logits.data.softmax(0) for p in passes]).mean(0)
        got = predict_scores(model.eval(), frame.unsqueeze(1), None, protocol)[0]
    torch.testing.assert_close(got, expected, rtol=0, atol=TOLERANCE)
    assert torch.equal(got.argmax(0), merged.squeeze(0))
