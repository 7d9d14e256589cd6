"""Results as JSON, a Markdown table, and plots."""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path
from typing import Any

import psutil


def machine() -> dict[str, Any]:
    return {
        "cpus": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": platform.processor() or "unknown",
    }


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown(results: dict[str, Any]) -> str:
    lines = [f"Machine: {results['machine']}", ""]
    for scenario in ("S1", "S2"):
        rows = results.get(scenario)
        if not rows:
            continue
        lines += [
            f"### {scenario}",
            "",
            "| system | p50 ms | p90 ms | p99 ms | max ms | deliveries/s (saturated) | delivered / expected | "
            "server CPU s per 1k deliveries | connects/s | load generator CPU/worker |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows.values():
            lines.append(
                f"| {r['system']} | {_fmt(r['p50_ms'])} | {_fmt(r['p90_ms'])} | {_fmt(r['p99_ms'])} | {_fmt(r['max_ms'])} "
                f"| {_fmt(r['deliveries_per_s'], 0)} | {r['delivered']:,} / {r['expected']:,} "
                f"| {_fmt(r['server_cpu_s_per_1000_deliveries'], 3)} | {_fmt(r['connects_per_s'], 0)} "
                f"| {_fmt(r['loadgen_cpu_per_worker'], 2)}{' (saturated)' if r['loadgen_saturated'] else ''} |"
            )
        ratios = results.get(f"{scenario}_ratios")
        if ratios:
            lines += [
                "",
                "Kindred / peer, deliveries per second when saturated: "
                + ", ".join(f"{k} {_fmt(v, 2)}×" for k, v in ratios.items()),
            ]
        lines.append("")
    if "S3" in results:
        lines += [
            "### S3 idle sockets",
            "",
            "| system | sockets held | failures | MB before | MB held | bytes per socket |",
            "|---|---|---|---|---|---|",
        ]
        for r in results["S3"].values():
            lines.append(
                f"| {r['system']} | {r['sockets']:,} | {r['failures']} | {_fmt(r['rss_baseline_mb'])} "
                f"| {_fmt(r['rss_held_mb'])} | {_fmt(r['bytes_per_socket'], 0)} |"
            )
        lines.append("")
    if "S4" in results:
        s4 = results["S4"]
        lines += [
            "### S4 write contention (50 concurrent posters)",
            "",
            "| | posts/s | POST p50 ms | POST p99 ms |",
            "|---|---|---|---|",
        ]
        for label in ("one_room", "spread"):
            r = s4[label]
            lines.append(
                f"| {label} | {_fmt(r['posts_per_s'])} | {_fmt(r['post_p50_ms'])} | {_fmt(r['post_p99_ms'])} |"
            )
        lines += ["", f"One room vs spread: {_fmt(s4['one_room_vs_spread'], 2)}×", ""]
    if "S5" in results:
        r = results["S5"]
        lines += [
            "### S5 reconnect storm",
            "",
            f"{r['clients']:,} clients, each {r['behind']} events behind: {r['replayed']:,} / {r['expected']:,} "
            f"events replayed in {_fmt(r['seconds_including_worker_start'], 2)} s (including starting the load "
            f"generator's processes); server CPU {_fmt(r['server_cpu_s'], 2)} s "
            f"({_fmt(r['server_cpu_ms_per_client'], 2)} ms per client).",
            "",
        ]
    if "S6" in results:
        r = results["S6"]
        lines += ["### S6 ramp (S1 shape)", "", "| posts/s | p50 ms | p99 ms | samples |", "|---|---|---|---|"]
        for step in r["ramp"]:
            lines.append(
                f"| {_fmt(step['rate'], 0)} | {_fmt(step['p50_ms'])} | {_fmt(step['p99_ms'])} | {step['samples']:,} |"
            )
        lines += ["", f"Knee (first rate with p99 > 100 ms): {_fmt(r.get('knee'), 0)} posts/s", ""]
    if "redis" in results:
        lines += [
            "### Redis ceiling",
            "",
            f"redis-benchmark PUBLISH: {_fmt(results['redis'].get('publish_per_s'), 0)} publishes/s",
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
                ax.plot(values, [i / len(values) for i in range(len(values))], label=r["system"])
        ax.set_xscale("log")
        ax.set_xlabel("post → delivery latency (ms, log scale)")
        ax.set_ylabel("fraction of deliveries")
        ax.set_title(f"{scenario}: latency CDF at the fixed rate")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        path = out / f"{scenario.lower()}-latency-cdf.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
        fig, ax = plt.subplots(figsize=(7, 4))
        names = [r["system"] for r in rows.values()]
        ax.bar(names, [r["deliveries_per_s"] for r in rows.values()], color=["#3f6f5f", "#c9824e", "#6a8fbf"])
        ax.set_ylabel("deliveries per second (saturated)")
        ax.set_title(f"{scenario}: capacity")
        path = out / f"{scenario.lower()}-deliveries.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made


def write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    slim = json.loads(json.dumps(results, default=str))
    for scenario in ("S1", "S2"):
        for r in slim.get(scenario, {}).values():
            r.pop("latencies_ms", None)
    (out / "results.json").write_text(json.dumps(slim, indent=2))
    (out / "results.md").write_text(markdown(results))
    plots(results, out)
