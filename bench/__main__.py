"""`make bench`: run every benchmark, print the figures, keep them in bench/results/latest.json."""

import json
import sys
from pathlib import Path

import uvloop

from bench import backlog, idle, ingest, metrics, nurture, pipeline, scoring
from bench.targets import judge


def main() -> None:
    figures = {"ingest": uvloop.run(ingest.measure())}
    print(ingest.report(figures["ingest"]), flush=True)
    figures["scoring"] = uvloop.run(scoring.measure())
    print(scoring.report(figures["scoring"]), flush=True)
    figures["nurture"] = uvloop.run(nurture.measure())
    print(nurture.report(figures["nurture"]), flush=True)
    figures["metrics"] = uvloop.run(metrics.measure())
    print(metrics.report(figures["metrics"]), flush=True)
    figures["backlog"] = uvloop.run(backlog.measure())
    print(backlog.report(figures["backlog"]), flush=True)
    figures["pipeline"] = uvloop.run(pipeline.run())
    print(pipeline.report(figures["pipeline"]))
    figures["idle"] = uvloop.run(idle.measure())
    print(idle.report(figures["idle"]), flush=True)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.json").write_text(json.dumps(figures, indent=2, default=str))
    print(f"figures written to {results / 'latest.json'}")
    lines, missed = judge(figures)
    print("Targets:", *lines, sep="\n")
    if missed:
        print(
            f"make bench: {len(missed)} figure(s) missed their target:", *missed, sep="\n  ", file=sys.stderr
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
