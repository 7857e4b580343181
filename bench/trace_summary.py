#!/usr/bin/env python3
"""Summarises a Kineto trace of the engine's decode steps (STIC_TRACE=FILE, see
src/stic/infer/decode_graph.h): per-step wall time, GPU busy time, the idle gaps between kernels
and the kernels that take the time, grouped by name.

    python3 bench/trace_summary.py trace.json [--top 25]
"""
import argparse
import collections
import json
import re


def short(name, width=70):
    name = re.sub(r"<.*>", "<>", name) if len(name) > width else name
    return name if len(name) <= width else name[: width - 3] + "..."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    ev = json.load(open(a.trace))
    ev = ev["traceEvents"] if isinstance(ev, dict) else ev
    kernels = sorted((e for e in ev if e.get("cat") == "kernel" and e.get("ph") == "X"), key=lambda e: e["ts"])
    runtime = [e for e in ev if e.get("cat") == "cuda_runtime" and e.get("ph") == "X"]
    if not kernels:
        raise SystemExit("no CUDA kernels in the trace (was it a CUDA build with STIC_TRACE set?)")
    launches = sorted(e["ts"] for e in runtime if "GraphLaunch" in e["name"])
    t0, t1 = kernels[0]["ts"], max(k["ts"] + k["dur"] for k in kernels)
    busy, end = 0.0, t0
    gaps = []
    for k in kernels:
        s, e = k["ts"], k["ts"] + k["dur"]
        if s > end:
            gaps.append(s - end)
        busy += max(0.0, e - max(s, end))
        end = max(end, e)
    span = t1 - t0
    print(f"window {span / 1e3:.2f} ms, {len(kernels)} kernels, GPU busy {busy / 1e3:.2f} ms ({100 * busy / span:.1f}%)")
    print(f"gaps between kernels: {len(gaps)} total {sum(gaps) / 1e3:.2f} ms; "
          f">= 50 us: {sum(g for g in gaps if g >= 50) / 1e3:.2f} ms in {sum(1 for g in gaps if g >= 50)}; "
          f"< 50 us: {sum(g for g in gaps if g < 50) / 1e3:.2f} ms")
    if len(launches) >= 2:
        steps = [b - a_ for a_, b in zip(launches, launches[1:])]
        print(f"graph launches: {len(launches)}; launch-to-launch {sum(steps) / len(steps) / 1e3:.2f} ms per step")
        per = len(kernels) / len(launches)
        print(f"kernels per step ~{per:.0f}")
    n_steps = max(1, len(launches))
    by = collections.defaultdict(lambda: [0.0, 0])
    for k in kernels:
        d = by[short(k["name"])]
        d[0] += k["dur"]
        d[1] += 1
    print(f"\n{'kernel':72s} {'ms/step':>8s} {'n/step':>7s} {'us each':>8s}")
    for name, (dur, n) in sorted(by.items(), key=lambda x: -x[1][0])[: a.top]:
        print(f"{name:72s} {dur / 1e3 / n_steps:8.3f} {n / n_steps:7.1f} {dur / n:8.2f}")
    rt = collections.defaultdict(lambda: [0.0, 0])
    for e in runtime:
        rt[e["name"]][0] += e["dur"]
        rt[e["name"]][1] += 1
    print(f"\n{'CUDA runtime call (host)':40s} {'ms/step':>8s} {'n/step':>7s}")
    for name, (dur, n) in sorted(rt.items(), key=lambda x: -x[1][0])[:10]:
        print(f"{name:40s} {dur / 1e3 / n_steps:8.3f} {n / n_steps:7.1f}")


if __name__ == "__main__":
    main()
