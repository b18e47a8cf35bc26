"""The benchmark's table, printed from its figures."""

from __future__ import annotations

import statistics
from typing import Any

from bench.shapes import REFERENCE_CHAIN, Json, pct

BASELINES = {  # the shapes' other baselines, as `compared` names them
    "same_writes": "a plain client making Smith's object writes (server-side apply, label, owners)",
    "bundle_writes": "a plain client making every write of a Bundle's convergence (the Bundle, the "
    "objects as Smith writes them, its final status; not Smith's finalizer, written beside them)",
}


def off_on(title: str, off: Json, on: Json) -> list[str]:
    """The rows of `Bench.ahead`'s figures measured with something off, then on."""
    lines = ["", title, f"  {'':<34}{'off':>9}{'on':>9}{'on/off':>8}"]
    for label, key in (
        (f"chain of {REFERENCE_CHAIN}, references (s)", "chain_s"),
        ("Smith's CPU per chain (s, all services)", "smith_cpu_per_chain_s"),
        ("5 waves x 10 (s)", "layered_s"),
    ):
        a, b = statistics.median(off[key]), statistics.median(on[key])
        lines.append(f"  {label:<34}{a:>9.3f}{b:>9.3f}{b / a:>7.2f}x")
    return lines


def report(r: dict[str, Any]) -> str:
    lines = [
        "",
        "Convergence latency: create Bundle -> Ready; floor: a plain client creating the objects by wave",
        f"  {'shape':<26}{'smith median':>14}{'p95':>9}{'floor median':>14}{'p95':>9}{'ratio':>8}",
    ]
    for label, row in r["latency"].items():
        lines.append(
            f"  {label:<26}{row['smith_median_s']:>13.3f}s{row['smith_p95_s']:>8.3f}s"
            f"{row['floor_median_s']:>13.3f}s{row['floor_p95_s']:>8.3f}s{row['ratio_median']:>7.1f}x"
        )
    for baseline, title in BASELINES.items():
        lines.append(f"  the same shapes against {title}:")
        for label, row in r["latency"].items():
            if f"{baseline}_median_s" in row:
                took, ratio = row[f"{baseline}_median_s"], row[f"ratio_{baseline}"]
                lines.append(
                    f"  {label:<26}{row['smith_median_s']:>13.3f}s{'':>9}{took:>13.3f}s{'':>9}{ratio:>7.1f}x"
                )
    if kro := r.get("kro_chain_s"):
        chain = r["latency"][f"chain of {REFERENCE_CHAIN}, references"]
        lines.append(
            f"  kro, the same chain: median {statistics.median(kro):.3f}s (p95 {pct(kro, 0.95):.3f}s), "
            f"{statistics.median(kro) / chain['floor_median_s']:.1f}x the floor; "
            f"Smith/kro {chain['smith_median_s'] / statistics.median(kro):.2f}"
        )
    chains = r["chains_at_once"]
    objects = chains["count"] * REFERENCE_CHAIN
    said = [f"smith {objects / chains['smith_s']:.1f}", f"plain client {objects / chains['floor_s']:.1f}"]
    if "kro_s" in chains:
        said.append(f"kro {objects / chains['kro_s']:.1f}")
    lines += [
        "",
        f"{chains['count']} reference chains of {REFERENCE_CHAIN} at once -> all Ready, objects/s: "
        + ", ".join(said)
        + f" (smith {chains['smith_s'] / chains['floor_s']:.1f}x the plain client's time)",
    ]
    lines += [
        "",
        "Throughput: N Bundles of 10 ConfigMaps and Secrets (2 waves) at once -> all Ready; floor as above;",
        "  bound: every write of those Bundles by a plain client, as many at a time as Smith's controller",
        f"  {'bundles':>8}{'seconds':>10}{'objects/s':>11}{'floor obj/s':>13}{'ratio':>8}"
        f"{'time x':>9}{'count x':>9}{'bound obj/s':>13}{'of bound':>10}",
    ]
    for count, row in r["throughput"].items():
        lines.append(
            f"  {count:>8}{row['seconds']:>10.2f}{row['objects_per_s']:>11.1f}"
            f"{row['floor_objects_per_s']:>13.1f}{row['ratio']:>7.1f}x{row['time_vs_smallest']:>9.1f}{row['count_vs_smallest']:>9.1f}"
            f"{row['bound_objects_per_s']:>13.1f}{row['bound_ratio']:>9.2f}x"
        )
    idle = r["idle"]
    writes = idle["api_writes"]
    plane_own = writes.get("leases", 0)  # kube-apiserver renews its identity lease every 10 s
    heartbeats = writes.get("executors", 0)
    smith = sum(n for r, n in writes.items() if r not in ("leases", "executors"))
    lines += [
        "",
        f"Idle cost over {idle['seconds']:.0f}s with the largest set converged (apiserver_request_total):",
        f"  API writes by Smith to Bundles, Events or managed objects: {smith:.0f}; executor heartbeats: "
        f"{heartbeats:.0f} (one per executor per 5 min); the API server's own lease renewals "
        f"(baseline): {plane_own:.0f}",
        f"  (measured once the run's Events were posted: {idle.get('events_backlog', 0):.0f} still queued "
        f"when the set was Ready, posted in {idle.get('events_drain_seconds', 0):.1f} s)",
        "  CPU seconds, Smith: " + ", ".join(f"{n} {s:.2f}" for n, s in idle["cpu_seconds"].items()),
        "  CPU seconds, control plane (baseline): "
        + ", ".join(f"{n} {s:.2f}" for n, s in idle["plane_cpu_seconds"].items()),
    ]
    cd = r["change_detection"]
    cold, warm = cd["cold"], cd["warm"]
    lines += [
        "",
        f"Change detection: all {cd['bundles']} converged Bundles of the run, fresh services, resync 10 s",
        f"  {'phase':<44}{'reconciles':>11}{'ms each':>9}{'CPU ms':>8}{'dry runs':>10}{'writes':>8}",
    ]
    for label, row in (
        (f"cold: executors remember nothing ({cd['cold_seconds']:.0f} s)", cold),
        (f"warm: resyncs ({cd['warm_seconds']:.0f} s)", warm),
    ):
        lines.append(
            f"  {label:<44}{row['reconciles']:>11.0f}{row['reconcile_ms']:>9.1f}"
            f"{row['cpu_ms_per_reconcile']:>8.1f}{row['dry_runs']:>10.0f}{row['writes']:>8.0f}"
        )
    resync_ms = warm["cpu_ms_per_reconcile"]
    lines.append(
        f"  a resync of a converged Bundle: {resync_ms:.2f} ms of CPU, all services "
        f"(target <= 1 ms: {'met' if resync_ms <= 1 else 'missed'}); passes skipped "
        f"{warm.get('skipped', 0):.0f} of {warm['reconciles']:.0f}"
    )
    react = r["reaction"]
    lines += [
        "",
        "Reaction: one resource of a converged Bundle changed -> object updated; floor: the object replaced",
        f"  smith median {react['median_s'] * 1000:.0f} ms, p95 {react['p95_s'] * 1000:.0f} ms; "
        f"floor median {react['floor_median_s'] * 1000:.0f} ms, p95 {react['floor_p95_s'] * 1000:.0f} ms; "
        f"ratio {react['ratio_median']:.1f}x",
    ]
    foot = r["footprint"]
    lines += [
        "",
        f"Footprint with {foot['bundles']} Bundles / {foot['objects']} objects "
        "(RSS MiB with no Bundles as the baseline -> loaded; KiB per Bundle)",
    ]
    for name, rss in foot["rss_mib"].items():
        empty, per = foot["rss_empty_mib"][name], foot["kib_per_bundle"][name]
        lines.append(f"  {name:<32}{empty:>7.0f} -> {rss:>6.0f}  {per:>7.1f}")
    if large := r.get("footprint_large"):
        base, loaded = large["baseline"], large["loaded"]
        lines += [
            "",
            f"Footprint at scale: fresh services, {base['objects']} objects ({base['bundles']} Bundles) -> "
            f"{loaded['objects']} objects ({loaded['bundles']} Bundles; those added converged in "
            f"{large['converge_seconds']:.0f} s); RSS MiB, KiB per added object, and the peak",
        ]
        for name, rss in loaded["rss_mib"].items():
            per, peak = large["kib_per_object"][name], loaded.get("peak_mib", {}).get(name, 0.0)
            lines.append(
                f"  {name:<32}{base['rss_mib'][name]:>7.0f} -> {rss:>6.0f}  {per:>7.2f}  peak {peak:>6.0f}"
            )
        if again := large.get("restarted"):
            lines += [
                f"Restarted: fresh services over those {again['objects']} objects, every Bundle reconciled "
                f"once and quiet in {again['settle_seconds']:.0f} s; RSS MiB then, and at its peak",
                *(
                    f"  {name:<32}{rss:>7.0f}  peak {again['peak_mib'][name]:>6.0f}"
                    for name, rss in again["rss_mib"].items()
                ),
            ]
    if passes := r.get("passes"):
        lines += [
            "",
            "Status window: Bundles of 5 Sleepers in a chain (a pass each) then a ConfigMap -> Ready, one "
            "after the other and at once;",
            "  fresh services with SMITH_STATUS_WINDOW 0 (a write per pass) and 1 s (the default)",
            f"  {'Bundles':<24}{'window':>8}{'seconds':>10}{'status writes/Bundle':>22}"
            f"{'reconciles/Bundle':>19}",
        ]
        for how in ("alone", "at_once"):
            for window, label in (("0", "0"), ("1", "1 s")):
                row = passes[window][how]
                shape = f"{row['bundles']} {'one by one' if how == 'alone' else 'at once'}"
                lines.append(
                    f"  {shape:<24}{label:>8}{row['seconds']:>10.2f}{row['status_writes_per_bundle']:>22.2f}"
                    f"{row['reconciles_per_bundle']:>19.2f}"
                )
    if ahead := r.get("ahead"):
        title = "Planning ahead: fresh services with SMITH_PLAN_AHEAD 0, then 1 (the default); median of each"
        lines += off_on(title, ahead["0"], ahead["1"])
    if security := r.get("security"):
        title = (
            "Security: fresh services in the insecure development mode, then secure (the default: TLS, "
            "tokens reviewed, writes re-checked); median of each"
        )
        lines += off_on(title, security["off"], security["on"])
    if loops := r.get("loops"):
        base = loops["asyncio"]
        lines += [
            "",
            f"Event loops: {base['seconds'] * base['objects_per_s'] / 10:.0f} Bundles of 10 objects at "
            "once -> all Ready, fresh services on each loop (SMITH_EVENT_LOOP)",
            f"  {'loop':>8}{'seconds':>10}{'objects/s':>11}{'x asyncio':>11}"
            "  CPU s: all of Smith; controller",
        ]
        for name, row in loops.items():
            lines.append(
                f"  {name:>8}{row['seconds']:>10.2f}{row['objects_per_s']:>11.1f}"
                f"{row['objects_per_s'] / base['objects_per_s']:>10.2f}x  {row['smith_cpu_s']:.1f}; "
                + ", ".join(f"{c:.1f}" for c in row["controller_cpu_s"].values())
            )
    if rows := r.get("replicas"):
        one = rows[min(rows)]
        lines += [
            "",
            f"Scale-out: {one['seconds'] * one['objects_per_s'] / 10:.0f} Bundles of 10 objects at once -> "
            "all Ready, fresh services, 1 vs N controller replicas sharing the Bundles",
            f"  {'replicas':>8}{'seconds':>10}{'objects/s':>11}{'x one':>8}"
            "  CPU s: per controller replica; all of Smith; the control plane; RSS MiB per controller",
        ]
        for n, row in rows.items():
            per = ", ".join(f"{c:.1f}" for c in row["controller_cpu_s"].values())
            rss = ", ".join(f"{m:.0f}" for m in row["controller_rss_mib"].values())
            lines.append(
                f"  {n:>8}{row['seconds']:>10.2f}{row['objects_per_s']:>11.1f}"
                f"{row['objects_per_s'] / one['objects_per_s']:>7.2f}x  {per}; {row['smith_cpu_s']:.1f}; "
                + ", ".join(f"{n} {t:.1f}" for n, t in row["plane_cpu_s"].items())
                + f"; {rss}"
            )
    if take := r.get("takeover"):
        lines.append(
            f"  takeover: one of them SIGKILLed and {take['bundles']} Bundles changed at once: its "
            f"{take['dead_share']} Ready {take['dead_share_ready_s']:.1f} s later "
            f"(lease {take['lease_s']:.0f} s)"
        )
    where = r["where_time_goes"]
    lines += [
        "",
        f"Where a reconcile's time goes ({where['reconciles']:.0f} traced reconciles, median "
        f"{where['median reconcile ms']:.1f} ms; share of their time)",
    ]
    for label, value in where.items():
        if label not in ("reconciles", "median reconcile ms"):
            lines.append(f"  {label:<56}{value * 100:>6.1f}%")
    return "\n".join(lines)
