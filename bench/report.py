"""Results as JSON, a Markdown report (tables, targets met or missed, profiles), and plots."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

import psutil

from bench import stats

# Issue 8's targets, measured on this box (2 cores, everything on it).
CAPACITY_VS_DJANGO = 3.0
CAPACITY_VS_CEILING = 0.5
P99_LIMIT_MS = {"S1": 50.0, "S2": 250.0}
IDLE_SOCKETS = 10_000
MEMORY_VS_CEILING = 1.5
COLOURS = {"kindred": "#3f6f5f", "django_channels": "#c9824e", "websockets_ceiling": "#6a8fbf"}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": psutil.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _f(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def ratios(rows: dict[str, Any]) -> dict[str, float]:
    """Kindred's saturated deliveries per second over each peer's, from the same run."""
    if "kindred" not in rows:
        return {}
    mine = rows["kindred"]["deliveries_per_s"]
    return {peer: stats.ratio(mine, rows[peer]["deliveries_per_s"]) for peer in rows if peer != "kindred"}


def quick_line(results: dict[str, Any]) -> str:
    """The last line of --quick: one JSON object keyed by system."""
    keys = ("posts_via", "p50_ms", "p99_ms", "deliveries_per_s", "expected", "delivered")
    return json.dumps(
        {
            system: {k: round(r[k], 2) if isinstance(r[k], float) else r[k] for k in keys}
            for system, r in results["S1"].items()
        }
    )


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 8 that this run measured: what it asks, what was measured, met or not."""
    rows: list[dict[str, Any]] = []

    def check(name: str, measured: float | None, limit: float, higher_is_better: bool, text: str) -> None:
        ok = measured is not None and not math.isnan(measured)
        ok = ok and (measured >= limit if higher_is_better else measured <= limit)  # type: ignore[operator]
        rows.append({"target": name, "wants": text, "measured": measured, "met": bool(ok)})

    for scenario in ("S1", "S2"):
        fan = results.get(scenario)
        if not fan or "kindred" not in fan:
            continue
        r = ratios(fan)
        if "django_channels" in r:
            check(f"{scenario} capacity vs Django Channels", r["django_channels"], CAPACITY_VS_DJANGO, True, "≥ 3×")
        if "websockets_ceiling" in r:
            check(
                f"{scenario} capacity vs raw websockets", r["websockets_ceiling"], CAPACITY_VS_CEILING, True, "≥ 0.5×"
            )
        check(
            f"{scenario} p99",
            fan["kindred"]["p99_ms"],
            P99_LIMIT_MS[scenario],
            False,
            f"≤ {P99_LIMIT_MS[scenario]:.0f} ms",
        )
    idle = results.get("S3")
    if idle and "kindred" in idle:
        k = idle["kindred"]
        held = k["sockets"] if k["failures"] == 0 and k["server_alive"] else 0
        check("S3 idle sockets per instance", float(held), float(IDLE_SOCKETS), True, f"≥ {IDLE_SOCKETS:,}")
        if "websockets_ceiling" in idle:
            mem = stats.ratio(k["bytes_per_socket"], idle["websockets_ceiling"]["bytes_per_socket"])
            check("S3 memory per socket vs raw websockets", mem, MEMORY_VS_CEILING, False, "≤ 1.5×")
    lost = loss(results)
    if lost is not None:
        check("Kindred loss, gaps and repeats (all scenarios)", float(lost), 0.0, False, "0")
    return rows


def loss(results: dict[str, Any]) -> int | None:
    """Kindred's missing deliveries plus seq gaps and repeats over every scenario that measured them."""
    total, seen = 0, False
    fanouts = [results.get(scenario, {}).get("kindred") for scenario in ("S1", "S2")]
    for k in [*fanouts, results.get("S1_one_instance")]:
        if k:
            seen = True
            total += max(0, k["expected"] - k["delivered"]) + k["gaps"] + k["repeats"]
    if "S5" in results:
        seen = True
        s5 = results["S5"]
        total += s5["gaps"] + s5["repeats"]
        total += sum(max(0, s["expected"] - s["replayed"]) + s["failures"] for s in s5["storms"])
    if "S6" in results:
        seen = True
        total += sum(max(0, s["expected"] - s["delivered"]) for s in results["S6"]["steps"])
    for scenario, parts in (("S7", ("big", "ten")), ("S8", ("fixed", "saturate"))):
        r = results.get(scenario)
        if r and all(part in r for part in parts):
            seen = True
            total += r.get("gaps", 0) + r.get("repeats", 0)
            total += sum(r[p]["missing"] if "missing" in r[p] else r[p]["expected"] - r[p]["delivered"] for p in parts)
    return total if seen else None


def _fanout(name: str, rows: dict[str, Any]) -> list[str]:
    shape = next(iter(rows.values()))["shape"]
    lines = [
        f"### {name}: {shape['rooms']} room(s) × {shape['per_room']:,} subscribers, "
        f"{shape['rate']:g} posts/s fixed, then {shape['concurrency']} posts in flight",
        "",
        "| system | p50 ms | p90 ms | p99 ms | max ms | deliveries/s at capacity | posts/s at capacity "
        "| delivered / expected | gaps, repeats | server CPU-s per 1k deliveries (fixed, capacity) "
        "| Redis + Postgres CPU-s per 1k deliveries (fixed, capacity) "
        "| connects/s | load generator CPU per process (fixed, capacity); whole box at capacity |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows.values():
        cpu, infra, gen = r["server_cpu_s_per_1000_deliveries"], r["infra_cpu_s_per_1000_deliveries"], r["loadgen_cpu"]
        order = f"{r['gaps']}, {r['repeats']}" if r["system"] == "kindred" else "not promised"
        lines.append(
            f"| {r['system']} | {_f(r['p50_ms'])} | {_f(r['p90_ms'])} | {_f(r['p99_ms'])} | {_f(r['max_ms'])} "
            f"| {_f(r['deliveries_per_s'], 0)} | {_f(r['saturate_posts_per_s'], 0)} "
            f"| {r['delivered']:,} / {r['expected']:,} | {order} | {_f(cpu['fixed'], 3)}, {_f(cpu['saturate'], 3)} "
            f"| {_f(infra['fixed'], 3)}, {_f(infra['saturate'], 3)} "
            f"| {_f(r['connects_per_s'], 0)} | {_f(gen['fixed'], 2)}, {_f(gen['saturate'], 2)}"
            f"; box {_f(r['box_busy']['saturate'] * 100, 0)}% busy"
            f"{' (saturated)' if r['loadgen_saturated'] else ''} |"
        )
    kindred = rows.get("kindred", {})
    for phase, label in (("fixed", "at the fixed rate"), ("saturate", "at capacity")):
        pauses = dict((kindred.get("gc_pauses") or {}).get(phase) or {})
        if pauses:
            tracked = pauses.pop("tracked")["objects"]
            lines += [
                "",
                f"Kindred's garbage-collector pauses {label} (all instances, {tracked:,} objects tracked): "
                + ", ".join(
                    f"{gen}: {p['count']} × (max {_f(p['max_ms'])} ms, total {_f(p['total_ms'], 0)} ms)"
                    for gen, p in pauses.items()
                ),
            ]
    per_post = {
        r["system"]: r.get("redis_commands_per_post") for r in rows.values() if r.get("redis_commands_per_post")
    }
    if per_post:
        lines += [
            "",
            "Redis commands per post at capacity: "
            + "; ".join(
                f"{system}: " + ", ".join(f"{cmd} {n:g}" for cmd, n in sorted(cmds.items(), key=lambda kv: -kv[1]))
                for system, cmds in per_post.items()
            ),
        ]
    r = ratios(rows)
    if r:
        lines += [
            "",
            "Kindred / peer, deliveries per second at capacity: "
            + ", ".join(f"{k} **{_f(v, 2)}×**" for k, v in r.items()),
        ]
    return [*lines, ""]


def _profile(name: str, profile: dict[str, Any]) -> list[str]:
    lines = [
        f"#### Where Kindred's servers spend their time in {name} at capacity (py-spy, {profile['samples']:,} samples)",
        "",
        "| share | innermost Kindred function on the stack | of which, in (leaf functions) |",
        "|---|---|---|",
    ]
    for row in profile["own_code"][:12]:
        below = profile["breakdown"].get(row["where"], [])
        spent = "; ".join(f"`{b['where']}` {b['share'] * 100:.1f}%" for b in below[:4])
        lines.append(f"| {row['share'] * 100:.1f}% | `{row['where']}` | {spent} |")
    lines += ["", "| share | self time (leaf function) |", "|---|---|"]
    lines += [f"| {row['share'] * 100:.1f}% | `{row['where']}` |" for row in profile["self"][:12]]
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# Kindred benchmark, {results['started']}",
        "",
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, {m['platform']}, Python {m['python']}; "
        f"load average at start {m['load_average_at_start']}. Command: `{results['command']}`; "
        f"took {_f(results.get('seconds'), 0)} s. Everything ran on this box, the load generator too.",
        "",
    ]
    checks = targets(results)
    if checks:
        lines += ["## Targets", "", "| target | wants | measured | met |", "|---|---|---|---|"]
        for c in checks:
            lines.append(
                f"| {c['target']} | {c['wants']} | {_f(c['measured'], 2)} | {'yes' if c['met'] else '**no**'} |"
            )
        lines.append("")
    for scenario in ("S1", "S2"):
        if results.get(scenario):
            lines += _fanout(scenario, results[scenario])
            k = results[scenario].get("kindred", {})
            if k.get("profile"):
                lines += _profile(scenario, k["profile"])
    one = results.get("S1_one_instance")
    two = results.get("S1", {}).get("kindred")
    if one and two:
        lines += [
            "### Kindred on one instance and on two (S1's load)",
            "",
            "| instances | p50 ms | p99 ms | deliveries/s at capacity | server CPU-s per 1k deliveries (fixed, capacity) |",
            "|---|---|---|---|---|",
        ]
        for n, r in ((1, one), (2, two)):
            cpu = r["server_cpu_s_per_1000_deliveries"]
            lines.append(
                f"| {n} | {_f(r['p50_ms'])} | {_f(r['p99_ms'])} | {_f(r['deliveries_per_s'], 0)} "
                f"| {_f(cpu['fixed'], 3)}, {_f(cpu['saturate'], 3)} |"
            )
        lines.append("")
    if "S3" in results:
        lines += [
            "### S3: idle sockets on one instance",
            "",
            "| system | sockets held | failures | server counts | connects/s | MB before | MB held | bytes per socket |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in results["S3"].values():
            lines.append(
                f"| {r['system']} | {r['sockets']:,} | {r['failures']} | {_f(r['server_says'])} "
                f"| {_f(r['connects_per_s'], 0)} | {_f(r['rss_baseline_mb'])} | {_f(r['rss_held_mb'])} "
                f"| {_f(r['bytes_per_socket'], 0)} |"
            )
        lines.append("")
    if "S3_memory" in results:
        mem = results["S3_memory"]
        lines += [
            f"Kindred's Python allocations per idle socket (tracemalloc, {mem['sockets']:,} sockets): "
            f"{_f(mem['traced_bytes_per_socket'], 0)} bytes in all; the largest sites:",
            "",
            "| bytes per socket | objects per socket | allocated at |",
            "|---|---|---|",
        ]
        for row in mem["by_site"][:15]:
            lines.append(
                f"| {_f(row['bytes_per_socket'], 0)} | {_f(row['objects_per_socket'], 2)} | `{row['where']}` |"
            )
        lines += ["", "The same by file:", "", "| bytes per socket | allocated in |", "|---|---|"]
        lines += [f"| {_f(row['bytes_per_socket'], 0)} | `{row['where']}` |" for row in mem["by_file"][:12]]
        lines.append("")
    if "S4" in results:
        s4 = results["S4"]
        lines += [
            f"### S4: write contention, {s4['posters']} concurrent posters",
            "",
            "| rooms | posts/s | POST p50 ms | POST p99 ms | server CPU ms per post |",
            "|---|---|---|---|---|",
        ]
        for label in ("one_room", "spread"):
            r = s4[label]
            lines.append(
                f"| {label} | {_f(r['posts_per_s'])} | {_f(r['post_ms']['p50_ms'])} "
                f"| {_f(r['post_ms']['p99_ms'])} | {_f(r['server_cpu_ms_per_post'], 2)} |"
            )
        lines += ["", f"One room / spread: {_f(s4['one_room_vs_spread'], 2)}×", ""]
    if "S5" in results:
        s5 = results["S5"]
        lines += [
            "### S5: reconnect storm",
            "",
            "| behind | clients | replayed / expected | failures | all subscribed in s | subscribed p50 ms "
            "| p99 ms | server CPU-s | CPU ms per client |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in s5["storms"]:
            lines.append(
                f"| {s['behind']} | {s['clients']:,} | {s['replayed']:,} / {s['expected']:,} | {s['failures']} "
                f"| {_f(s['seconds'], 2)} | {_f(s['subscribed_ms']['p50_ms'])} | {_f(s['subscribed_ms']['p99_ms'])} "
                f"| {_f(s['server_cpu_s'], 2)} | {_f(s['server_cpu_ms_per_client'], 2)} |"
            )
        lines += ["", f"Seq gaps {s5['gaps']}, repeats {s5['repeats']}.", ""]
    if "S6" in results:
        s6 = results["S6"]
        lines += [
            "### S6: ramp (S1's shape on Kindred)",
            "",
            "| posts/s asked | posts/s sent | p50 ms | p99 ms | max ms | delivered / expected |",
            "|---|---|---|---|---|---|",
        ]
        for s in s6["steps"]:
            lines.append(
                f"| {_f(s['rate'], 0)} | {_f(s['posts_per_s'], 0)} | {_f(s['p50_ms'])} | {_f(s['p99_ms'])} "
                f"| {_f(s['max_ms'])} | {s['delivered']:,} / {s['expected']:,} |"
            )
        knee = s6["knee"]
        lines += [
            "",
            f"Knee (first rate whose p99 passes {s6['threshold_ms']:.0f} ms): "
            + (f"**{_f(knee, 0)} posts/s**" if knee else "not reached"),
            "",
        ]
    if "S7" in results:
        lines += _s7(results["S7"])
    if "S8" in results:
        lines += _s8(results["S8"])
    if "redis" in results:
        r = results["redis"]
        lines += ["### Redis ceiling (redis-benchmark PUBLISH, no subscribers)", ""]
        if "skipped" in r:
            lines += [r["skipped"], ""]
        else:
            lines += [
                f"Payload {r['payload_bytes']} bytes: "
                + ", ".join(f"{k.replace('_', ' ')} {_f(v, 0)}/s" for k, v in r["publish_per_s"].items()),
                "",
            ]
    return "\n".join(lines)


def plots(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    for scenario in ("S1", "S2"):
        rows = results.get(scenario)
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for r in rows.values():
            values = sorted(r["latencies_ms"])
            if values:
                ax.plot(
                    values,
                    [(i + 1) / len(values) for i in range(len(values))],
                    label=r["system"],
                    color=COLOURS.get(r["system"]),
                )
        ax.set_xscale("log")
        ax.set_xlabel("post → delivery latency, ms (log scale)")
        ax.set_ylabel("fraction of (post, subscriber) pairs")
        ax.set_title(f"{scenario}: latency CDF at the fixed rate")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        made.append(_save(fig, out / f"{scenario.lower()}-latency-cdf.png"))
        fig, ax = plt.subplots(figsize=(7, 4))
        names = list(rows)
        bars = ax.bar(names, [rows[n]["deliveries_per_s"] for n in names], color=[COLOURS.get(n) for n in names])
        ax.bar_label(bars, fmt="{:,.0f}")
        ax.set_ylabel("deliveries per second at capacity")
        ax.set_title(f"{scenario}: capacity (saturating phase)")
        made.append(_save(fig, out / f"{scenario.lower()}-deliveries.png"))
    if "S6" in results:
        steps = results["S6"]["steps"]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(
            [s["rate"] for s in steps], [s["p99_ms"] for s in steps], marker="o", label="p99", color=COLOURS["kindred"]
        )
        ax.plot([s["rate"] for s in steps], [s["p50_ms"] for s in steps], marker="o", label="p50", color="#999")
        ax.axhline(results["S6"]["threshold_ms"], linestyle="--", color="#c44", label="knee threshold")
        ax.set_yscale("log")
        ax.set_xlabel("posts per second (S1 shape: 10 rooms × 100 subscribers)")
        ax.set_ylabel("post → delivery latency, ms")
        ax.set_title("S6: Kindred latency as the post rate rises")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        made.append(_save(fig, out / "s6-ramp.png"))
    return made


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(results: dict[str, Any], out: Path) -> None:
    """results.json (without the raw latency lists), results.md and the plots."""
    out.mkdir(parents=True, exist_ok=True)
    slim = json.loads(json.dumps(results, default=str))
    for scenario in ("S1", "S2"):
        for r in slim.get(scenario, {}).values():
            r.pop("latencies_ms", None)
    slim.get("S1_one_instance", {}).pop("latencies_ms", None)
    slim["targets"] = targets(results)
    (out / "results.json").write_text(json.dumps(slim, indent=2, allow_nan=True))
    (out / "results.md").write_text(markdown(results))
    plots(results, out)


def _s7(r: dict[str, Any]) -> list[str]:
    lines = [
        "### S7: scale",
        "",
        f"{r.get('sockets', 0):,} of {r['sockets_wanted']:,} sockets subscribed ({r.get('failures', '?')} failed) over "
        f"{r['accounts']:,} seeded accounts, {r['instances']} instances × {r['workers_per_instance']} worker(s), from "
        f"{r['sources']} source addresses and {r['loadgen_processes']} load-generator processes; descriptor limit "
        f"{r['fd_limit']['hard']:,} per process. Seeded in {_f(r['seed_seconds'])} s; connected in "
        f"{_f(r.get('connect_seconds'), 0)} s ({_f(r.get('connects_per_s'), 0)}/s, "
        f"{_f(r.get('server_cpu_ms_per_connect'), 2)} ms server CPU each).",
        "",
    ]
    if "rss_mb_held" in r:
        lines += [
            "Server RSS per instance: idle "
            + ", ".join(f"{_f(v, 0)}" for v in r["rss_mb_idle"])
            + " MB; holding the sockets "
            + ", ".join(f"{_f(v, 0)}" for v in r["rss_mb_held"])
            + f" MB ({_f(r['server_kb_per_socket'])} KB per socket); peak "
            + ", ".join(f"{_f(v, 0)}" for v in r["watch"]["peak_server_rss_mb"])
            + " MB.",
            "",
        ]
    if "big" in r:
        lines += [
            "| post | sockets | time to last delivery p50 ms | p99 ms | max ms | missing / expected |",
            "|---|---|---|---|---|---|",
        ]
        for label, key, n in (
            ("one post, big room", "big", r["big_room"]),
            ("ten posts, ten rooms", "ten", r.get("sockets", 0)),
        ):
            t = r[key]["to_last_ms"]
            lines.append(
                f"| {label} | {n:,} | {_f(t['p50_ms'], 0)} | {_f(t['p99_ms'], 0)} | {_f(t['max_ms'], 0)} "
                f"| {r[key]['missing']:,} / {r[key]['expected']:,} |"
            )
        lines += ["", f"Seq gaps {r['gaps']}, repeats {r['repeats']}.", ""]
    if r.get("watch", {}).get("stopped"):
        lines += [f"Stopped: {r['watch']['stopped']}.", ""]
    return lines


def _s8(r: dict[str, Any]) -> list[str]:
    lines = [
        "### S8: many rooms",
        "",
        f"{r['rooms']:,} rooms × {r['per_room']} subscribers over {r['sockets']:,} sockets ({r['rooms_per_socket']} rooms "
        f"each), {r['instances']} instances: {r.get('subscriptions', 0):,} subscriptions in "
        f"{_f(r.get('subscribe_seconds'), 0)} s ({_f(r.get('subscribes_per_s'), 0)}/s, "
        f"{_f(r.get('server_cpu_ms_per_subscribe'), 2)} ms server CPU each). Redis channels per instance: "
        f"{r.get('redis_channels_per_instance')}.",
        "",
    ]
    if "saturate" in r:
        f, s = r["fixed"], r["saturate"]
        lines += [
            f"Posts spread over every room: {_f(f['posts_per_s'], 0)}/s fixed, p50 {_f(f['p50_ms'])} ms, p99 "
            f"{_f(f['p99_ms'])} ms ({f['delivered']:,} / {f['expected']:,}); saturated {_f(s['posts_per_s'], 0)} posts/s, "
            f"**{_f(s['deliveries_per_s'], 0)} deliveries/s** ({s['delivered']:,} / {s['expected']:,}). "
            f"Seq gaps {r['gaps']}, repeats {r['repeats']}.",
            "",
            "| churn | (socket, room) ops | per s | server CPU ms each | Redis commands |",
            "|---|---|---|---|---|",
        ]
        for label in ("churn", "churn_cold_leave", "churn_cold_join"):
            if label in r:
                c = r[label]
                cmds = ", ".join(f"{k} {v:,}" for k, v in sorted(c["redis_commands"].items()))
                lines.append(
                    f"| {label} | {c['ops']:,} ({c['failed']} failed) | {_f(c['ops_per_s'], 0)} "
                    f"| {_f(c['server_cpu_ms_per_op'], 2)} | {cmds} |"
                )
        lines += ["", f"Redis channels per instance after the cold leave: {r.get('redis_channels_emptied')}.", ""]
    return lines
