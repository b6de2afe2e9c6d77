"""The whole stack with no traffic: what it costs to wait (target: under 5% of one core)."""

import asyncio
from pathlib import Path
from typing import Any

from bench.cpu import CpuMeter, used_between
from bench.homes import throwaway_home
from tests.stack import DevProcess

SETTLE_SECONDS, MEASURE_SECONDS = 15, 30


async def measure() -> dict[str, Any]:
    with throwaway_home("leadflow-bench-idle-") as home:
        stack = DevProcess(Path(home), env=dict(a.split("=", 1) for a in __import__("sys").argv[1:]))
        await asyncio.to_thread(stack.start)
        try:
            await asyncio.sleep(SETTLE_SECONDS)  # past start-up and the consumers' first idle pause
            assert stack.process is not None
            meter = CpuMeter(stack.process.pid)
            before = meter.read()
            await asyncio.sleep(MEASURE_SECONDS)  # the measured idle period
            after = meter.read()
        finally:
            await asyncio.to_thread(stack.stop)
    elapsed = after[0] - before[0]
    by_part = {name: round(used / elapsed * 100, 2) for name, used in used_between(before, after).items()}
    total = round(sum(by_part.values()), 2)
    return {"seconds": MEASURE_SECONDS, "percent_of_a_core": total, "by_part": by_part}


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
