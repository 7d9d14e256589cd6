"""`uv run python -m bench [--quick] [--only S1,S3] [--out bench/results]`

Starts its own Redis, databases and servers on 127.0.0.1, runs the scenarios, stops everything it started, and
writes results.json, results.md and plots to --out. --quick runs S1 scaled down for every system (under two minutes)
and prints, as its last line, one JSON object keyed by system.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

from bench import report
from bench.harness import services
from bench.scenarios import (
    SYSTEMS,
    Shape,
    contention,
    fanout,
    idle_sockets,
    knee,
    log,
    ratio,
    reconnect_storm,
    redis_ceiling,
)

QUICK_S1 = Shape(rooms=5, per_room=40, instances=2, rate=20, seconds=5, concurrency=16, saturate_seconds=5)
S1 = Shape(rooms=10, per_room=100, instances=2, rate=50, seconds=10, concurrency=32, saturate_seconds=10)
S2 = Shape(rooms=1, per_room=2000, instances=2, rate=20, seconds=10, concurrency=16, saturate_seconds=10)
S6 = Shape(rooms=10, per_room=100, instances=2, rate=50, seconds=5, concurrency=0, saturate_seconds=0)
S6_RATES = [50.0, 100.0, 200.0, 300.0, 400.0, 600.0]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": report.machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    wanted = set(args.only.split(",")) if args.only else {"S1", "S2", "S3", "S4", "S5", "S6", "redis"}
    async with services() as svc:
        for scenario, shape in (("S1", QUICK_S1 if args.quick else S1), ("S2", S2)):
            if scenario not in wanted or (args.quick and scenario == "S2"):
                continue
            results[scenario] = {}
            for system in args.systems.split(","):
                log(f"{scenario} {system}: {shape}")
                results[scenario][system] = await fanout(svc, system, shape)
            rows = results[scenario]
            if "kindred" in rows:
                results[f"{scenario}_ratios"] = {
                    peer: ratio(rows["kindred"]["deliveries_per_s"], rows[peer]["deliveries_per_s"])
                    for peer in ("django_channels", "websockets_ceiling")
                    if peer in rows
                }
        if args.quick:
            return results
        if "S3" in wanted:
            results["S3"] = {}
            for system in ("kindred", "websockets_ceiling"):
                log(f"S3 {system}: {args.idle:,} idle sockets")
                results["S3"][system] = await idle_sockets(svc, system, args.idle)
        if "S4" in wanted:
            log("S4 write contention")
            results["S4"] = await contention(svc, posters=50, seconds=10)
        if "S5" in wanted:
            log("S5 reconnect storm")
            results["S5"] = await reconnect_storm(svc, clients=1000, behind=50)
        if "S6" in wanted:
            log("S6 ramp")
            ramp = await fanout(svc, "kindred", S6, ramp=S6_RATES[1:])
            steps = [
                {"rate": S6.rate, "p50_ms": ramp["p50_ms"], "p99_ms": ramp["p99_ms"], "samples": ramp["samples"]},
                *ramp["ramp"],
            ]
            results["S6"] = {"ramp": steps, "knee": knee(steps)}
        if "redis" in wanted:
            results["redis"] = redis_ceiling(svc)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="S1 scaled down, every system, under two minutes")
    parser.add_argument("--only", help="comma-separated scenarios: S1,S2,S3,S4,S5,S6,redis")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="which systems S1 and S2 compare")
    parser.add_argument("--idle", type=int, default=10_000, help="sockets to hold in S3")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    started = time.perf_counter()
    results = uvloop.run(run(args))
    results["seconds"] = round(time.perf_counter() - started, 1)
    report.write(results, args.out)
    print(report.markdown(results), file=sys.stderr)
    if args.quick:
        s1 = results["S1"]
        keys = ("p50_ms", "p99_ms", "deliveries_per_s", "expected", "delivered")
        print(
            json.dumps(
                {
                    system: {
                        k: round(s1[system][k], 2) if isinstance(s1[system][k], float) else s1[system][k] for k in keys
                    }
                    for system in s1
                }
            )
        )


if __name__ == "__main__":
    main()
