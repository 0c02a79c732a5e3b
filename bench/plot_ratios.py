#!/usr/bin/env python3
"""Chart of encrypted vs plaintext throughput by value size, as SVG.

Reads one or more JSON documents written by `coffer-bench --json` (typically
`--compare none,coffer` and `--compare rocksdb-ctr,coffer` runs at several
value sizes and tenant counts) and draws, per workload, grouped bars of the
median ops/sec of each mode for each (value size, tenants) configuration,
labelled with the median-of-pairs ratio coffer/none (and coffer/rocksdb-ctr)
that coffer-bench printed. Standard library only.

It also prints a Markdown table of the same figures to stdout: per file,
workload and mode pair the throughput ratio (median of pairs, min, max), the
median ops/sec of each side, and the ratio of median P50 latencies (A/B, so
above 1 means B is faster), which a stalled run moves less than throughput.

Usage: python3 bench/plot_ratios.py OUT.svg RESULT.json [RESULT.json ...]

An input that cannot be read or is not such a document, or an OUT.svg that
cannot be written, is a one-line error on stderr and exit status 1 (2 for a
usage error); nothing is written then.
"""

import json
import os
import statistics
import sys
from xml.sax.saxutils import escape

MODE_ORDER = ["none", "coffer", "rocksdb-ctr"]
MODE_LABEL = {"none": "plaintext (none)", "coffer": "Coffer (encrypted)",
              "rocksdb-ctr": "RocksDB CTR, per-block AES"}
MODE_COLOR = {"none": "#9e9e9e", "coffer": "#1f6fb4", "rocksdb-ctr": "#e08a2c"}


def size_label(n):
    if n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} B"


class InputError(Exception):
    """A RESULT.json that cannot be read or is not coffer-bench's."""


def read_docs(paths):
    """Returns [(path, parsed JSON)]; raises InputError naming the file."""
    docs = []
    for path in paths:
        try:
            with open(path) as f:
                docs.append((path, json.load(f)))
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
        except ValueError as e:  # json.JSONDecodeError
            raise InputError(f"cannot read {path}: not JSON ({e})") from None
    return docs


def load(docs):
    """Returns ops[(workload, config)][mode] -> [ops/sec] and ratios."""
    ops, ratios, configs, workloads = {}, {}, [], []
    for _, doc in docs:
        opts = doc["options"]
        config = (opts["value_size"], opts["tenants"])
        if config not in configs:
            configs.append(config)
        # Coffer's bar comes from its runs paired with plaintext, so that it
        # and the plaintext bar are the two sides of one printed ratio.
        paired_with_none = "none" in opts["modes"]
        for run in doc["runs"]:
            w = run["workload"]
            if w not in workloads:
                workloads.append(w)
            mode = run["mode"]
            if mode == "coffer" and not paired_with_none:
                mode = "coffer-vs-ctr"
            ops.setdefault((w, config), {}).setdefault(mode, []).append(
                run["ops_per_sec"])
        for r in doc.get("ratios", []):
            ratios[(r["workload"], config, r["a"], r["b"])] = r["median"]
    configs.sort()
    return ops, ratios, configs, workloads


def nice_max(v):
    if v <= 0:
        return 1
    step = 10 ** (len(str(int(v))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * step:
            return m * step
    return 10 * step


def fmt_ops(v):
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e3:
        return f"{v / 1e3:.0f}k"
    return f"{v:.0f}"


def panel(out, x0, y0, w, h, workload, ops, ratios, configs, modes):
    """Draws one workload's bars inside the box (x0, y0, w, h)."""
    left, bottom, top = 64, 58, 34
    plot_w, plot_h = w - left - 10, h - bottom - top
    px, py = x0 + left, y0 + top
    medians = {}
    for c in configs:
        for m in modes:
            per_mode = ops.get((workload, c), {})
            vals = per_mode.get(m)
            if m == "coffer" and not vals:  # no plaintext pairing: use any
                vals = per_mode.get("coffer-vs-ctr")
            if vals:
                medians[(c, m)] = statistics.median(vals)
    vmax = nice_max(max(medians.values(), default=1) * 1.15)
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + 20}" class="title">'
               f'{escape(workload)}: median ops/sec by value size, tenants</text>')
    for i in range(6):  # grid and y ticks
        v = vmax * i / 5
        y = py + plot_h - plot_h * i / 5
        out.append(f'<line x1="{px}" y1="{y:.1f}" x2="{px + plot_w}" y2="{y:.1f}" '
                   f'class="grid"/>')
        out.append(f'<text x="{px - 6}" y="{y + 4:.1f}" class="ytick">{fmt_ops(v)}</text>')
    group_w = plot_w / max(len(configs), 1)
    bar_w = min(44, group_w * 0.8 / max(len(modes), 1))
    for gi, c in enumerate(configs):
        gx = px + gi * group_w + (group_w - bar_w * len(modes)) / 2
        for mi, m in enumerate(modes):
            v = medians.get((c, m))
            if v is None:
                continue
            bh = plot_h * v / vmax
            bx, by = gx + mi * bar_w, py + plot_h - bh
            out.append(f'<rect x="{bx:.1f}" y="{by:.1f}" width="{bar_w - 3:.1f}" '
                       f'height="{bh:.1f}" fill="{MODE_COLOR[m]}">'
                       f'<title>{escape(m)}: {v:.0f} ops/sec</title></rect>')
            label = None
            if m == "coffer":
                r = ratios.get((workload, c, "none", "coffer"))
                label = f"{r:.2f}x" if r is not None else None
            elif m == "rocksdb-ctr":
                r = ratios.get((workload, c, "rocksdb-ctr", "coffer"))
                label = f"C {r:.2f}x" if r is not None else None
            if label:
                out.append(f'<text x="{bx + (bar_w - 3) / 2:.1f}" y="{by - 4:.1f}" '
                           f'class="ratio">{escape(label)}</text>')
        value_size, tenants = c
        cx = px + gi * group_w + group_w / 2
        out.append(f'<text x="{cx:.1f}" y="{py + plot_h + 18}" class="xtick">'
                   f'{size_label(value_size)}</text>')
        out.append(f'<text x="{cx:.1f}" y="{py + plot_h + 34}" class="xtick2">'
                   f'{tenants} tenant{"s" if tenants != 1 else ""}</text>')
    out.append(f'<line x1="{px}" y1="{py + plot_h}" x2="{px + plot_w}" '
               f'y2="{py + plot_h}" class="axis"/>')


def table(docs):
    """Markdown rows: one per file, workload and compared pair."""
    rows = ["| workload | value | tenants | B/A | ratio B/A (median) | min | max "
            "| ops/sec A | ops/sec B | P50 latency A/B |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for _, doc in docs:
        opts = doc["options"]
        for r in doc.get("ratios", []):
            p50 = {m: statistics.median(run["p50_us"] for run in doc["runs"]
                                        if run["workload"] == r["workload"]
                                        and run["mode"] == m)
                   for m in (r["a"], r["b"])}
            rows.append(
                f"| {r['workload']} | {size_label(opts['value_size'])} | "
                f"{opts['tenants']} | {r['b']}/{r['a']} | **{r['median']:.3f}** | "
                f"{r['min']:.3f} | {r['max']:.3f} | {r['a_ops_per_sec_median']:.0f} | "
                f"{r['b_ops_per_sec_median']:.0f} | "
                f"{p50[r['a']] / p50[r['b']]:.3f} |")
    return "\n".join(rows)


def check_docs(docs):
    """Raises InputError naming the first file load() or table() cannot use."""
    for path, doc in docs:
        try:
            load([(path, doc)])
            table([(path, doc)])
        except (KeyError, IndexError, TypeError, AttributeError, ValueError,
                ArithmeticError) as e:
            what = f"no {e}" if isinstance(e, KeyError) else str(e)
            raise InputError(f"cannot read {path}: not a coffer-bench --json "
                             f"document ({what})") from None


def main(argv):
    usage = "usage: python3 bench/plot_ratios.py OUT.svg RESULT.json [RESULT.json ...]"
    if len(argv) > 1 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) < 3:
        print(f"plot_ratios.py: {usage}", file=sys.stderr)
        return 2
    out_path, paths = argv[1], argv[2:]
    try:
        docs = read_docs(paths)
        check_docs(docs)
    except InputError as e:
        print(f"plot_ratios.py: {e}", file=sys.stderr)
        return 1
    ops, ratios, configs, workloads = load(docs)
    modes = [m for m in MODE_ORDER
             if any(m in per_mode or (m == "coffer" and "coffer-vs-ctr" in per_mode)
                    for per_mode in ops.values())]
    panel_w = max(420, 120 * len(configs) + 90)
    panel_h = 360
    width = panel_w * len(workloads) + 20
    height = panel_h + 70
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
           '<style>.title{font-size:14px;font-weight:bold;text-anchor:middle}'
           '.ytick{font-size:11px;text-anchor:end;fill:#333}'
           '.xtick{font-size:12px;text-anchor:middle}'
           '.xtick2{font-size:11px;text-anchor:middle;fill:#555}'
           '.ratio{font-size:11px;text-anchor:middle;fill:#000}'
           '.legend{font-size:12px}.note{font-size:11px;fill:#555}'
           '.grid{stroke:#e4e4e4;stroke-width:1}.axis{stroke:#333;stroke-width:1}'
           '</style>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>']
    for i, w in enumerate(workloads):
        panel(out, 10 + i * panel_w, 0, panel_w, panel_h, w, ops, ratios,
              configs, modes)
    lx = 20
    for m in modes:
        out.append(f'<rect x="{lx}" y="{panel_h + 12}" width="14" height="14" '
                   f'fill="{MODE_COLOR[m]}"/>')
        out.append(f'<text x="{lx + 20}" y="{panel_h + 24}" class="legend">'
                   f'{escape(MODE_LABEL[m])}</text>')
        lx += 40 + 8 * len(MODE_LABEL[m])
    out.append(f'<text x="20" y="{panel_h + 50}" class="note">Bars: median ops/sec. '
               'Label over a Coffer bar: coffer/none, over a RocksDB CTR bar: '
               'coffer/rocksdb-ctr (\u201cC\u201d), each the median of alternating '
               'pairs; the CTR baseline ran in its own paired runs against Coffer.'
               '</text>')
    out.append('</svg>')
    try:
        with open(out_path, "w") as f:
            f.write("\n".join(out) + "\n")
    except OSError as e:
        print(f"plot_ratios.py: cannot write {out_path}: {e.strerror or e}",
              file=sys.stderr)
        return 1
    try:
        print(table(docs), flush=True)
    except BrokenPipeError:
        # The reader went away (say, `| head`): not this tool's error. Point
        # stdout at /dev/null so that the exit's flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
