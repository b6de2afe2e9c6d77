"""The whole stack with no traffic: what it costs to wait (target: under 5% of one core)."""

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from tests.stack import DevProcess

SETTLE_SECONDS, MEASURE_SECONDS = 15, 30


def _cpu(process: psutil.Process) -> float:
    try:
        return float(sum(process.cpu_times()[:2]))
    except psutil.Error:
        return 0.0


def _name(process: psutil.Process) -> str:
    try:
        command = process.cmdline()
    except psutil.Error:
        return "?"
    if "-m" in command:
        return command[command.index("-m") + 1].removeprefix("services.")
    return Path(command[0]).name.split("-")[0] if command else "?"


async def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-idle-") as home:
        stack = DevProcess(Path(home))
        await asyncio.to_thread(stack.start)
        try:
            await asyncio.sleep(SETTLE_SECONDS)  # past start-up and the consumers' first idle pause
            assert stack.process is not None
            root = psutil.Process(stack.process.pid)
            processes = [root, *root.children(recursive=True)]
            names = {p.pid: _name(p) for p in processes}
            before = {p.pid: _cpu(p) for p in processes}
            started = time.monotonic()
            await asyncio.sleep(MEASURE_SECONDS)  # the measured idle period
            elapsed = time.monotonic() - started
            used = {p: (_cpu(p) - before[p.pid]) / elapsed * 100 for p in processes}
        finally:
            await asyncio.to_thread(stack.stop)
    by_part: dict[str, float] = {}
    for process, percent in used.items():
        name = names[process.pid]
        by_part[name] = round(by_part.get(name, 0.0) + percent, 2)
    return {"seconds": MEASURE_SECONDS, "percent_of_a_core": round(sum(used.values()), 2), "by_part": by_part}


def report(f: dict[str, Any]) -> str:
    parts = "  ".join(
        f"{name} {percent}%" for name, percent in sorted(f["by_part"].items()) if percent >= 0.1
    )
    return "\n".join(
        [
            f"Idle: the whole stack with no traffic for {f['seconds']} s",
            f"  CPU                                 {f['percent_of_a_core']:>9} % of one core (target < 5)",
            f"  by part: {parts}",
        ]
    )


if __name__ == "__main__":
    import uvloop

    print(report(uvloop.run(measure())))
