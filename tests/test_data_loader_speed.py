"""The fast loader path: window resize = resize-then-crop within tolerance, pyspng = PIL pixels, the bench runs."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from bench.data import DatasetError, io
from bench.data.io import decode_with_spng, read_label, read_rgb
from bench.data.transforms import (
    WINDOW_RESIZE_TOLERANCE,
    ClipTransform,
    ResizedLabel,
    denormalize,
    resize_window,
)


@pytest.fixture
def torch_threads():
    """Restore torch's thread count after a test that changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def random_case(rng: random.Random) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
    """(input size, output size, box inside the output): up- and down-scaling, odd sizes."""
    size_in = (rng.randint(5, 90), rng.randint(5, 90))
    size_out = (rng.randint(3, 200), rng.randint(3, 200))
    height, width = rng.randint(1, size_out[0]), rng.randint(1, size_out[1])
    box = (rng.randint(0, size_out[0] - height), rng.randint(0, size_out[1] - width), height, width)
    return size_in, size_out, box


@pytest.mark.parametrize("threads", [1, 2])
def test_resize_window_matches_interpolate_then_crop(threads, torch_threads):
    # PyTorch picks another CPU kernel with one thread (channels-last for 3 channels): both are compared
    torch.set_num_threads(threads)
    rng = random.Random(threads)
    for _ in range(60):
        size_in, size_out, (top, left, height, width) = random_case(rng)
        for images in (
            torch.randint(0, 256, (2, 3, *size_in), dtype=torch.uint8),
            torch.randn(2, 2, *size_in) * 20,  # flow-like: float, two channels, negative values
        ):
            expected = F.interpolate(images.float(), size=size_out, mode="bilinear", align_corners=False)
            expected = expected[..., top : top + height, left : left + width]
            got = resize_window(images, size_out, (top, left, height, width))
            assert got.shape == expected.shape and got.dtype == torch.float32
            scale = float(images.float().abs().max()) / 255
            assert float((got - expected).abs().max()) <= WINDOW_RESIZE_TOLERANCE * scale


def test_resize_window_gives_the_same_bits_for_any_thread_count(torch_threads):
    images = torch.randint(0, 256, (3, 3, 61, 97), dtype=torch.uint8)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        results.append(resize_window(images, (150, 230), (20, 31, 64, 80)))
    assert torch.equal(*results)


def test_resized_label_is_exactly_nearest_interpolate():
    rng = random.Random(0)
    cases = [random_case(rng) for _ in range(80)]
    cases += [((40, 60), (80, 120), (3, 5, 50, 70)), ((40, 60), (40, 60), (0, 0, 40, 60))]  # 2x and 1x shortcuts
    for size_in, size_out, (top, left, height, width) in cases:
        label = torch.randint(0, 19, size_in)
        full = F.interpolate(label[None, None].float(), size=size_out, mode="nearest")[0, 0].long()
        resized = ResizedLabel(label, size_out)
        assert resized.shape == size_out
        assert torch.equal(resized.window((top, left, height, width)), full[top : top + height, left : left + width])


def structured_clip(seed: int, size: tuple[int, int] = (48, 80)) -> tuple[torch.Tensor, ...]:
    """Textured frames, a label of a few large regions (so cat_max_ratio redraws happen) and a smooth flow."""
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (3, 3, *size), generator=gen, dtype=torch.uint8)
    ys, xs = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    label = torch.where(xs < size[1] * 0.8, torch.zeros_like(xs), (ys // 8) % 4 + 1)
    flow = torch.stack((xs.float() / 7, -ys.float() / 5))[None].repeat(2, 1, 1, 1)
    return frames, label, flow


@pytest.mark.parametrize("photometric", [False, True])
def test_window_path_draws_the_same_crop_as_resize_then_crop(photometric):
    # the random draws (scale, crop redraws, flip, colours) are consumed in the same order: same crop, same label
    kwargs = dict(train=True, crop_size=(32, 40), scale_range=(0.5, 2.0), cat_max_ratio=0.75, photometric=photometric)
    fast, reference = ClipTransform(**kwargs), ClipTransform(**kwargs, window_resize=False)
    for seed in range(12):
        frames, label, flow = structured_clip(seed)
        got = fast(frames, label, flow, torch.Generator().manual_seed(seed))
        want = reference(frames, label, flow, torch.Generator().manual_seed(seed))
        assert torch.equal(got[1], want[1])
        assert float((denormalize(got[0]) - denormalize(want[0])).abs().max()) <= WINDOW_RESIZE_TOLERANCE
        assert torch.allclose(got[2], want[2], atol=WINDOW_RESIZE_TOLERANCE, rtol=0)


def write_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path)
    return path


def test_pyspng_decodes_the_same_pixels_as_pil(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (13, 21, 3), dtype=np.uint8)
    files = {
        "rgb": write_png(tmp_path / "rgb.png", rgb),
        "rgba": write_png(tmp_path / "rgba.png", np.dstack([rgb, rng.integers(0, 256, (13, 21), dtype=np.uint8)])),
        "grey": write_png(tmp_path / "grey.png", rgb[..., 0]),
        "palette": write_png(tmp_path / "palette.png", rgb, "P"),
        "grey_alpha": write_png(tmp_path / "la.png", rgb, "LA"),
    }
    for name, path in files.items():
        assert torch.equal(read_rgb(path, decoder="pyspng"), read_rgb(path, decoder="pil")), name
    for name in ("rgb", "rgba", "grey"):  # the files pyspng takes; the others go through PIL
        assert (decode_with_spng(files[name].read_bytes()) is not None) == (io.pyspng is not None), name
    assert decode_with_spng(files["palette"].read_bytes()) is None


def test_label_maps_read_the_same_with_either_decoder(tmp_path):
    lut = np.full(256, -1, dtype=np.int64)
    lut[:5], lut[255] = np.arange(5), 255
    values = np.random.default_rng(1).choice([0, 1, 2, 3, 4, 255], size=(17, 9)).astype(np.uint8)
    grey = write_png(tmp_path / "grey.png", values)
    palette = tmp_path / "palette.png"
    indexed = Image.fromarray(values, mode="L").convert("P")
    indexed.putpalette(list(range(256)) * 3)
    indexed.save(palette)
    for path in (grey, palette):
        assert torch.equal(read_label(path, lut, 5, decoder="pyspng"), read_label(path, lut, 5, decoder="pil"))
    bad = write_png(tmp_path / "bad.png", np.full((4, 4), 7, dtype=np.uint8))
    for decoder in ("pyspng", "pil"):
        with pytest.raises(DatasetError, match=r"invalid values \[7\]"):
            read_label(bad, lut, 5, decoder=decoder)


def test_without_pyspng_pil_reads_every_file(tmp_path, monkeypatch):
    path = write_png(tmp_path / "rgb.png", np.random.default_rng(2).integers(0, 256, (5, 6, 3), dtype=np.uint8))
    expected = read_rgb(path, decoder="pil")
    monkeypatch.setattr(io, "pyspng", None)
    assert decode_with_spng(path.read_bytes()) is None
    assert torch.equal(read_rgb(path, decoder="pyspng"), expected)


def test_a_broken_png_is_a_dataset_error_with_either_decoder(tmp_path):
    path = write_png(tmp_path / "frame.png", np.zeros((32, 32, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:60])
    for decoder in ("pyspng", "pil"):
        with pytest.raises(DatasetError, match="cannot read image"):
            read_rgb(path, decoder=decoder)
    with pytest.raises(ValueError, match="unknown image decoder"):
        read_rgb(path, decoder="cv2")


def test_clip_cost_bench_on_frames_without_labels(tmp_path, capsys, torch_threads):
    from bench.perf.data_loader_bench import main

    frames = tmp_path / "vid"
    frames.mkdir()
    rng = np.random.default_rng(3)
    for number in range(40, 44):
        pixels = rng.integers(0, 256, (48, 96, 3), dtype=np.uint8)
        write_png(frames / f"frankfurt_000001_{number:06d}_leftImg8bit.png", pixels)
    main(
        [
            "configs/cityscapes_tmanet.yaml",
            "data.crop_size=[24,24]",
            "data.base_size=[48,96]",
            "--clip-cost",
            "--frames",
            str(frames),
            "--memory-lengths",
            "1",
            "2",
            "--clips",
            "3",
        ]
    )
    out = capsys.readouterr().out
    assert "2 clips from" in out  # frames 42 and 43 have two predecessors
    assert "T=1: reference" in out and "T=2: reference" in out and "of 255" in out
