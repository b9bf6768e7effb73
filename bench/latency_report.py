"""Targets, tables and the figure of bench/step_latency.py (from its result dict)."""

from __future__ import annotations

import numpy as np


def _rt(res, net, label):
    for r in res.get("nets", []):
        if r["net"] == net:
            return r["runtimes"].get(label, {})
    return {}


def _t(out, issue, what, value, limit, detail=""):
    """One target row; ``value`` may be a function (a missing figure -> value None)."""
    if callable(value):
        try:
            value = value()
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            value = None
            detail = f"not measured: {detail}" if detail else \
                f"not measured ({type(exc).__name__}: {exc})"
    met = None if value is None else bool(value <= limit)
    out.append({"issue": issue, "target": what, "value": value, "limit": limit,
                "met": met, "detail": detail})


def _skip(*runtimes):
    return "; ".join(r["skipped"] for r in runtimes if "skipped" in r)


def targets(res) -> list[dict]:
    """Each target of issues #7/#8/#19 with its measured value, limit and met/missed."""
    out = []
    nets = [r["net"] for r in res.get("nets", [])]
    for net in nets:
        e, q = _rt(res, net, "edgernn"), _rt(res, net, "edgernn int8")
        lf, ld = _rt(res, net, "litert f32"), _rt(res, net, "litert drq")
        mode = res.get("args", {}).get("int8_mode", "int8")
        if net in ("S", "M"):
            _t(out, "#8", f"{net} step p50 / LiteRT f32 p50",
               lambda e=e, lf=lf: e["step"]["p50_us"] / lf["step"]["p50_us"], 0.25, _skip(lf))
        lim = 1.0 if net == "S" else 0.6          # issue 19: int8 pays on every CPU
        _t(out, "#19", f"{net} {mode} step p50 / float step p50",
           lambda e=e, q=q: q["step"]["p50_us"] / e["step"]["p50_us"], lim, _skip(q))
        _t(out, "#19", f"{net} {mode} run / float run",
           lambda e=e, q=q: q["run_per_step_us"] / e["run_per_step_us"], lim, _skip(q))
        if net == "L":
            _t(out, "#19", f"L {mode} step p50 / LiteRT dyn-range int8 p50",
               lambda q=q, ld=ld: q["step"]["p50_us"] / ld["step"]["p50_us"], 0.5,
               _skip(q, ld))
        if net == "S":
            _t(out, "#19", "S step p99.9 / LiteRT f32 p99.9 (absolute, same interleaved run)",
               lambda e=e, lf=lf: e["step"]["p99.9_us"] / lf["step"]["p99.9_us"], 0.5,
               _skip(lf))
        for label, mine, peer, other in (("edgernn", e, lf, "LiteRT f32"),
                                         ("edgernn int8", q, ld, "LiteRT drq")):
            pre = (f"preempted {mine['step']['preempted_per_1000']:.2f}/1000 steps"
                   if "step" in mine else _skip(mine))
            _t(out, "#8", f"{net} {label} step p99.9/p50",
               lambda m=mine: m["step"]["tail_ratio"], 2.0, pre)
            if "step" in peer:
                _t(out, "#8", f"{net} {label} p99.9/p50 vs {other}'s "
                   f"({peer['step']['tail_ratio']:.2f})", lambda m=mine: m["step"]["tail_ratio"],
                   peer["step"]["tail_ratio"],
                   f"{other} preempted {peer['step']['preempted_per_1000']:.2f}/1000")
        for label, r in (("float", e), ("int8", q)):
            a = r.get("allocations", {})
            _t(out, "#8", f"{net} {label} step(out=) Python blocks kept per step (< 0.01)",
               lambda a=a: a["net_blocks_per_step"], 0.01,
               f"peak transient {a.get('peak_transient_bytes')} B")
            nrt = a.get("nrt", {})
            _t(out, "#8", f"{net} {label} step(out=) NRT mallocs per step",
               lambda n=nrt: n["alloc_per_step"], 0.0, nrt.get("skipped", "NUMBA_NRT_STATS=1"))
    for row in res.get("layers", []):
        lo, hi = row["rtneural_bench_md_ns"]
        c = (f"vs C yardstick {row['edgernn_over_c']:.2f}" if "edgernn_over_c" in row else
             f"C yardstick skipped: {row.get('c_skipped')}")
        md = f"BENCH.md's RTNeural {lo}-{hi} ns: {row['edgernn_over_rtneural_bench_md']:.2f}"
        _t(out, "#19", f"{row['layer']} run / RTNeural run (same run, median of "
           f"{row['passes']} passes)", row.get("edgernn_over_rtneural"), 1.2,
           f"{c}; {md}" if "edgernn_over_rtneural" in row else
           f"RTNeural skipped: {row.get('rtneural_skipped')}; {c}; {md}")
    for net, kinds in res.get("batch", {}).items():
        for kind, rows in kinds.items():
            if isinstance(rows, str):
                _t(out, "#7", f"{net} {kind}", None, 0.3, rows)
                continue
            last = rows[-1]
            _t(out, "#7", f"{net} {kind} batch n={last['n']} per stream-step / n=1",
               last["ratio_to_n1"], 0.3)
    start = res.get("start", {})
    for label, v in start.items():
        if "cold" in v:
            _t(out, "#19", f"{label} cold start (empty cache), median of {v['cold']['n']}",
               v["cold"]["median_s"], 5.0, f"CPU {v['cold']['median_cpu_s']:.2f} s")
            ph = ", ".join(f"{k} {t:.3f}" for k, t in v["warm"].get("median_phases_s",
                                                                      {}).items())
            _t(out, "#19", f"{label} warm start, median of {v['warm']['n']}",
               v["warm"]["median_s"], 0.3, f"CPU {v['warm']['median_cpu_s']:.2f} s; {ph}")
            if "median_peak_rss_mb" in v["warm"]:
                peers = "; ".join(f"{k} {p['median_peak_rss_mb']:.0f} MB" if "skipped" not in p
                                  else f"{k}: {p['skipped'][:60]}"
                                  for k, p in v.get("peers", {}).items())
                _t(out, "#19", f"{label} warm-start process peak RSS, MB (import, load, step)",
                   v["warm"]["median_peak_rss_mb"], 60.0, peers)
    if "pi4_estimate" in start:
        p = start["pi4_estimate"]
        _t(out, "#8", "Raspberry Pi 4 cold start, ESTIMATE (x factor, see JSON)", p["cold_s"],
           5.0, f"range {p['range_s'][0]:.0f}-{p['range_s'][1]:.0f} s")
    for net, t in res.get("threads", {}).items():
        if isinstance(t, dict) and "step" in t:
            for kind in ("step", "run"):
                _t(out, "#7", f"{net} two threads / serial, {kind} ('clearly less': <= 0.75)",
                   t[kind]["ratio"], 0.75, f"{t['cpus_available']} CPUs")
    return out


def _f(v, fmt=".2f"):
    return "-" if v is None else format(v, fmt)


def print_all(res) -> None:
    m = res["meta"]
    if max(m["loadavg_start"][0], m["loadavg_end"][0]) > 0.5 * (m["cpus"] or 1):
        print(f"\nNOTE: this machine was shared (load average {m['loadavg_start'][0]:.1f} at "
              f"start, {m['loadavg_end'][0]:.1f} at end, {m['cpus']} CPUs): absolute times are "
              f"inflated and the p99.9 mostly measures preemption (see 'preempted' per "
              f"1000 steps); compare the ratios, and time final figures on an idle machine.")
    print(f"\n{m['cpu']} ({m['machine']}, {m['cpus']} CPUs; flags "
          f"{' '.join(m.get('flags', [])) or 'not recorded'}), Python {m['python']}; "
          f"load average {m['loadavg_start'][0]:.1f} at start, {m['loadavg_end'][0]:.1f} at end;"
          f" pinning: {m['pinning'].get('how', m['pinning'].get('why'))}; clock overhead "
          f"{m['clock_overhead_ns']:.0f} ns per sample (included)")
    print(f"\n{'net':<4}{'runtime':<14}{'p50 us':>9}{'p99':>9}{'p99.9':>10}{'p99.9/p50':>10}"
          f"{'run/step':>10}{'max|diff|':>11}{'n':>8}{'preempt/1k':>11}")
    for r in res["nets"]:
        print(f"{r['net']:<4}int8: {r['int8_made_by']}")
        for label, v in r["runtimes"].items():
            if "skipped" in v:
                print(f"{'':<4}{label:<14} skipped: {v['skipped']}")
                continue
            s = v["step"]
            print(f"{'':<4}{label:<14}{s['p50_us']:>9.2f}{s['p99_us']:>9.2f}{s['p99.9_us']:>10.2f}"
                  f"{s['tail_ratio']:>10.2f}{_f(v.get('run_per_step_us')):>10}"
                  f"{v['max_abs_diff_vs_torch']:>11.1e}{s['n']:>8}{s['preempted_per_1000']:>11.2f}"
                  + (f"  ({v['note']})" if "note" in v else ""))
    print_layers(res)
    for net, kinds in res.get("batch", {}).items():
        for kind, rows in kinds.items():
            if isinstance(rows, str):
                print(f"batch {net} {kind}: {rows}")
                continue
            cells = "  ".join(f"n={r['n']}: {r['per_stream_step_us']:.2f} us "
                              f"({r['ratio_to_n1']:.2f}x)" for r in rows)
            print(f"batch {net} {kind:<6}{cells}")
    for label, v in res.get("start", {}).items():
        if "skipped" in v:
            print(f"start {label}: skipped: {v['skipped']}")
        if "cold" in v:
            c, w = v["cold"], v["warm"]
            ph = median_run(c["runs"])["phases_s"]
            print(f"start {label:<8} cold {c['median_s']:.2f} s (CPU {c['median_cpu_s']:.2f}), "
                  f"warm {w['median_s']:.3f} s (CPU {w['median_cpu_s']:.3f}); cold phases: "
                  + ", ".join(f"{k} {t:.2f}" for k, t in ph.items()))
            kern = median_run(c["runs"])["kernels_s"]
            print("      cold kernels: " + ", ".join(
                f"{k} {t:.2f}" if isinstance(t, float) else f"{k} {t}" for k, t in kern.items()))
        elif label == "warmup_breakdown" and "steps_s" in v:
            print(f"edgernn warmup (all kernels), {v['total_s']:.1f} s (CPU {v['cpu_s']:.1f}): "
                  + ", ".join(f"{k} {t:.2f}" for k, t in v["steps_s"].items()))
    for net, t in res.get("threads", {}).items():
        if isinstance(t, dict) and "step" in t:
            print(f"threads {net}: step {t['step']['serial_s'] * 1e3:.1f} ms serial, "
                  f"{t['step']['threads_s'] * 1e3:.1f} ms threads ({t['step']['ratio']:.2f}); "
                  f"run {t['run']['ratio']:.2f}; a Python thread during run() runs at "
                  f"{t['python_thread_during_run']['ratio_to_alone']:.2f}x its idle rate")
        elif net == "skipped":
            print(f"threads: skipped: {t}")
    print(f"\n{'issue':<6}{'target':<62}{'value':>9}{'limit':>8}  result")
    for t in res["targets"]:
        ok = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        print(f"{t['issue']:<6}{t['target'][:61]:<62}{_f(t['value'], '.3g'):>9}"
              f"{t['limit']:>8.3g}  {ok}{'  (' + t['detail'] + ')' if t['detail'] else ''}")


def print_layers(res) -> None:
    """The single-layer table: ns per step, ratios (median of per-pass ratios, with their
    range), RTNeural's max |diff| vs torch, BENCH.md's RTNeural figures for context."""
    if not res.get("layers"):
        return
    print(f"\nC yardstick: {res.get('c_yardstick_build')}\nRTNeural: {res.get('rtneural_build')}")
    print(f"{'layer':<14}{'edgernn ns':>11}{'RTNeural ns':>12}{'C ns':>7}"
          f"{'/RTNeural':>10}{'(passes)':>13}{'/C':>6}{'RTN |diff|':>11}{'BENCH.md ns':>13}")
    for row in res["layers"]:
        lo, hi = row["rtneural_bench_md_ns"]
        rp = row.get("edgernn_over_rtneural_passes")
        spread = f"{min(rp):.2f}-{max(rp):.2f}" if rp else "-"
        print(f"{row['layer']:<14}{row['edgernn_run_ns']:>11.0f}"
              f"{_f(row.get('rtneural_ns'), '.0f'):>12}{_f(row.get('c_ns'), '.0f'):>7}"
              f"{_f(row.get('edgernn_over_rtneural')):>10}{spread:>13}"
              f"{_f(row.get('edgernn_over_c')):>6}"
              f"{_f(row.get('rtneural_max_abs_diff_vs_torch'), '.1e'):>11}{f'{lo}-{hi}':>13}")
        for k in ("rtneural", "c"):
            if f"{k}_skipped" in row:
                print(f"{'':<14}{k} skipped: {row[f'{k}_skipped']}")


def median_run(runs: list) -> dict:
    """The run whose total time is the median one (its phases are shown)."""
    return sorted(runs, key=lambda r: r["total_s"])[len(runs) // 2]


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def plot(res, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(16, 10))
    ax = ax.ravel()
    nets = res.get("nets", [])
    labels = sorted({k for r in nets for k, v in r["runtimes"].items() if "step" in v})
    w = 0.8 / max(1, len(labels))
    for i, lab in enumerate(labels):
        xs = np.arange(len(nets))
        p50 = [r["runtimes"].get(lab, {}).get("step", {}).get("p50_us", np.nan) for r in nets]
        p999 = [r["runtimes"].get(lab, {}).get("step", {}).get("p99.9_us", np.nan) for r in nets]
        ax[0].bar(xs + i * w, p50, w, label=lab)
        ax[0].scatter(xs + i * w, p999, marker="_", color="k", s=60)
    ax[0].set_xticks(np.arange(len(nets)) + 0.4 - w / 2, [r["net"] for r in nets])
    ax[0].set_yscale("log")
    ax[0].set_title("step from Python: p50 (bars), p99.9 (ticks), us")
    _legend(ax[0])
    rows = res.get("layers", [])
    if rows:
        x = np.arange(len(rows))
        ax[1].bar(x - 0.27, [r["edgernn_run_ns"] for r in rows], 0.27, label="edgernn run")
        ax[1].bar(x, [r.get("rtneural_ns", np.nan) for r in rows], 0.27,
                  label="RTNeural (same run)")
        ax[1].bar(x + 0.27, [r.get("c_ns", np.nan) for r in rows], 0.27,
                  label="plain C (same run)")
        ax[1].set_xticks(x, [r["layer"] for r in rows], rotation=30, fontsize=7)
        ax[1].set_yscale("log")
        ax[1].set_title("single layer, ns per step")
        _legend(ax[1])
    for net, kinds in res.get("batch", {}).items():
        for kind, b in kinds.items():
            if isinstance(b, str):
                continue
            ax[2].plot([r["n"] for r in b], [r["ratio_to_n1"] for r in b], "o-",
                       label=f"{net} {kind}")
    ax[2].axhline(0.3, color="r", ls="--", lw=1, label="target 0.3")
    ax[2].set_xscale("log", base=2)
    ax[2].set_title("batched streams: per stream-step / n=1")
    _legend(ax[2])
    start = {k: v for k, v in res.get("start", {}).items() if "cold" in v}
    for i, v in enumerate(start.values()):
        bottom = 0.0
        for j, (ph, t) in enumerate(median_run(v["cold"]["runs"])["phases_s"].items()):
            ax[3].bar(i, t, 0.6, bottom=bottom, color=f"C{j}", label=ph if i == 0 else None)
            bottom += t
        ax[3].bar(i + 0.35, v["warm"]["median_s"], 0.2, color="k",
                  label="warm (median)" if i == 0 else None)
    ax[3].axhline(5, color="r", ls="--", lw=1)
    ax[3].set_xticks(range(len(start)), list(start))
    ax[3].set_title("cold start phases (median run, empty cache), s; target 5 s")
    _legend(ax[3])
    th = {k: v for k, v in res.get("threads", {}).items() if isinstance(v, dict) and "step" in v}
    names = [f"{n} {k}" for n in th for k in ("step", "run")]
    ax[4].bar(range(len(names)), [th[n.split()[0]][n.split()[1]]["ratio"] for n in names], 0.6)
    ax[4].axhline(0.5, color="g", ls=":", lw=1, label="ideal on 2 free cores")
    ax[4].axhline(0.75, color="r", ls="--", lw=1, label="'clearly less' (0.75)")
    ax[4].set_xticks(range(len(names)), names)
    ax[4].set_ylim(0, 1.2)
    ax[4].set_title("two streams in two threads: time / serial time")
    _legend(ax[4])
    tg = res.get("targets", [])
    ax[5].axis("off")
    txt = "\n".join(f"{'ok ' if t['met'] else ('-- ' if t['met'] is None else 'XX ')}"
                    f"{t['target'][:48]}: {_f(t['value'], '.3g')} (<= {t['limit']:.3g})"
                    for t in tg)
    ax[5].text(-0.05, 1.02, txt, va="top", family="monospace", fontsize=4.6,
               transform=ax[5].transAxes)
    ax[5].set_title("targets (ok met, XX missed)")
    m = res["meta"]
    fig.suptitle(f"edgernn bench {m['date']}: {m['cpu']}, load {m['loadavg_start'][0]:.1f}"
                 f"->{m['loadavg_end'][0]:.1f}, pinned {m['pinning'].get('cpu', 'no')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(res) -> str:
    """The README's Speed tables from one run's JSON."""
    m, lines = res["meta"], []
    lines.append(f"`{m.get('command', 'bench/step_latency.py')}` on {m['date']}: {m['cpu']} "
                 f"({m['machine']}, {m['cpus']} CPUs; flags "
                 f"{' '.join(m.get('flags', [])) or 'not recorded'}), Python {m['python']}, pinned "
                 f"{m['pinning'].get('how', 'no')}; load average {m['loadavg_start'][0]:.1f} "
                 f"at start, {m['loadavg_end'][0]:.1f} at end.\n")
    lines.append("| net | runtime | p50 us | p99 us | p99.9 us | p99.9/p50 | run us/step | "
                 "max abs diff vs torch |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in res["nets"]:
        for label, v in r["runtimes"].items():
            if "skipped" in v:
                lines.append(f"| {r['net']} | {label} | skipped: {v['skipped'][:60]} |||||")
                continue
            s = v["step"]
            note = f" ({v['note']})" if "note" in v else ""
            lines.append(f"| {r['net']} | {label}{note} | {s['p50_us']:.2f} | {s['p99_us']:.2f} | "
                         f"{s['p99.9_us']:.1f} | {s['tail_ratio']:.1f} | "
                         f"{_f(v.get('run_per_step_us'))} | {v['max_abs_diff_vs_torch']:.1e} |")
    if res.get("layers"):
        lines.append("\n| layer | edgernn `run` ns | RTNeural ns (same run) | plain C ns "
                     "(same run) | edgernn / RTNeural (passes) | edgernn / C | RTNeural ns "
                     "(BENCH.md) |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- |")
        for row in res["layers"]:
            lo, hi = row["rtneural_bench_md_ns"]
            rp = row.get("edgernn_over_rtneural_passes")
            spread = f" ({min(rp):.2f}-{max(rp):.2f})" if rp else ""
            lines.append(f"| {row['layer']} | {row['edgernn_run_ns']:.0f} | "
                         f"{_f(row.get('rtneural_ns'), '.0f')} | {_f(row.get('c_ns'), '.0f')} | "
                         f"{_f(row.get('edgernn_over_rtneural'))}{spread} | "
                         f"{_f(row.get('edgernn_over_c'))} | {lo}-{hi} |")
    if res.get("batch"):
        lines.append("\n| batch, per stream-step us (ratio to n=1) | n=1 | n=4 | n=16 | n=64 |")
        lines.append("| --- | --- | --- | --- | --- |")
        for net, kinds in res["batch"].items():
            for kind, rows in kinds.items():
                if isinstance(rows, str):
                    continue
                lines.append(f"| {net} {kind} | " + " | ".join(
                    f"{r['per_stream_step_us']:.2f} ({r['ratio_to_n1']:.2f})" for r in rows) + " |")
    start = {k: v for k, v in res.get("start", {}).items() if "cold" in v}
    if start:
        lines.append("\n| start (import + load + first step) | cold, empty cache s (CPU s) | "
                     "warm s (CPU s) |")
        lines.append("| --- | --- | --- |")
        for label, v in start.items():
            c, w = v["cold"], v["warm"]
            lines.append(f"| {label} | {c['median_s']:.2f} ({c['median_cpu_s']:.2f}) | "
                         f"{w['median_s']:.3f} ({w['median_cpu_s']:.3f}) |")
    lines.append("\n| issue | target | value | limit | result |")
    lines.append("| --- | --- | --- | --- | --- |")
    for t in res["targets"]:
        ok = {True: "met", False: "**missed**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['issue']} | {t['target']} | {_f(t['value'], '.3g')} | "
                     f"{t['limit']:.3g} | {ok} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    print(markdown(json.loads(open(sys.argv[1]).read())))
