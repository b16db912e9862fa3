"""What each dataset is, without opening it: class count, class names, ignore index.

    from bench.data.catalog import dataset_info
    info = dataset_info(cfg.data)        # DatasetInfo(num_classes=19, class_names=("road", ...), ignore_index=255)
    info.palette                         # one RGB colour per class (Cityscapes: its official colours)
    info.label_ids                       # Cityscapes: the labelId of each trainId (for the test server), else None
    eval_frame_size(cfg.data)            # (H, W) a model sees at evaluation: base_size, else the released size

Models are built from this description (``bench.run.model``), so building a model never reads a dataset.
To add a dataset (or a protocol of one), add an entry to ``CATALOG``: a function of the ``DataConfig``.
The dataset classes expose the same attributes; this module imports no torch; ``tests/test_build.py`` checks that
they agree.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.config import DataConfig
from bench.constants import IGNORE_INDEX
from bench.data.camvid_protocols import CAMVID_PROTOCOLS
from bench.data.classes import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    TRAIN_ID_TO_LABEL_ID,
    VSPW_CLASSES,
    class_hue,
    synthetic_class_names,
)
from bench.data.errors import DatasetError


@dataclass(frozen=True)
class DatasetInfo:
    """The label space of a dataset: ids ``0..num_classes-1`` named by ``class_names``; ``ignore_index`` is void."""

    num_classes: int
    class_names: tuple[str, ...]
    ignore_index: int = IGNORE_INDEX
    palette: tuple[tuple[int, int, int], ...] = field(default=())  # empty: default_palette(num_classes)
    label_ids: tuple[int, ...] | None = None  # the id each class has in the dataset's official label files
    frame_size: tuple[int, int] = (0, 0)  # (H, W) of the dataset's frames as released; (0, 0) = unknown

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")
        if not self.palette:
            object.__setattr__(self, "palette", default_palette(self.num_classes))
        if len(self.palette) != self.num_classes:
            raise ValueError(f"{len(self.palette)} palette colours for {self.num_classes} classes")


def default_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """A fixed, distinct colour per class id (evenly spaced hues, two brightness levels), as 0..255 RGB."""
    return tuple(
        _rgb(colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 0.95 if i % 2 else 0.7)) for i in range(num_classes)
    )


def _rgb(colour: tuple[float, float, float]) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in colour)  # type: ignore[return-value]


def _synthetic(data_cfg: DataConfig) -> DatasetInfo:
    """Object classes are drawn in their cue hue (``class_hue``), background grey: the palette shows the cue."""
    n = int(data_cfg.synthetic.num_classes)
    palette = ((128, 128, 128),) + tuple(_rgb(colorsys.hsv_to_rgb(class_hue(k, n), 0.9, 0.95)) for k in range(1, n))
    size = (int(data_cfg.synthetic.size[0]), int(data_cfg.synthetic.size[1]))
    return DatasetInfo(n, tuple(synthetic_class_names(n)), palette=palette, frame_size=size)


def _cityscapes(data_cfg: DataConfig) -> DatasetInfo:
    return DatasetInfo(
        len(CITYSCAPES_CLASSES),
        tuple(CITYSCAPES_CLASSES),
        palette=tuple(CITYSCAPES_PALETTE),
        label_ids=tuple(TRAIN_ID_TO_LABEL_ID),
        frame_size=(1024, 2048),
    )  # the 19 evaluated trainIds


def _camvid(data_cfg: DataConfig) -> DatasetInfo:
    protocol = CAMVID_PROTOCOLS[data_cfg.camvid_protocol]  # 11 classes (void ignored) or tmanet12 (void scored)
    palette = tuple(map(tuple, protocol.palette))
    return DatasetInfo(protocol.num_classes, tuple(protocol.class_names), palette=palette, frame_size=protocol.size)


def _vspw(data_cfg: DataConfig) -> DatasetInfo:
    """The 124 classes of VSPW (mask values 1..124, ``bench.data.vspw.vspw_lut``) in a generated palette."""
    return DatasetInfo(len(VSPW_CLASSES), tuple(VSPW_CLASSES))


CATALOG: dict[str, Callable[[DataConfig], DatasetInfo]] = {
    "synthetic": _synthetic,
    "cityscapes": _cityscapes,
    "camvid": _camvid,
    "vspw": _vspw,
}


def dataset_info(data_cfg: DataConfig) -> DatasetInfo:
    """The ``DatasetInfo`` of ``data_cfg.dataset``; an unknown name lists the known ones."""
    describe = CATALOG.get(data_cfg.dataset)
    if describe is None:
        raise DatasetError(
            f"unknown dataset {data_cfg.dataset!r}; the catalog knows {', '.join(CATALOG)} "
            f"(add an entry to bench.data.catalog.CATALOG)"
        )
    return describe(data_cfg)


def eval_frame_size(data_cfg: DataConfig) -> tuple[int, int]:
    """(H, W) of the frames a model sees at evaluation: ``data.base_size`` when set (the evaluation transform
    resizes to it), else the dataset's own frame size (``DatasetInfo.frame_size``)."""
    if data_cfg.base_size:
        return int(data_cfg.base_size[0]), int(data_cfg.base_size[1])
    return dataset_info(data_cfg).frame_size
