"""Docs that resolve: every repository file and every ``file.md §section`` a docstring, comment or doc names
exists; docs/architecture.md maps every module once, lists the import-linter layers, every run state and the
record schema as the code writes them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "docs" / "architecture.md"
# where references are looked for: code, configs and docs (generated reports and run results are not)
SCANNED = sorted(
    [
        *(p for folder in ("bench", "baselines", "tests", "tools", "examples") for p in (REPO / folder).rglob("*.py")),
        *(REPO / "configs").glob("*.yaml"),
        *(REPO / "ablations").glob("*.yaml"),
        *(REPO / "examples").glob("*.yaml"),
        *(REPO / "docs").glob("*.md"),
        REPO / "README.md",
        REPO / "ablations" / "README.md",
        REPO / "pyproject.toml",
        REPO / "Makefile",
    ]
)
ROOTS = ("bench", "baselines", "tests", "tools", "docs", "configs", "ablations", "examples")
FILE_REF = re.compile(rf"(?<![\w/.-])((?:{'|'.join(ROOTS)})/[\w./-]*\w\.(?:py|md|yaml|toml|txt|json))\b")
SECTION_REF = re.compile(r"(?<![\w/.-])([\w/.-]*\w\.md),?\s*§\s*(\d+(?:\.\d+)*)")
HEADING_NUMBER = re.compile(r"^#+\s+§?(\d+(?:\.\d+)*)[.\s]", re.M)


def _references(pattern: re.Pattern[str]) -> list[tuple[Path, int, re.Match[str]]]:
    found = []
    for path in SCANNED:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            found += [(path, number, match) for match in pattern.finditer(line)]
    return found


def _resolve(name: str, citing: Path) -> Path | None:
    for base in (REPO, citing.parent, REPO / "docs"):
        if (base / name).is_file():
            return base / name
    return None


# example and deliberately missing names (a spec called "x", a test's missing grid)
PLACEHOLDER = re.compile(r"(x|no_such_\w*)\.\w+")


def _names_a_file_here(reference: str) -> bool:
    """A reference into a folder of this repository (another repository's ``configs/video/...`` is not)."""
    return (REPO / reference).parent.is_dir() and not PLACEHOLDER.fullmatch(Path(reference).name)


def test_every_repository_file_a_doc_or_docstring_names_exists():
    missing = [
        f"{path.relative_to(REPO)}:{line}: {match.group(1)}"
        for path, line, match in _references(FILE_REF)
        if _names_a_file_here(match.group(1)) and not (REPO / match.group(1)).exists()
    ]
    assert not missing, "these files do not exist (fix the name or the reference):\n" + "\n".join(missing)


def test_every_cited_section_exists_in_a_file_of_the_repository():
    """``docs/tmanet.md §1.2`` must name a file here and a numbered heading of it; notes outside the repository
    (``research/...``) are never cited."""
    wrong = []
    for path, line, match in _references(SECTION_REF):
        target = _resolve(match.group(1), path)
        where = f"{path.relative_to(REPO)}:{line}: {match.group(0)}"
        if target is None:
            wrong.append(f"{where} (no such file in the repository)")
        elif match.group(2) not in HEADING_NUMBER.findall(target.read_text()):
            wrong.append(f"{where} (no section {match.group(2)} in {target.relative_to(REPO)})")
    research = [
        f"{path.relative_to(REPO)}:{number}"
        for path in SCANNED
        if path.name != "test_docs.py"
        for number, text in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if re.search(r"\bresearch/\w+\.md|\bresearch \w+\.md", text)
    ]
    assert not wrong + research, "citations that do not resolve:\n" + "\n".join(wrong + research)


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, re.S)


def _map_modules() -> list[str]:
    """The modules of the map (the first code block of docs/architecture.md), as paths, in order."""
    block = _code_blocks(ARCHITECTURE.read_text())[0]
    stack: list[tuple[int, str]] = []
    modules = []
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        if names.startswith("(") or not re.match(r"[\w./,\s-]+$", names):
            continue  # a continuation line of a description
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        if names.endswith("/") and "," not in names:
            stack.append((indent, parent + names))
            continue
        modules += [parent + name for name in re.findall(r"[\w-]+\.py", names)]
    return modules


def test_the_module_map_lists_every_module_once():
    listed = _map_modules()
    actual = {
        p.relative_to(REPO).as_posix() for folder in ("bench", "baselines") for p in (REPO / folder).rglob("*.py")
    }
    actual = {m for m in actual if not m.endswith("__init__.py")} | {"bench/__init__.py", "bench/cli/__init__.py"}
    twice = sorted({m for m in listed if listed.count(m) > 1})
    assert not twice, f"listed more than once in docs/architecture.md: {twice}"
    assert sorted(set(actual) - set(listed)) == [], "modules missing from the map of docs/architecture.md"
    assert sorted(set(listed) - set(actual)) == [], "the map of docs/architecture.md names modules that do not exist"


def _pyproject_layers() -> list[list[str]]:
    text = (REPO / "pyproject.toml").read_text()
    block = re.search(r'type = "layers"\s*\nlayers = \[(.*?)\n\]', text, re.S)
    assert block is not None
    return [sorted(p.strip() for p in layer.split("|")) for layer in re.findall(r'"([^"]+)"', block.group(1))]


def test_the_documented_layers_are_the_import_linter_layers():
    block = next(b for b in _code_blocks(ARCHITECTURE.read_text()) if b.lstrip().startswith("cli | demo | perf"))
    documented = []
    for line in block.splitlines():
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        if names:
            documented.append(
                sorted(f"bench.{n.strip()}" if n.strip() != "baselines" else "baselines" for n in names.split("|"))
            )
    assert documented == _pyproject_layers()


def test_every_run_state_is_documented():
    from bench.grid.status import RunState

    text = ARCHITECTURE.read_text()
    missing = [state.value for state in RunState if f"`{state.value}`" not in text]
    assert not missing, f"docs/architecture.md does not list the run states {missing}"


def test_the_documented_record_is_the_one_make_record_writes(tmp_path):
    from bench.config import load_config
    from bench.run.records import RunStamp, make_record

    block = next(b for b in _code_blocks(ARCHITECTURE.read_text()) if '"schema"' in b)
    documented = json.loads(block)
    cfg = load_config(None, ["device=cpu"])
    record = make_record(
        RunStamp.of(cfg), metrics={"miou": 0.5}, device="cpu", wall_time_s=1.0, iters=1, checkpoint=None, batch_size=8
    )
    assert set(documented) - {"latency", "weights"} == set(record)  # both only when measured / loaded
    assert set(documented["code"]) == set(record["code"])
    assert set(documented["metrics"]) >= {"miou", "per_image", "mode", "num_images"}


@pytest.mark.parametrize("name", ["tmanet.md", "architecture.md"])
def test_the_docs_a_reader_needs_are_in_the_repository(name):
    assert (REPO / "docs" / name).is_file()
