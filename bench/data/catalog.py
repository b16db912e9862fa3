"""What each dataset is, without opening it: class count, class names, ignore index.

    from bench.data.catalog import dataset_info
    info = dataset_info(cfg.data)        # DatasetInfo(num_classes=19, class_names=("road", ...), ignore_index=255)
    info.palette                         # one RGB colour per class (Cityscapes: its official colours)
    info.label_ids                       # Cityscapes: the labelId of each trainId (for the test server), else None

Models are built from this description (``bench.models.build``), so building a model never reads a dataset.
To add a dataset (or a protocol of one), add an entry to ``CATALOG``: a function of the ``DataConfig``.
The dataset classes expose the same three attributes; ``tests/test_build.py`` checks that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from bench.constants import IGNORE_INDEX


@dataclass(frozen=True)
class DatasetInfo:
    """The label space of a dataset: ids ``0..num_classes-1`` named by ``class_names``; ``ignore_index`` is void."""

    num_classes: int
    class_names: tuple[str, ...]
    ignore_index: int = IGNORE_INDEX
    palette: tuple[tuple[int, int, int], ...] = field(default=())  # empty: default_palette(num_classes)
    label_ids: tuple[int, ...] | None = None  # the id each class has in the dataset's official label files

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")
        if not self.palette:
            object.__setattr__(self, "palette", default_palette(self.num_classes))
        if len(self.palette) != self.num_classes:
            raise ValueError(f"{len(self.palette)} palette colours for {self.num_classes} classes")


def default_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """A fixed colour per class id: matplotlib's tab20 colours (cycled beyond 20 classes), as 0..255 RGB."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return tuple(tuple(int(round(255 * c)) for c in cmap(i % 20)[:3]) for i in range(num_classes))  # type: ignore


def _synthetic(data_cfg: Any) -> DatasetInfo:
    from bench.data.synthetic import synthetic_class_names

    n = int(data_cfg.synthetic.num_classes)
    return DatasetInfo(n, tuple(synthetic_class_names(n)))


def _cityscapes(data_cfg: Any) -> DatasetInfo:
    from bench.data.cityscapes import _TRAIN_ID_TO_LABEL_ID, CITYSCAPES_CLASSES, CITYSCAPES_PALETTE  # 19 trainIds

    return DatasetInfo(len(CITYSCAPES_CLASSES), tuple(CITYSCAPES_CLASSES), palette=tuple(CITYSCAPES_PALETTE),
                       label_ids=tuple(_TRAIN_ID_TO_LABEL_ID))


def _camvid(data_cfg: Any) -> DatasetInfo:
    from bench.data.camvid import CAMVID_CLASSES, CAMVID_PALETTE  # the 11-class protocol, void ignored

    return DatasetInfo(len(CAMVID_CLASSES), tuple(CAMVID_CLASSES), palette=tuple(map(tuple, CAMVID_PALETTE)))


CATALOG: dict[str, Callable[[Any], DatasetInfo]] = {
    "synthetic": _synthetic,
    "cityscapes": _cityscapes,
    "camvid": _camvid,
}


def dataset_info(data_cfg: Any) -> DatasetInfo:
    """The ``DatasetInfo`` of ``data_cfg.dataset`` (a ``DataConfig``); an unknown name lists the known ones."""
    from bench.data.io import DatasetError

    describe = CATALOG.get(data_cfg.dataset)
    if describe is None:
        raise DatasetError(f"unknown dataset {data_cfg.dataset!r}; the catalog knows {', '.join(CATALOG)} "
                           f"(add an entry to bench.data.catalog.CATALOG)")
    return describe(data_cfg)
