"""``make gpu-check``: verify the suite's CUDA paths and measure it on one GPU in at most 6 minutes.

    python -m bench.perf.gpu_check                         # -> gpu-check/report.json and gpu-check/report.md
    python -m bench.perf.gpu_check --smoke                 # tiny sizes on the CPU (automatic without CUDA)
    python -m bench.perf.gpu_check --parts latency --max-seconds 200

The parts (``bench.perf.gpu_parts``) run one after the other, each in its own process with its own time budget
(seconds, scaled down when the total ``--max-seconds`` would be exceeded): a part stops between steps with a note
10 s before its budget runs out, and one still running at its budget is killed. Either way its
finished rows are kept, a line in the report says what was skipped, and the next part runs.

    environment 15 s | cuda_tests 95 s | attention 45 s | latency 140 s | train_step 50 s      (345 s in all)

``--inline`` runs the parts in this process (budgets checked between steps only; the CPU smoke test uses it).
Rows are printed as they finish.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate

from bench.perf.gpu_parts import run_part

# 445 s in all: with this process's start and the report, the whole check stays within 8 minutes
BUDGETS_S: dict[str, float] = {
    "environment": 15,
    "cuda_tests": 95,
    "attention": 45,
    "latency": 120,
    "fps": 120,
    "train_step": 50,
}
SMOKE_BUDGETS_S: dict[str, float] = {
    "environment": 10,
    "cuda_tests": 5,
    "attention": 20,
    "latency": 40,
    "fps": 30,
    "train_step": 30,
}
GRACE_S = 10.0  # a part stops itself this long before its budget, when it is killed if still running
TITLES = {
    "environment": "Environment",
    "cuda_tests": "1. CUDA tests (pytest -m cuda)",
    "attention": "2. TMA read: fused (SDPA) vs reference",
    "latency": "3. Per-frame latency (CUDA events)",
    "fps": "3b. FPS protocol of the field: MiT-B1 rows at 480x853 and 1024x2048 (docs/fps.md)",
    "train_step": "4. One training step of the Cityscapes recipe",
}


def _cuda_available() -> bool:
    return torch.cuda.is_available()


def _run_in_child(name: str, path: Path, budget_s: float, smoke: bool) -> dict[str, Any]:
    own_budget = max(budget_s - min(GRACE_S, 0.2 * budget_s), 0.0)
    command = [sys.executable, "-m", "bench.perf.gpu_parts", name, str(path), str(own_budget)] + (
        ["--smoke"] if smoke else []
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen(command, env=env, start_new_session=True, stdout=None, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = child.communicate(timeout=budget_s)
        killed = False
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, 9)  # the part's own process group (pytest children included)
        _, stderr = child.communicate()
        killed = True
    part = _read_part(name, path)
    if killed:
        part["status"] = "partial" if part.get("rows") else "skipped"
        part.setdefault("notes", []).append(
            f"killed at its budget of {budget_s:.0f} s; the rest of the part is skipped"
        )
    elif child.returncode != 0 and part.get("status") not in ("failed",):
        part["status"] = "failed"
        part.setdefault("notes", []).append(f"exit code {child.returncode}: {_tail(stderr)}")
    return part


def _tail(text: str | None, lines: int = 3) -> str:
    return " | ".join((text or "").strip().splitlines()[-lines:])[:500]


def _read_part(name: str, path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"name": name, "status": "skipped", "rows": [], "notes": ["the part wrote nothing before it ended"]}


def run_parts(names: list[str], out: Path, smoke: bool, max_seconds: float, inline: bool) -> list[dict[str, Any]]:
    """Every part in ``names`` within its budget (``BUDGETS_S`` scaled to ``max_seconds``); their JSON dicts."""
    budgets = SMOKE_BUDGETS_S if smoke else BUDGETS_S
    scale = min(1.0, max_seconds / sum(budgets[n] for n in names))
    (out / "parts").mkdir(parents=True, exist_ok=True)
    started, parts = time.perf_counter(), []
    for name in names:
        budget = budgets[name] * scale
        left = max_seconds - (time.perf_counter() - started)
        if left <= 1:
            parts.append(
                {
                    "name": name,
                    "status": "skipped",
                    "rows": [],
                    "seconds": 0,
                    "notes": [f"skipped: the total budget of {max_seconds:.0f} s ran out"],
                }
            )
            continue
        budget = min(budget, left)
        path = out / "parts" / f"{name}.json"
        print(f"gpu-check: {name} (budget {budget:.0f} s)", flush=True)
        if inline:
            part = _read_part(name, run_part(name, path, budget, smoke).path)
        else:
            part = _run_in_child(name, path, budget, smoke)
        part["budget_s"] = round(budget, 1)
        parts.append(part)
        print(f"gpu-check: {name} {part['status']} in {part.get('seconds', 0):.1f} s", flush=True)
    return parts


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return tabulate([[row.get(k, "") for k in keys] for row in rows], headers=keys, tablefmt="github", floatfmt=".2f")


def attention_ratios(rows: list[dict[str, Any]]) -> list[str]:
    """reference / fused ratios of time and memory per dtype, the README's goal being train_mib ratio >= 10."""
    lines = []
    for dtype in dict.fromkeys(r["dtype"] for r in rows):
        by = {r["impl"]: r for r in rows if r["dtype"] == dtype}
        if {"sdpa", "reference"} <= set(by):
            s, r = by["sdpa"], by["reference"]
            parts = [
                f"{k} {r[k] / s[k]:.1f}x"
                for k in ("forward_ms", "train_ms", "forward_mib", "train_mib")
                if k in s and s[k]
            ]
            lines.append(f"{dtype}: reference / fused = " + ", ".join(parts))
    return lines


def render_markdown(parts: list[dict[str, Any]], smoke: bool, total_s: float) -> str:
    """The report: the environment first, then every part's status line, table and notes."""
    mode = "CPU SMOKE MODE (tiny sizes; not a GPU measurement)" if smoke else "GPU mode"
    lines = [
        f"# gpu-check report ({mode})",
        "",
        f"Written by `python -m bench.perf.gpu_check` in {total_s:.0f} s on {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.",
        "",
    ]
    for part in sorted(parts, key=lambda p: p["name"] != "environment"):
        name = part["name"]
        lines += [
            f"## {TITLES.get(name, name)}",
            "",
            f"status: **{part['status']}** ({part.get('seconds', 0):.1f} s of a {part.get('budget_s', 0)} s budget)",
            "",
        ]
        rows = part.get("rows") or []
        if name == "environment" and rows:
            lines += [f"- {k}: {v}" for k, v in rows[0].items()] + [""]
        elif rows:
            lines += [_table(rows), ""]
        notes = part.get("notes") or []
        if name == "attention":
            notes = attention_ratios(rows) + notes
        lines += [f"- {note}" for note in notes] + ([""] if notes else [])
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="gpu-check", help="output folder (default gpu-check/)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (automatic without CUDA)")
    p.add_argument("--parts", nargs="+", choices=list(BUDGETS_S), default=list(BUDGETS_S))
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="total time bound (default 345 on a GPU, 105 in smoke mode); part budgets are scaled to it",
    )
    p.add_argument("--inline", action="store_true", help="run the parts in this process (no kill at the budget)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    smoke = args.smoke or not _cuda_available()
    max_seconds = args.max_seconds or sum((SMOKE_BUDGETS_S if smoke else BUDGETS_S)[n] for n in args.parts)
    out = Path(args.out)
    started = time.perf_counter()
    parts = run_parts(
        ["environment"] + [n for n in args.parts if n != "environment"], out, smoke, max_seconds, args.inline
    )
    total = time.perf_counter() - started
    report = {
        "schema": 1,
        "smoke": smoke,
        "seconds": round(total, 1),
        "max_seconds": max_seconds,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "parts": {p["name"]: p for p in parts},
    }
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "report.md").write_text(render_markdown(parts, smoke, total))
    print(f"gpu-check: {out / 'report.md'} ({total:.0f} s)", flush=True)
    return 1 if any(p["status"] == "failed" for p in parts) else 0


if __name__ == "__main__":
    raise SystemExit(main())
