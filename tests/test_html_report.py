"""HTML report: built from the same tables as the Markdown, every link resolves, text is escaped, and (when
headless Chromium is installed: ``apt-get install chromium``) the pages render and sort in a real browser."""

from __future__ import annotations

import json
import shutil
import subprocess
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from helpers import REPORT_BASE, fabricate_records, per_image_fabricator, write_report_spec
from PIL import Image

from bench.report.build import build_report
from bench.report.readings import best_text
from bench.report.table_files import display_frame

WEIRD = '<b>runs & "co"'  # a folder source whose name must be escaped in text and percent-encoded in links
WINDOW = (1200, 900)


class Page(HTMLParser):
    """Links, ids, the text of h1 and of the ``table#summary`` cells, and script/style sources of one page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.ids: set[str] = set()
        self.h1 = ""
        self.rows: dict[str, list[list[str]]] = {}
        self.aria_sort: dict[str, str] = {}
        self._table: str | None = None
        self._in: str | None = None
        self._key: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.links += [(name, a[name] or "") for name in ("href", "src") if name in a]
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if tag == "table":
            self._table = a.get("id")
            self.rows[self._table or ""] = []
        elif tag == "tr" and self._table:
            self.rows[self._table].append([])
        if tag == "th" and self._table and a.get("aria-sort"):
            self.aria_sort[self._table] = f"{a.get('data-key')} {a['aria-sort']}"
        if tag in ("td", "th", "h1"):
            self._in = tag
            if tag != "h1" and self._table:
                self.rows[self._table][-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "h1":
            self.h1 += data
        elif self._in in ("td", "th") and self._table:
            self.rows[self._table][-1][-1] += data


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("html")
    mem = write_report_spec(
        tmp,
        "syn_mem",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2, 4]}}],
        REPORT_BASE,
        seeds=[0, 1],
    )
    fabricate_records(mem, None, per_image_of=per_image_fabricator(lambda r: 0.03 * r.config.model.memory_length))
    folder = tmp / "folder"
    folder.mkdir()
    agg = write_report_spec(
        folder,
        "syn_agg",
        "aggregation",
        "model.aggregation",
        [{"product": {"model.aggregation": ["sum", "concat"]}}],
        REPORT_BASE,
        seeds=[0, 1],
    )
    fabricate_records(
        agg, None, per_image_of=per_image_fabricator(lambda r: 0.1 * (r.config.model.aggregation == "concat"))
    )
    (folder / "runs").rename(folder / WEIRD)
    first_run = next((folder / WEIRD).rglob("record.json")).parent
    (first_run / "log.jsonl").write_text(json.dumps({"iter": 1, "loss": 1.0}) + "\n")
    result = build_report([str(mem), str(folder / WEIRD)], tmp / "reports")
    return {"out": tmp / "reports", "result": result, "tables": {t.name: t for t, _ in result["tables"]}}


def pages(out: Path) -> list[Path]:
    return sorted(out.rglob("*.html"))


def test_html_pages_are_written_and_index_links_every_table(report: dict) -> None:
    out = report["out"]
    assert report["result"]["html"] == out / "index.html"
    assert {p.name for p in pages(out)} == {"index.html", "syn_mem.html", f"{WEIRD}.html"}
    index = Page((out / "index.html").read_text())
    linked = {unquote(h) for kind, h in index.links if kind == "href"}
    assert {"html/syn_mem.html", f"html/{WEIRD}.html"} <= linked
    assert any(src.endswith(".png") for kind, src in index.links if kind == "src")


def test_every_href_and_src_resolves_offline(report: dict) -> None:
    checked = 0
    for page in pages(report["out"]):
        text = page.read_text()
        parsed = Page(text)
        assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text
        for kind, link in parsed.links:
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc, f"{page.name}: external {kind} {link!r}"
            if not parts.path:  # a fragment on the same page
                assert parts.fragment in parsed.ids, f"{page.name}: no id {parts.fragment!r}"
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.exists(), f"{page.name}: {kind}={link!r} -> {target} missing"
            checked += 1
    assert checked > 20


def test_table_page_shows_the_display_frame_notes_best_and_run_links(report: dict) -> None:
    table = report["tables"]["syn_mem"]
    page_path = report["result"]["html"].parent / "html" / "syn_mem.html"
    page = Page(page_path.read_text())
    header, *rows = page.rows["summary"]
    shown = display_frame(table)
    assert header == list(shown.columns) + ["runs"] and "95% CI" in header and "Δ ref" in header
    assert [r[:-1] for r in rows] == shown.values.tolist()  # every cell as in the Markdown table
    # "2 runs", unfolding to one link per run id (<details>)
    runs = [ids.split() for ids in table.frame["run_ids"]]
    assert [r[-1] for r in rows] == [f"{len(ids)} runs" + "".join(ids) for ids in runs]
    text = page_path.read_text()
    assert escape(f"{best_text(table)}.") in text and "ref" in [r[header.index("Δ ref")] for r in rows]
    assert "syn_mem_miou_vs_memory_length.png" in text and "per_class_iou_synthetic.png" in text
    run_rows = page.rows["runs"][1:]
    assert sorted(r[0] for r in run_rows) == sorted(table.runs["run_id"])
    assert text.count("record.json</a>") == len(table.runs)
    assert text.count("<li>") == len(table.notes) and "<code>ref</code>" in text


def test_text_is_escaped(report: dict) -> None:
    page = report["out"] / "html" / f"{WEIRD}.html"
    text = page.read_text()
    assert "<b>runs" not in text and "&lt;b&gt;runs &amp; &quot;co&quot;" in text
    assert Page(text).h1 == WEIRD
    assert "p &lt; 0.05" in text  # the significance legend in the notes
    assert "log.jsonl</a>" in text


# --------------------------------------------------------------------------------------------------
# in a real browser


def chromium() -> str:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("headless Chromium not found; install it to run the browser checks: apt-get install chromium")


def browse(url: str, tmp: Path, *mode: str) -> subprocess.CompletedProcess:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *mode,
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.parametrize("page", ["index.html", "html/syn_mem.html"])
def test_pages_render_in_headless_chromium(report: dict, page: str, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    browse((report["out"] / page).as_uri(), tmp_path, f"--screenshot={shot}")
    with Image.open(shot) as image:
        assert image.size == WINDOW
        colours = image.convert("RGB").getcolors(maxcolors=WINDOW[0] * WINDOW[1])
    assert len(colours) > 100, f"{shot}: {len(colours)} colours, not a rendered page"
    assert max(count for count, _ in colours) < 0.95 * WINDOW[0] * WINDOW[1]  # not one colour with specks


@pytest.mark.parametrize("key, descending", [("miou_mean", True), ("p_ref", False), ("memory_length", True)])
def test_columns_sort_in_the_browser(report: dict, tmp_path: Path, key: str, descending: bool) -> None:
    table = report["tables"]["syn_mem"]
    url = (report["out"] / "html" / "syn_mem.html").as_uri() + f"?sort={key}&order={'desc' if descending else 'asc'}"
    dom = Page(browse(url, tmp_path, "--dump-dom").stdout)
    header, *rows = dom.rows["summary"]
    order = table.frame.sort_values(key, ascending=not descending, na_position="last", kind="stable")
    label = table.factor_label
    assert list(order.index) != list(table.frame.index)  # the page must have reordered the rows
    assert [r[header.index(label)] for r in rows] == [str(v) for v in order[label]]
    assert dom.aria_sort["summary"] == f"{key} {'descending' if descending else 'ascending'}"


def test_header_clicks_sort_and_reverse_in_the_browser(report: dict, tmp_path: Path) -> None:
    """Real click events on the headers: n, then mIoU twice (ascending, then descending)."""
    table = report["tables"]["syn_mem"]
    url = (report["out"] / "html" / "syn_mem.html").as_uri() + "?click=n&click=miou_mean&click=miou_mean"
    dom = Page(browse(url, tmp_path, "--dump-dom").stdout)
    header, *rows = dom.rows["summary"]
    expected = table.frame.sort_values("miou_mean", ascending=False)[table.factor_label]
    assert [r[0] for r in rows] == [str(v) for v in expected] != [str(v) for v in table.frame[table.factor_label]]
    assert dom.aria_sort["summary"] == "miou_mean descending"


def test_runs_table_sorts_by_miou_in_the_browser(report: dict, tmp_path: Path) -> None:
    table = report["tables"]["syn_mem"]
    url = (report["out"] / "html" / "syn_mem.html").as_uri() + "?sort=miou&order=desc"
    header, *rows = Page(browse(url, tmp_path, "--dump-dom").stdout).rows["runs"]
    expected = list(table.runs.sort_values("miou", ascending=False)["run_id"])
    assert [r[0] for r in rows] == expected != list(table.runs["run_id"])
