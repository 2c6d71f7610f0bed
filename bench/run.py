"""Run the benchmarks: `python bench/run.py [scenario ...] [--quick]` from the repository root.

Every scenario is a module in bench/scenarios/ with NAME, DESCRIPTION and `async def run(quick) -> dict`.
The dict holds `parameters`, `figures`, `headline` (the figures that matter, usually ratios against a
baseline measured in the same run) and optionally `notes` and `table`. The runner adds the context
(time, machine, duration), writes bench/results/<scenario>.json (<scenario>.quick.json with --quick)
and prints the headline figures of every scenario as a table.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SCENARIOS_DIR = BENCH_DIR / "scenarios"
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_TIMEOUT_S = 600.0

if str(BENCH_DIR) not in sys.path:  # scenarios import benchlib however the runner was started
    sys.path.insert(0, str(BENCH_DIR))

from benchlib import machine_info  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

# Wide enough for the tables when piped (make, CI); a terminal uses its own width.
console = Console(width=None if sys.stdout.isatty() else 120)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Callable[[bool], Awaitable[dict[str, Any]]]
    timeout_s: float
    path: Path


def load_scenario(path: Path) -> Scenario:
    spec = importlib.util.spec_from_file_location(f"bench_scenario_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    for attribute in ("NAME", "DESCRIPTION", "run"):
        if not hasattr(module, attribute):
            raise ImportError(f"{path} has no {attribute}")
    return Scenario(
        name=module.NAME,
        description=module.DESCRIPTION,
        run=module.run,
        timeout_s=float(getattr(module, "TIMEOUT_S", DEFAULT_TIMEOUT_S)),
        path=path,
    )


def discover() -> dict[str, Scenario]:
    scenarios = {}
    for path in sorted(SCENARIOS_DIR.glob("*.py")):
        if path.name.startswith("_"):
            continue
        scenario = load_scenario(path)
        scenarios[scenario.name] = scenario
    return scenarios


def result_path(name: str, quick: bool) -> Path:
    return RESULTS_DIR / (f"{name}.quick.json" if quick else f"{name}.json")


def loop_factory(choice: str) -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    """uvloop when installed (what uvicorn's default `--loop auto` picks for the services), else asyncio."""
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            return uvloop.new_event_loop, "uvloop"
    return None, "asyncio"


async def _bounded(scenario: Scenario, quick: bool) -> dict[str, Any]:
    return await asyncio.wait_for(scenario.run(quick), scenario.timeout_s)


def run_one(scenario: Scenario, *, quick: bool, loop_choice: str) -> dict[str, Any]:
    factory, loop_name = loop_factory(loop_choice)
    started = datetime.now(UTC)
    machine = machine_info()
    machine["event_loop"] = loop_name
    clock = time.perf_counter()
    with asyncio.Runner(loop_factory=factory) as runner:
        measured = runner.run(_bounded(scenario, quick))
    result: dict[str, Any] = {
        "scenario": scenario.name,
        "description": scenario.description,
        "timestamp_utc": started.isoformat(timespec="seconds"),
        "quick": quick,
        "duration_s": time.perf_counter() - clock,
        "machine": machine,
        "parameters": measured.get("parameters", {}),
        "headline": measured.get("headline", {}),
        "figures": measured.get("figures", {}),
        "notes": measured.get("notes", []),
    }
    if "table" in measured:
        result["table"] = measured["table"]
    return result


def write_result(result: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = result_path(result["scenario"], result["quick"])
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    return path


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def print_detail(result: dict[str, Any]) -> None:
    table_spec = result.get("table")
    if not table_spec:
        return
    table = Table(
        title=f"{result['scenario']}{' (quick)' if result['quick'] else ''}",
        title_justify="left",
        caption=table_spec.get("caption"),
        caption_justify="left",
    )
    for column in table_spec["columns"]:
        table.add_column(column, justify="left" if column == table_spec["columns"][0] else "right")
    for row in table_spec["rows"]:
        table.add_row(*(fmt(cell) for cell in row))
    console.print(table)


def print_summary(results: list[dict[str, Any]], failed: dict[str, str]) -> None:
    table = Table(title="Benchmark headlines (ratios against a baseline measured in the same run)")
    table.add_column("scenario")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("run")
    for result in results:
        when = f"{result['timestamp_utc']}{' quick' if result['quick'] else ''}"
        when += "" if result.get("_this_run") else " (earlier run)"
        for index, (label, value) in enumerate(result["headline"].items()):
            table.add_row(
                result["scenario"] if index == 0 else "", label, fmt(value), when if index == 0 else ""
            )
    for name, error in failed.items():
        table.add_row(name, "[red]failed[/red]", "-", error)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    scenarios = discover()
    parser = argparse.ArgumentParser(description="Run the Ecom Data Platform benchmarks.")
    parser.add_argument(
        "scenario", nargs="*", help=f"scenarios to run (default: all of {', '.join(scenarios)})"
    )
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--loop", choices=("auto", "uvloop", "asyncio"), default="auto", help="event loop (default: auto)"
    )
    args = parser.parse_args(argv)

    if args.list:
        for scenario in scenarios.values():
            console.print(f"[bold]{scenario.name}[/bold]  {scenario.description}")
        return 0
    unknown = [name for name in args.scenario if name not in scenarios]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(scenarios)}")
    selected = args.scenario or list(scenarios)

    results: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for name in selected:
        scenario = scenarios[name]
        console.rule(f"{name}{' (quick)' if args.quick else ''}")
        try:
            result = run_one(scenario, quick=args.quick, loop_choice=args.loop)
        except Exception as exc:
            traceback.print_exc()
            failed[name] = f"{type(exc).__name__}: {exc}"[:200]
            continue
        path = write_result(result)
        console.print(f"wrote {path.relative_to(BENCH_DIR.parent)} in {result['duration_s']:.1f}s")
        print_detail(result)
        result["_this_run"] = True
        results.append(result)

    # Scenarios not run this time still show their latest saved result, marked as such.
    for name in scenarios:
        if name in selected:
            continue
        saved = result_path(name, args.quick)
        if saved.exists():
            results.append(json.loads(saved.read_text()))
    print_summary(results, failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
