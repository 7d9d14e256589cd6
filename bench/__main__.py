"""`uv run --group bench python -m bench [--quick] [--only S1,S3] [--out bench/results]`

Starts its own Redis, databases and servers on 127.0.0.1, runs the scenarios, stops everything it started, and
writes results.json, results.md, plots and profiles to --out. --quick runs S1 scaled down for every system (under two
minutes) and prints, as its last line, one JSON object keyed by system.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvloop

from bench import report, scale
from bench.harness import services
from bench.loadgen import default_processes
from bench.scenarios import (
    SYSTEMS,
    Run,
    Shape,
    contention,
    fanout,
    idle_sockets,
    log,
    memory_breakdown,
    ramp,
    reconnect_storm,
    redis_ceiling,
)
from bench.systems import KindredAccounts

QUICK_S1 = Shape(rooms=5, per_room=40, instances=2, rate=20, seconds=5, concurrency=16, saturate_seconds=5)
S1 = Shape(rooms=10, per_room=100, instances=2, rate=50, seconds=8, concurrency=32, saturate_seconds=8)
S2 = Shape(rooms=1, per_room=2000, instances=2, rate=20, seconds=8, concurrency=16, saturate_seconds=8)
S6 = Shape(rooms=10, per_room=100, instances=2, rate=0, seconds=5, concurrency=0, saturate_seconds=0)
S6_RATES = [50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 400.0]
# Seconds of py-spy sampling on Kindred's servers in S1 and S2 (a separate saturating phase).
PROFILE_SECONDS = 6.0
# Envelope of a post.created event with a short body, in bytes: the payload for the Redis ceiling.
ENVELOPE_BYTES = 700
# Sockets in S3's traced pass: enough for per-socket costs to stand out, few enough that tracing stays quick.
MEMORY_SOCKETS = 2000
ALL = ("S1", "S2", "S3", "S4", "S5", "S6", "redis")
# Issue 20's scale scenarios: minutes each and most of the box's memory, so only when asked for (--only S7,S8).
LARGE = ("S7", "S8")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    wanted = set(args.only.split(",")) if args.only else set(ALL)
    if args.quick:
        wanted = {"S1"}
    results: dict[str, Any] = {
        "machine": report.machine(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "kindred_server": args.kindred_server,
        "command": " ".join(["uv run --group bench python -m bench", *sys.argv[1:]]),
    }
    async with services(args.out / "logs") as svc:
        svc.kindred_server = args.kindred_server
        run = Run(
            svc=svc,
            accounts=KindredAccounts(),
            out=args.out,
            kindred_workers=args.kindred_workers,
            loadgen_processes=args.loadgen_processes,
            readers=40 if args.quick else 200,
            writers=16 if args.quick else 50,
            ws_posts=args.ws_posts,
        )
        profile = 0.0 if args.quick or args.no_profile else PROFILE_SECONDS
        for scenario, shape in (("S1", QUICK_S1 if args.quick else S1), ("S2", S2)):
            if scenario in wanted:
                results[scenario] = {}
                for system in args.systems.split(","):
                    log(f"{scenario} {system}")
                    seconds = profile if system == "kindred" else 0.0
                    results[scenario][system] = await fanout(run, system, shape, profile_seconds=seconds)
        if "S1" in wanted and not args.quick and "kindred" in args.systems.split(","):
            # How Kindred's cost moves with instances: S1 again on one instance (S1 itself runs two).
            log("S1 kindred, one instance")
            results["S1_one_instance"] = await fanout(run, "kindred", replace(S1, instances=1))
        if "S3" in wanted:
            results["S3"] = {}
            for system in ("kindred", "websockets_ceiling"):
                if system in args.systems.split(","):
                    log(f"S3 {system}: {args.idle:,} idle sockets")
                    results["S3"][system] = await idle_sockets(run, system, args.idle)
            # Traced in the process bench.instrumented runs: under Granian that is the supervisor, which serves nothing.
            if args.kindred_server == "uvicorn" and "kindred" in args.systems.split(","):
                log(f"S3 kindred memory breakdown: {MEMORY_SOCKETS:,} sockets, allocations traced")
                results["S3_memory"] = await memory_breakdown(run, MEMORY_SOCKETS)
        if "S4" in wanted:
            log("S4 write contention")
            results["S4"] = await contention(run, posters=50, seconds=8)
        if "S5" in wanted:
            log("S5 reconnect storm")
            results["S5"] = await reconnect_storm(run, clients=1000, behind=[50, 300])
        if "S6" in wanted:
            log("S6 ramp")
            results["S6"] = await ramp(run, S6, S6_RATES)
        if "S7" in wanted:
            log(f"S7 scale: {args.s7_sockets:,} sockets on {args.s7_instances} instances")
            results["S7"] = await scale.s7(
                run,
                args.s7_sockets,
                args.s7_instances,
                args.s7_workers,
                rounds=args.s7_rounds,
                accounts=args.s7_accounts,
            )
        if "S8" in wanted:
            log(f"S8 many rooms: {args.s8_rooms:,} rooms × {args.s8_per_room} over {args.s8_sockets:,} sockets")
            results["S8"] = await scale.s8(
                run,
                rooms=args.s8_rooms,
                per_room=args.s8_per_room,
                sockets=args.s8_sockets,
                instances=2,
                rate=args.s8_rate,
                seconds=8.0,
                churn_rooms=args.s8_churn_rooms,
            )
        if "redis" in wanted:
            log("Redis ceiling")
            results["redis"] = redis_ceiling(run, ENVELOPE_BYTES)
    return results


def cli() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="S1 scaled down, every system, under two minutes")
    parser.add_argument("--only", help=f"comma-separated scenarios, of {','.join(ALL + LARGE)}")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="which systems S1 and S2 compare")
    parser.add_argument("--idle", type=int, default=10_000, help="sockets to hold in S3")
    parser.add_argument("--s7-sockets", type=int, default=100_000, help="S7's sockets (seeded accounts, one each)")
    parser.add_argument("--s7-accounts", type=int, default=0, help="S7's accounts (default: one per socket)")
    parser.add_argument("--s7-instances", type=int, default=2, help="S7's Kindred instances")
    parser.add_argument("--s7-workers", type=int, default=1, help="S7's `kindred serve --workers` per instance")
    parser.add_argument("--s7-rounds", type=int, default=5, help="S7's rounds (a big-room post, then ten at once)")
    parser.add_argument("--s8-rooms", type=int, default=5_000)
    parser.add_argument("--s8-per-room", type=int, default=20)
    parser.add_argument("--s8-sockets", type=int, default=5_000, help="S8's sockets; each reads rooms×per-room/sockets")
    parser.add_argument("--s8-rate", type=float, default=40.0, help="S8's fixed-rate posts a second, over all rooms")
    parser.add_argument("--s8-churn-rooms", type=int, default=500, help="rooms whose subscribers S8 churns")
    parser.add_argument("--kindred-workers", type=int, default=1, help="`kindred serve --workers` per instance")
    parser.add_argument(
        "--kindred-server", choices=("uvicorn", "granian"), default="uvicorn", help="`kindred serve --server`"
    )
    parser.add_argument("--loadgen-processes", type=int, default=default_processes())
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy phase of S1 and S2")
    parser.add_argument(
        "--ws-posts",
        action="store_true",
        help='Kindred\'s posts go over its websockets ({"op": "post"}) instead of HTTP POST (the peers keep HTTP)',
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = uvloop.run(main(args))
    results["seconds"] = round(time.perf_counter() - started, 1)
    report.write(results, args.out)
    print(report.markdown(results), file=sys.stderr, flush=True)
    if args.quick:
        print(report.quick_line(results), flush=True)


if __name__ == "__main__":
    cli()
