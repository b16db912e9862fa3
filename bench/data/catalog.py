"""What each dataset is, without opening it: class count, class names, ignore index.

    from bench.data.catalog import dataset_info
    info = dataset_info(cfg.data)        # DatasetInfo(num_classes=19, class_names=("road", ...), ignore_index=255)

Models are built from this description (``bench.models.build``), so building a model never reads a dataset.
To add a dataset (or a protocol of one), add an entry to ``CATALOG``: a function of the ``DataConfig``.
The dataset classes expose the same three attributes; ``tests/test_build.py`` checks that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from bench.constants import IGNORE_INDEX


@dataclass(frozen=True)
class DatasetInfo:
    """The label space of a dataset: ids ``0..num_classes-1`` named by ``class_names``; ``ignore_index`` is void."""

    num_classes: int
    class_names: tuple[str, ...]
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")


def _synthetic(data_cfg: Any) -> DatasetInfo:
    from bench.data.synthetic import synthetic_class_names

    n = int(data_cfg.synthetic.num_classes)
    return DatasetInfo(n, tuple(synthetic_class_names(n)))


def _cityscapes(data_cfg: Any) -> DatasetInfo:
    from bench.data.cityscapes import CITYSCAPES_CLASSES  # the 19 trainIds

    return DatasetInfo(len(CITYSCAPES_CLASSES), tuple(CITYSCAPES_CLASSES))


def _camvid(data_cfg: Any) -> DatasetInfo:
    from bench.data.camvid import CAMVID_CLASSES  # the 11-class protocol, void ignored

    return DatasetInfo(len(CAMVID_CLASSES), tuple(CAMVID_CLASSES))


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
