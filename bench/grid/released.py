"""Released-weights specs (``ablations/*_released.yaml``): published checkpoints, where to put them, what they score.

    spec = load_released_spec("ablations/cityscapes_released.yaml")
    for item in spec.evaluations():            # one per (checkpoint, published number)
        item.release.file, item.problem()      # the expected local path; None, or what to do (missing, other hash)
        item.config                            # base + overrides + the protocol + model.checkpoint, train.iters=0

A spec::

    name: cityscapes_released
    base: ../configs/cityscapes_tmanet.yaml    # the data the checkpoints are evaluated on
    weights_dir: ../weights                    # where the downloaded files go (relative to the spec)
    overrides: {model.pretrained: false}       # for every evaluation
    checkpoints:
      - name: pspnet_r50-d8_769x769_80k
        url: https://...-5ccf03dd.pth          # to download by hand: nothing is downloaded at run time
        file: pspnet_r50-d8_769x769_80k_cityscapes_20200606_210121-5ccf03dd.pth
        sha256: 5ccf03dd                       # a prefix of the file's SHA-256 ('' when none was published)
        overrides: {model.name: pspnet, eval.mode: slide}
        published:
          - {miou: 79.59, protocol: single-scale, source: "mmseg configs/pspnet/metafile.yaml"}
          - {miou: 80.69, protocol: ms+flip, source: "..."}

``protocol`` is ``single-scale`` (eval.scales [1.0], no flip) or ``ms+flip`` (mmseg ``--aug-test``: scales
0.5-1.75, flip; ``bench.evaluation.tta``). Each evaluation is a run of its own (``train.iters=0``), executed and
reused like any run; ``reproduce_spec`` runs those whose file is present and says for each other one what to do;
``bench reproduce`` then writes the table (``bench.report.released``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import Config, ConfigError, load_config, read_yaml
from bench.evaluation.protocols import MMSEG_SCALES
from bench.grid.spec import SweepError
from bench.run.execute import train_command
from bench.weights import sha256_of

PROTOCOLS: dict[str, dict[str, Any]] = {
    "single-scale": {"eval.scales": [1.0], "eval.flip": False},
    "ms+flip": {"eval.scales": list(MMSEG_SCALES), "eval.flip": True},
}
SPEC_KEYS = {"name", "description", "base", "weights_dir", "overrides", "checkpoints"}
RELEASE_KEYS = {"name", "url", "file", "sha256", "overrides", "published", "note"}
PUBLISHED_KEYS = {"miou", "protocol", "source", "note"}


@dataclass(frozen=True)
class Published:
    """A published mIoU (percent) under a protocol, with where it is published."""

    miou: float
    protocol: str
    source: str
    note: str = ""


@dataclass(frozen=True)
class Release:
    """A released checkpoint: its name, download URL, expected local file, SHA-256 prefix, config overrides."""

    name: str
    url: str
    file: Path
    sha256: str
    overrides: dict[str, Any]
    published: tuple[Published, ...]
    note: str = ""

    def problem(self) -> str | None:
        """None when the file is where the spec expects it (with the published hash); else what to do."""
        if not self.file.is_file():
            return f"{self.name}: missing; download {self.url} by hand and put it at {self.file}"
        if self.sha256 and not sha256_of(self.file).startswith(self.sha256):
            return (
                f"{self.name}: {self.file} is not the published file (its SHA-256 does not start with "
                f"{self.sha256}); download {self.url} again"
            )
        return None


@dataclass(frozen=True)
class Evaluation:
    """One published number to reproduce: the release, the number, and the config of its evaluation run."""

    release: Release
    published: Published
    config: Config


@dataclass(frozen=True)
class ReleasedSpec:
    path: Path
    name: str
    description: str
    releases: tuple[Release, ...]
    evaluations: tuple[Evaluation, ...]


def _check_keys(found: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(found) - allowed)
    if unknown:
        raise SweepError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")


def _published(entry: Any, where: str) -> Published:
    if not isinstance(entry, dict):
        raise SweepError(f"{where}: each published entry is a mapping with miou, protocol, source")
    _check_keys(entry, PUBLISHED_KEYS, where)
    if entry.get("protocol") not in PROTOCOLS:
        raise SweepError(f"{where}: protocol {entry.get('protocol')!r}; choose one of {', '.join(PROTOCOLS)}")
    if not isinstance(entry.get("miou"), (int, float)) or not entry.get("source"):
        raise SweepError(f"{where}: give miou (percent) and source (where the number is published)")
    return Published(float(entry["miou"]), entry["protocol"], str(entry["source"]), str(entry.get("note", "")))


def _release(entry: Any, weights_dir: Path, where: str) -> Release:
    if not isinstance(entry, dict):
        raise SweepError(f"{where}: each checkpoint is a mapping (name, url, file, sha256, overrides, published)")
    _check_keys(entry, RELEASE_KEYS, where)
    missing = [k for k in ("name", "url", "file", "published") if not entry.get(k)]
    if missing:
        raise SweepError(f"{where}: missing {', '.join(missing)}")
    published = tuple(_published(p, f"{where} {entry['name']}") for p in entry["published"])
    return Release(
        str(entry["name"]),
        str(entry["url"]),
        weights_dir / str(entry["file"]),
        str(entry.get("sha256") or ""),
        dict(entry.get("overrides") or {}),
        published,
        str(entry.get("note", "")),
    )


def _config(base: Path | None, overrides: dict[str, Any], release: Release, published: Published, path: Path):
    settings = {**overrides, **release.overrides, **PROTOCOLS[published.protocol]}
    settings.update({"model.checkpoint": str(release.file), "train.iters": 0})
    try:
        return load_config(base, [f"{k}={_yaml(v)}" for k, v in settings.items()])
    except ConfigError as err:
        raise SweepError(f"{path}: checkpoint {release.name}: {err}") from err


def _portable(folder: Path) -> Path:
    """``folder`` relative to the current directory when inside it (run ids then do not depend on where the
    repository was cloned), else absolute."""
    try:
        return folder.relative_to(Path.cwd().resolve())
    except ValueError:
        return folder


def _yaml(value: Any) -> str:
    """An override's value as the config reads it (JSON is YAML)."""
    return value if isinstance(value, str) else json.dumps(value)


def load_released_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ReleasedSpec:
    """The spec at ``path``; ``overrides`` (``key=value``) apply to every evaluation (e.g. ``data.root=...``)."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"released-weights spec {path} does not exist; e.g. ablations/cityscapes_released.yaml")
    try:
        data = read_yaml(path)  # the config files' strict loader: one-line errors, repeated keys refused
    except ConfigError as err:
        raise SweepError(str(err)) from None
    if not isinstance(data, dict):
        raise SweepError(f"{path}: a released-weights spec is a mapping (name, base, weights_dir, checkpoints)")
    _check_keys(data, SPEC_KEYS, str(path))
    base = (path.parent / data["base"]).resolve() if data.get("base") else None
    weights_dir = _portable((path.parent / str(data.get("weights_dir", "."))).resolve())
    common = dict(data.get("overrides") or {})
    common.update(dict(o.split("=", 1) for o in overrides))
    releases = tuple(_release(e, weights_dir, str(path)) for e in data.get("checkpoints") or [])
    if not releases:
        raise SweepError(f"{path}: no checkpoints listed")
    evaluations = tuple(Evaluation(r, p, _config(base, common, r, p, path)) for r in releases for p in r.published)
    return ReleasedSpec(path, str(data.get("name") or path.stem), str(data.get("description", "")), releases,
                        evaluations)  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """An evaluation's result: its record (None when not run) and why it was not run."""

    evaluation: Evaluation
    record: dict[str, Any] | None
    problem: str | None


def reproduce_spec(spec: ReleasedSpec, evaluate: bool = True) -> list[Outcome]:
    """Run (or reuse) the evaluation of every checkpoint that is present with the published hash; the others get
    their ``problem`` (where to put which file). ``evaluate=False`` only checks the files."""
    outcomes, problems = [], {}
    for item in spec.evaluations:
        name = item.release.name
        if name not in problems:
            problems[name] = item.release.problem()
        if problems[name] is not None or not evaluate:
            outcomes.append(Outcome(item, None, problems[name]))
            continue
        outcomes.append(Outcome(item, train_command(item.config), None))
    return outcomes
