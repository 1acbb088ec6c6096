#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Turns Google Benchmark JSON (cvk_bench, cvk_bench_portable, torchvision_bench.py) into
# docs/benchmarks.md and, when matplotlib is importable, docs/benchmarks.png. Stdlib only.
# SPDX-License-Identifier: MIT
"""Write docs/benchmarks.md (and a throughput plot) from Google Benchmark JSON files.

Run the benchmarks with --benchmark_repetitions=N --benchmark_report_aggregates_only=true so
that median aggregates exist; every figure in the report is such a median, read from the JSON.

Benchmark names follow ``op/impl/type/key:value/.../threads:T`` (benchmarks/common.hpp); the
JSON context's ``cvk_variant`` (native, portable, torchvision) tells the builds apart.
"""

import argparse
import json
import os
import sys
from collections import OrderedDict

# Tokens Google Benchmark appends to a name; they are settings, not parameters.
GB_BARE_TOKENS = {"real_time", "manual_time", "process_time"}
GB_KEYED_TOKENS = {"min_time", "min_warmup_time", "iterations", "repeats"}

IMPL_NAMES = {"cvk": "cvk", "loop": "plain loop", "opencv": "OpenCV", "onednn": "oneDNN",
              "dnnl": "oneDNN", "xnnpack": "XNNPACK", "torchvision": "torchvision",
              "torch": "torch"}
TYPE_ORDER = {"float": 0, "double": 1}
# A median whose repetitions have a larger coefficient of variation is marked as noisy.
NOISY_CV = 0.10
# The scene:<id> key of the *_adversarial benchmarks (benchmarks/common.hpp,
# adversarial_scene_names): the id's name, and the scene each one is compared with.
ADVERSARIAL_SCENES = ["uniform", "zeros", "nans", "far_outlier", "thin_strips", "one_nan"]


def parse_name(name):
    """'box_area/cvk/float/N:1000/threads:1/real_time' -> (op, impl, type, params, threads)."""
    parts = name.split("/")
    if len(parts) < 2:
        return None
    op, impl, type_name, params, threads = parts[0], parts[1], "", OrderedDict(), 1
    for token in parts[2:]:
        key, sep, value = token.partition(":")
        if not sep:
            if token not in GB_BARE_TOKENS and not type_name:
                type_name = token
            continue
        if key in GB_KEYED_TOKENS:
            continue
        if key == "threads":
            threads = int(value)
        else:
            params[key] = value
    return op, impl, type_name, params, threads


class Column:
    """One series of the report: an implementation as built in one run (native, portable...)."""

    def __init__(self, impl, variant):
        self.impl, self.variant = impl, variant

    @property
    def key(self):
        return (self.impl, self.variant)

    @property
    def title(self):
        name = IMPL_NAMES.get(self.impl, self.impl)
        if self.impl == "cvk":
            return f"cvk {self.variant}"
        if self.variant.startswith("portable"):
            return f"{name} ({self.variant})"
        return name

    @property
    def order(self):
        first = {"cvk": 0, "loop": 1}.get(self.impl, 2)
        return (first, 0 if self.variant == "native" else 1, self.impl)


def load_runs(paths):
    """Reads every file; returns (runs, results). results: op -> row -> column key -> entry."""
    runs, results, columns = [], OrderedDict(), {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        context = data.get("context", {})
        variant = context.get("cvk_variant") or os.path.splitext(os.path.basename(path))[0]
        if any(run["variant"] == variant for run in runs):  # e.g. two portable builds
            variant += f" ({os.path.splitext(os.path.basename(path))[0]})"
        entries = data.get("benchmarks", [])
        medians = [e for e in entries if e.get("aggregate_name") == "median"]
        spread = {}  # run name -> {"mean": entry, "stddev": entry}
        for e in entries:
            if e.get("aggregate_name") in ("mean", "stddev"):
                spread.setdefault(e.get("run_name"), {})[e["aggregate_name"]] = e
        if not medians:
            print(f"report.py: {path} has no median aggregates (run with "
                  "--benchmark_repetitions=N --benchmark_report_aggregates_only=true); "
                  "using single runs", file=sys.stderr)
            medians = [e for e in entries if e.get("run_type", "iteration") == "iteration"]
        repetitions = max((e.get("repetitions", 1) for e in medians), default=0)
        runs.append({"path": path, "context": context, "variant": variant,
                     "count": len(medians), "repetitions": repetitions})
        for entry in medians:
            if entry.get("error_occurred"):
                print(f"report.py: {entry['name']}: {entry.get('error_message', 'error')}",
                      file=sys.stderr)
                continue
            parsed = parse_name(entry.get("run_name") or entry["name"])
            if parsed is None:
                continue
            both = spread.get(entry.get("run_name"), {})
            if "mean" in both and "stddev" in both and both["mean"].get("real_time"):
                entry = dict(entry, cvk_cv=both["stddev"]["real_time"] / both["mean"]["real_time"])
            op, impl, type_name, params, threads = parsed
            column = columns.setdefault((impl, variant), Column(impl, variant))
            row = (type_name, tuple(params.items()), threads)
            results.setdefault(op, OrderedDict()).setdefault(row, {})[column.key] = entry
    return runs, results, columns


def seconds(entry):
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[entry.get("time_unit", "ns")]
    return entry["real_time"] * scale


def throughput(entry):
    """Items per second when the benchmark counts items, else None."""
    value = entry.get("items_per_second")
    return float(value) if value else None


def si(value):
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g} "


def compact_count(text):
    """'1000000' -> '1M', '100000' -> '100k'; anything else unchanged."""
    try:
        value = int(text)
    except ValueError:
        return text
    for factor, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if value >= factor and value % factor == 0:
            return f"{value // factor}{suffix}"
    return str(value)


def numeric(text):
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def row_sort_key(row):
    type_name, params, threads = row
    return (TYPE_ORDER.get(type_name, len(TYPE_ORDER)), type_name, threads,
            tuple(numeric(value) for _, value in params))


def primary_cvk(columns_here):
    """The cvk column the ratios use: the native build when there is one."""
    mine = [c for c in columns_here if c.impl == "cvk"]
    native = [c for c in mine if c.variant == "native"]
    return (native or mine or [None])[0]


def op_table(op, rows, columns):
    """Markdown lines for one op."""
    keys = {key for cells in rows.values() for key in cells}
    columns_here = sorted((columns[key] for key in keys), key=lambda c: c.order)
    cvk = primary_cvk(columns_here)
    peers = [c for c in columns_here if c.impl != "cvk"]
    uses_items = all(throughput(e) is not None for cells in rows.values() for e in cells.values())
    param_names = []
    for _, params, _ in rows:
        for key, _ in params:
            if key not in param_names:
                param_names.append(key)

    unit = "items/s (higher is better)" if uses_items else "ms per call (lower is better)"
    lines = [f"## {op}", ""]
    lines.append(f"Median {unit}. Ratio columns: {cvk.title if cvk else 'cvk'} ÷ the other, "
                 "in throughput (above 1: cvk is faster); — where one side was not measured.")
    lines.append("")
    adversarial = op.endswith("_adversarial") and "scene" in param_names and cvk is not None
    header = ["type"] + param_names + ["threads"] + [c.title for c in columns_here]
    header += [f"cvk ÷ {c.title}" for c in peers] if cvk else []
    if adversarial:
        lines[-2] = (f"Median {unit}, per scene of N boxes (benchmarks/common.hpp, "
                     "adversarial_scene): all-zero padding boxes, all-NaN boxes, one box at 1e9, "
                     "half the boxes long thin strips, one NaN box, against the uniform scene. "
                     "Last column: the scene's time per box ÷ the uniform scene's (issue 9: a "
                     "small factor).")
        header.append("time ÷ uniform")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * (1 + len(param_names) + 1)
                                + ["---:"] * (len(header) - len(param_names) - 2)) + "|")
    single_thread_fallback = False
    any_noisy = False
    for row in sorted(rows, key=row_sort_key):
        type_name, params, threads = row
        cells = rows[row]
        param_map = dict(params)
        line = [type_name or "—"] + [compact_count(param_map.get(k, "—")) for k in param_names]
        if adversarial:
            scene_column = 1 + param_names.index("scene")
            scene_id = param_map.get("scene", "")
            if scene_id.isdigit() and int(scene_id) < len(ADVERSARIAL_SCENES):
                line[scene_column] = f"{scene_id} {ADVERSARIAL_SCENES[int(scene_id)]}"
        line.append(str(threads))
        for column in columns_here:
            entry = cells.get(column.key)
            if entry is None:
                line.append("—")
                continue
            noisy = entry.get("cvk_cv", 0.0) > NOISY_CV
            any_noisy = any_noisy or noisy
            text = f"{si(throughput(entry))}/s" if uses_items else f"{seconds(entry) * 1e3:.3g} ms"
            line.append(text + ("*" if noisy else ""))
        if cvk:
            mine, mark = cells.get(cvk.key), ""
            if mine is None and threads != 1:
                # cvk measured only single-threaded here: compare that figure, marked.
                mine = rows.get((type_name, params, 1), {}).get(cvk.key)
                mark = "†" if mine is not None else ""
                single_thread_fallback = single_thread_fallback or bool(mark)
            for peer in peers:
                theirs = cells.get(peer.key)
                if mine is None or theirs is None:
                    line.append("—")
                elif uses_items:
                    line.append(f"{throughput(mine) / throughput(theirs):.2f}×{mark}")
                else:
                    line.append(f"{seconds(theirs) / seconds(mine):.2f}×{mark}")
        if adversarial:
            base_params = tuple((k, "0" if k == "scene" else v) for k, v in params)
            base = rows.get((type_name, base_params, threads), {}).get(cvk.key)
            mine = cells.get(cvk.key)
            if base is None or mine is None or not throughput(mine) or not throughput(base):
                line.append("—")
            else:
                line.append(f"{throughput(base) / throughput(mine):.2f}×")
        lines.append("| " + " | ".join(line) + " |")
    lines.append("")
    if any_noisy:
        lines += noisy_note()
    if single_thread_fallback:
        lines.append(f"† {cvk.title} was measured single-threaded only for this row's input; the "
                     "ratio compares that 1-thread figure with the other's figure at this thread "
                     "count.")
        lines.append("")
    labels = OrderedDict()  # column title -> its distinct labels
    for column in columns_here:
        for row in sorted(rows, key=row_sort_key):
            entry = rows[row].get(column.key)
            if entry and entry.get("label"):
                texts = labels.setdefault(column.title, [])
                if entry["label"] not in texts:
                    texts.append(entry["label"])
    by_text = OrderedDict()  # columns with the same labels share one line
    for title, texts in labels.items():
        by_text.setdefault(tuple(texts), []).append(title)
    for texts, titles in by_text.items():
        lines.append(f"- **{', '.join(titles)}**: " + "; ".join(f"`{t}`" for t in texts))
    lines.append("")
    return lines


# Convolutions (benchmarks/bench_conv.cpp): ops whose rows are FLOP/s, printed as GFLOP/s and as
# a fraction of the FMA peak that fma_peak/machine/float/threads:T measured in the same run.
CONV_OP_PREFIX = "conv2d"
PEAK_OP = "fma_peak"
# Implementations that count as a peer for the "cvk ÷ best peer" targets.
CONV_PEERS = ("onednn", "dnnl", "xnnpack", "torch")


def is_conv_op(op):
    return op == CONV_OP_PREFIX or op.startswith(CONV_OP_PREFIX + "_")


def fma_peaks(results):
    """threads -> (FLOP/s, label): the highest fma_peak figure of any build at that count (the
    portable build's peak is a narrower ISA's, not the machine's)."""
    peaks = {}
    for (_, _, threads), cells in results.get(PEAK_OP, {}).items():
        for entry in cells.values():
            value = throughput(entry)
            if value and value > peaks.get(threads, (0.0, ""))[0]:
                peaks[threads] = (value, entry.get("label", ""))
    return peaks


def conv_geometry(cells):
    """The shape counters bench_conv.cpp records, from any entry of the row that has them."""
    for entry in cells.values():
        if "groups" in entry and "in_channels" in entry:
            return {key: int(entry[key]) for key in ("in_channels", "out_channels", "groups",
                                                      "kernel", "stride", "height")
                    if key in entry}
    return None


def conv_target(op, geometry):
    """The issue-10 target for cvk ÷ the best peer, or None (the dense 3×3 is a reference)."""
    if geometry is None:
        return None
    groups = geometry["groups"]
    per_group = geometry["in_channels"] // groups
    if groups == 1:
        return None
    if op != CONV_OP_PREFIX:  # backward: at least 0.8× of oneDNN's backward
        return 0.8
    if per_group == 1 and geometry["out_channels"] == geometry["in_channels"]:
        return 0.9  # depthwise
    if per_group <= 2:
        return 3.0
    if per_group <= 4:
        return 1.5
    if per_group < 16:
        return 1.0
    return 0.9


def describe_conv(geometry):
    """'128→128, g 32 (4/group), 3×3 s1, 56²'."""
    if geometry is None:
        return "—"
    g, c = geometry["groups"], geometry["in_channels"]
    groups = "dense" if g == 1 else ("depthwise" if c == g else f"g {g} ({c // g}/group)")
    k = geometry["kernel"]
    return (f"{c}→{geometry['out_channels']}, {groups}, {k}×{k} s{geometry['stride']}, "
            f"{geometry['height']}²")


def conv_kernel_names(cells, columns, cvk):
    """'cvk generic_nhwc; oneDNN gemm:jit': the kernel each implementation ran, from the labels
    (the primary cvk build's and the peers' that say more than their name)."""
    names = []
    for key in sorted(cells, key=lambda k: columns[k].order):
        if columns[key].impl == "cvk" and (cvk is None or key != cvk.key):
            continue
        label = cells[key].get("label", "")
        # XNNPACK's and torch's labels name the call only; a one-word label says nothing.
        if " " not in label or label.startswith(("XNNPACK", "torch")):
            continue
        if label not in names:
            names.append(label)
    return "; ".join(names) or "—"


def figure_cell(entry, format_value):
    """One implementation's figure in a table: format_value(items/s), '*' when its repetitions
    were noisy; '—' where it was not measured or counts no items. Returns (text, noisy)."""
    if entry is None or throughput(entry) is None:
        return "—", False
    noisy = entry.get("cvk_cv", 0.0) > NOISY_CV
    return format_value(throughput(entry)) + ("*" if noisy else ""), noisy


def noisy_note():
    return [f"\\* the repetitions of this figure varied by more than {NOISY_CV:.0%} "
            "(standard deviation over mean): a noisy measurement.", ""]


def conv_table(op, rows, columns, peaks):
    """Markdown lines for a convolution op: GFLOP/s and % of the FMA peak per implementation,
    cvk ÷ each peer, and the issue's target on cvk ÷ the best peer."""
    keys = {key for cells in rows.values() for key in cells}
    columns_here = sorted((columns[key] for key in keys), key=lambda c: c.order)
    cvk = primary_cvk(columns_here)
    peers = [c for c in columns_here if c.impl in CONV_PEERS]
    lines = [f"## {op}", ""]
    if peaks:
        described = ", ".join(f"{threads} thread{'s' if threads > 1 else ''} "
                              f"{value / 1e9:.0f} GFLOP/s" for threads, (value, _)
                              in sorted(peaks.items()))
        isa = next(iter(peaks.values()))[1]
        lines.append(f"Median GFLOP/s (2 FLOPs per multiply-add; higher is better) and, in "
                     f"brackets, the fraction of the FMA peak that `fma_peak` measured in the "
                     f"same run at the same thread count ({described}; {isa}). NHWC float, "
                     "weights packed and primitives created outside the timing, bias included.")
    else:
        lines.append("Median GFLOP/s (2 FLOPs per multiply-add; higher is better); no `fma_peak` "
                     "row in this run, so no fraction of the peak.")
    lines.append("")
    if op == CONV_OP_PREFIX:
        targets = ("on cvk ÷ the best peer: ≥ 3× at 2 channels per group, ≥ 1.5× at 4, ≥ 1.0× "
                   "at 8 (and between 8 and 16), ≥ 0.9× at 16 or more and depthwise")
    else:
        targets = "≥ 0.8× of oneDNN's backward"
    lines.append(f"Ratios: {cvk.title if cvk else 'cvk'} ÷ the peer in throughput (above 1: cvk "
                 f"is faster). Target (issue 10) {targets}; the dense 3×3 is a reference without "
                 "a target. `met` compares the target with the smallest ratio of the row.")
    lines.append("")
    header = ["shape", "layer", "batch", "threads"] + [c.title for c in columns_here]
    header += [f"cvk ÷ {c.title}" for c in peers] if cvk else []
    header += ["target", "met", "kernels"] if cvk else ["kernels"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 4 + ["---:"] * (len(header) - 5) + ["---"]) + "|")
    any_noisy = False
    met_count, target_count = 0, 0

    # Rows in the order the benchmark registered its shapes (JSON order), then batch, threads.
    shape_order = []
    for _, params, _ in rows:
        shape = dict(params).get("shape", "")
        if shape not in shape_order:
            shape_order.append(shape)
    ordered = sorted(rows, key=lambda row: (shape_order.index(dict(row[1]).get("shape", "")),
                                            numeric(dict(row[1]).get("batch", "0")), row[2]))
    for row in ordered:
        _, params, threads = row
        cells = rows[row]
        values = dict(params)
        geometry = conv_geometry(cells)
        line = [f"`{values.get('shape', '—')}`", describe_conv(geometry), values.get("batch", "—"),
                str(threads)]
        peak = peaks.get(threads, (None, ""))[0]
        for column in columns_here:
            entry = cells.get(column.key)
            text, noisy = figure_cell(entry, lambda flops: f"{flops / 1e9:.1f}")
            any_noisy = any_noisy or noisy
            if peak and text != "—":
                text += f" ({throughput(entry) / peak:.0%})"
            line.append(text)
        if cvk:
            mine = cells.get(cvk.key)
            best = None
            for peer in peers:
                theirs = cells.get(peer.key)
                if mine is None or theirs is None:
                    line.append("—")
                    continue
                value = ratio(mine, theirs)
                line.append(f"{value:.2f}×")
                if op == CONV_OP_PREFIX or peer.impl in ("onednn", "dnnl"):
                    best = value if best is None else min(best, value)
            target = conv_target(op, geometry)
            if target is None:
                line += ["—", "—"]
            else:
                line.append(f"≥ {target:.1f}×")
                if best is None:
                    line.append("—")
                else:
                    target_count += 1
                    met_count += best >= target
                    line.append("yes" if best >= target else f"no ({best:.2f}×)")
        line.append(conv_kernel_names(cells, columns, cvk).replace("|", "\\|"))
        lines.append("| " + " | ".join(line) + " |")
    lines.append("")
    if target_count:
        lines.append(f"Targets met on {met_count} of {target_count} rows (cvk ÷ the best peer "
                     "measured in the row).")
        lines.append("")
    if any_noisy:
        lines += noisy_note()
    return lines


# Pooling and channel shuffle (benchmarks/bench_pool.cpp, torchvision_bench.py): one table for
# all of them, rows in the benchmark's registration order. Items differ per operator (output
# elements, grad_input elements, bytes for the shuffle), so each row names its unit.
POOL_OPS = ("max_pool2d", "max_pool2d_with_indices", "max_pool2d_backward", "avg_pool2d",
            "avg_pool2d_backward", "adaptive_avg_pool2d", "channel_shuffle")
POOL_ITEMS = {"max_pool2d_backward": "grad_input elements",
              "avg_pool2d_backward": "grad_input elements", "channel_shuffle": "bytes"}


def pool_table(results, columns):
    """Markdown lines for the pooling and channel-shuffle rows: items/s per implementation and
    cvk ÷ each peer."""
    ops = [op for op in POOL_OPS if op in results]
    keys = {key for op in ops for cells in results[op].values() for key in cells}
    columns_here = sorted((columns[key] for key in keys), key=lambda c: c.order)
    cvk = primary_cvk(columns_here)
    peers = [c for c in columns_here if c.impl != "cvk"]
    lines = ["## Pooling and channel shuffle", ""]
    lines.append("Median items/s (higher is better); the items are the output's elements, "
                 "grad_input's for the backward passes and bytes read + written for "
                 "channel_shuffle (the `items` column). Float, batch 1; the same NCHW or NHWC "
                 "memory for every implementation. Ratio columns: "
                 f"{cvk.title if cvk else 'cvk'} ÷ the other in throughput (above 1: cvk is "
                 "faster); — where one side was not measured.")
    lines.append("")
    header = ["operator", "shape", "layout", "threads", "items"] + [c.title for c in columns_here]
    header += [f"cvk ÷ {c.title}" for c in peers] if cvk else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 5 + ["---:"] * (len(header) - 5)) + "|")
    any_noisy = False
    for op in ops:
        rows = results[op]
        order = []  # (shape, layout) in JSON order, then threads
        for _, params, _ in rows:
            values = dict(params)
            if (values.get("shape"), values.get("layout")) not in order:
                order.append((values.get("shape"), values.get("layout")))
        for row in sorted(rows, key=lambda r: (order.index((dict(r[1]).get("shape"),
                                                            dict(r[1]).get("layout"))), r[2])):
            _, params, threads = row
            cells, values = rows[row], dict(params)
            line = [op, f"`{values.get('shape', '—')}`", values.get("layout", "—"), str(threads),
                    POOL_ITEMS.get(op, "output elements")]
            for column in columns_here:
                text, noisy = figure_cell(cells.get(column.key), lambda v: f"{si(v)}/s")
                any_noisy = any_noisy or noisy
                line.append(text)
            if cvk:
                mine = cells.get(cvk.key)
                for peer in peers:
                    theirs = cells.get(peer.key)
                    line.append("—" if mine is None or theirs is None
                                else f"{ratio(mine, theirs):.2f}×")
            lines.append("| " + " | ".join(line) + " |")
    lines.append("")
    if any_noisy:
        lines += noisy_note()
    kernels = OrderedDict()  # oneDNN's kernel names, from the labels
    for op in ops:
        for cells in results[op].values():
            for key, entry in cells.items():
                label = entry.get("label", "")
                if columns[key].impl in ("onednn", "dnnl") and label:
                    kernels.setdefault(label.split(";")[0], None)
    if kernels:
        lines.append("- **oneDNN kernels**: " + "; ".join(f"`{k}`" for k in kernels))
        lines.append("")
    return lines


def ratio(mine, theirs):
    """cvk ÷ the other, in throughput (above 1: cvk is faster)."""
    if throughput(mine) is not None and throughput(theirs) is not None:
        return throughput(mine) / throughput(theirs)
    return seconds(theirs) / seconds(mine)


def summary_lines(runs, results, columns):
    """A short text table: per operator and per other implementation, the median of cvk ÷ the
    other over the rows both measured (same type, parameters and threads), with the range."""
    lines = []
    context = runs[0]["context"] if runs else {}
    lines.append(f"cvk ÷ each peer, per operator (throughput ratio, above 1: cvk is faster); "
                 f"{context.get('cpu_model', 'unknown CPU')}, "
                 f"{max(r['repetitions'] for r in runs)} repetition(s), medians")
    table = [("operator", "versus", "rows", "median ratio", "range")]
    for op, rows in results.items():
        keys = {key for cells in rows.values() for key in cells}
        columns_here = sorted((columns[key] for key in keys), key=lambda c: c.order)
        cvk = primary_cvk(columns_here)
        others = [c for c in columns_here if c.impl != "cvk"]
        if cvk is None:
            continue
        if not others:
            table.append((op, "(cvk only)", str(sum(cvk.key in c for c in rows.values())), "—",
                          "—"))
            continue
        for other in others:
            ratios = sorted(ratio(cells[cvk.key], cells[other.key]) for cells in rows.values()
                            if cvk.key in cells and other.key in cells)
            if not ratios:
                table.append((op, other.title, "0", "—", "—"))
                continue
            middle = len(ratios) // 2
            median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
            table.append((op, other.title, str(len(ratios)), f"{median:.3g}×",
                          f"{ratios[0]:.3g}× – {ratios[-1]:.3g}×"))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for index, row in enumerate(table):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def machine_section(runs):
    lines = []
    reference = next((r["context"] for r in runs if r["context"].get("cvk_variant") != "torchvision"),
                     runs[0]["context"] if runs else {})
    cpu = reference.get("cpu_model", "unknown")
    cores = reference.get("num_cpus", "?")
    mhz = reference.get("mhz_per_cpu")
    lines.append(f"- **CPU**: {cpu}, {cores} logical CPUs"
                 + (f" at {mhz} MHz" if mhz else ""))
    if reference.get("cpu_isa"):
        lines.append(f"- **ISA**: {reference['cpu_isa']}")
    caches = reference.get("caches") or []
    if caches:
        described = ", ".join(f"L{c['level']} {c['type'].lower()} {c['size'] // 1024} KiB"
                              for c in caches)
        lines.append(f"- **caches**: {described}")
    lines.append(f"- **host**: {reference.get('host_name', 'unknown')}")
    lines.append("")
    lines.append("| run | date | compiler | flags | build | OpenMP | peers | repetitions | "
                 "load average |")
    lines.append("|---|---|---|---|---|---|---|---:|---|")
    for run in runs:
        ctx = run["context"]
        load = ctx.get("load_avg")
        load_text = " / ".join(f"{x:.2f}" for x in load) if load else "—"
        build = ctx.get("cvk_build_type", "—")
        if ctx.get("library_build_type") and run["variant"] != "torchvision":
            build += f" (libbenchmark: {ctx['library_build_type']})"
        cells = [run["variant"], ctx.get("date", "—"), ctx.get("cvk_compiler", "—"),
                 f"`{ctx['cvk_flags']}`" if ctx.get("cvk_flags") else "—", build,
                 ctx.get("cvk_openmp", "—"), ctx.get("cvk_peers", "—"),
                 str(run["repetitions"]), load_text]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    return lines


def write_plot(results, columns, path):
    """A log-log throughput plot per op (x: the N parameter). False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    # Only ops measured at two sizes or more make a curve.
    ops = [op for op, rows in results.items()
           if len({dict(params).get("N") for _, params, _ in rows} - {None}) >= 2]
    if not ops:
        return False
    ncols = min(2, len(ops))
    nrows = (len(ops) + ncols - 1) // ncols
    colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    color_index = {key: i for i, key in enumerate(
        sorted(columns, key=lambda k: columns[k].order))}
    figure, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 4.5 * nrows), squeeze=False)
    for index, op in enumerate(ops):
        axis = axes[index // ncols][index % ncols]
        series = OrderedDict()
        for row, cells in results[op].items():
            type_name, params, threads = row
            others = tuple((k, v) for k, v in params if k != "N")
            n = dict(params).get("N")
            if n is None:
                continue
            for key, entry in cells.items():
                value = throughput(entry)
                if value is None:
                    continue
                series.setdefault((columns[key].order, key, TYPE_ORDER.get(type_name, 9),
                                   type_name, threads, others), []).append((float(n), value))
        for (_, key, _, type_name, threads, others), points in sorted(series.items()):
            points.sort()
            label = f"{columns[key].title}, {type_name}, {threads} thr"
            if others:
                label += ", " + ", ".join(f"{k}={v}" for k, v in others)
            # Colour: the implementation; line style: the type; marker: the thread count.
            axis.plot([p[0] for p in points], [p[1] for p in points],
                      color=colours[color_index[key] % len(colours)],
                      marker={1: "o", 2: "s"}.get(threads, "^"), markersize=4,
                      linestyle="-" if type_name == "float" else "--", label=label)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(op)
        axis.set_xlabel("N")
        axis.set_ylabel("items/s (median)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=6, ncol=2)
    for index in range(len(ops), nrows * ncols):
        axes[index // ncols][index % ncols].axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", help="Google Benchmark JSON files")
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument("--png", default=None,
                        help="plot to write (default: next to --out, .png); 'none' to skip")
    parser.add_argument("--summary", action="store_true",
                        help="print a short table (cvk ÷ each peer, per operator) instead of "
                             "writing the report")
    args = parser.parse_args()

    paths = [p for p in args.json if os.path.exists(p)]
    for missing in sorted(set(args.json) - set(paths)):
        print(f"report.py: {missing} not found, skipped", file=sys.stderr)
    if not paths:
        print("report.py: no benchmark JSON to report", file=sys.stderr)
        return 1
    runs, results, columns = load_runs(paths)
    if not results:
        print("report.py: the JSON files hold no benchmarks", file=sys.stderr)
        return 1
    if args.summary:
        print("\n".join(summary_lines(runs, results, columns)))
        return 0

    png = args.png if args.png is not None else os.path.splitext(args.out)[0] + ".png"
    plotted = False
    if png != "none":
        os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
        plotted = write_plot(results, columns, png)
        if plotted:
            print(f"report.py: wrote {png}")
        else:
            print(f"report.py: matplotlib is not importable; skipped {png}")

    lines = ["# Benchmarks", ""]
    lines.append("<!-- Generated by benchmarks/report.py from Google Benchmark JSON; do not edit. "
                 "Regenerate with scripts/examples_and_benchmarks.sh. -->")
    lines.append("")
    lines.append("Every figure below is the median of the repetitions recorded in the JSON of one "
                 "run of `scripts/examples_and_benchmarks.sh` on the machine described here: "
                 "`cvk_bench` (native flags), `cvk_bench_portable` (the compiler's default "
                 "x86-64 target) and, when torch is installed, "
                 "`benchmarks/torchvision_bench.py`. The machine is shared, so small "
                 "differences (under about 10%) are noise; the load average at the start of "
                 "each run is listed.")
    lines.append("")
    lines.append("## Machine and builds")
    lines.append("")
    lines += machine_section(runs)
    if plotted:
        relative = os.path.relpath(os.path.abspath(png), os.path.dirname(os.path.abspath(args.out)))
        lines.append(f"![Throughput per operator]({relative})")
        lines.append("")
    peaks = fma_peaks(results)
    pool_written = False
    for op, rows in results.items():
        if op == PEAK_OP:
            continue  # printed in the convolution tables' captions
        if op in POOL_OPS:
            if not pool_written:  # one table for every pooling operator, where the first is
                lines += pool_table(results, columns)
                pool_written = True
            continue
        lines += conv_table(op, rows, columns, peaks) if is_conv_op(op) else op_table(
            op, rows, columns)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write("\n".join(lines).rstrip() + "\n")
    print(f"report.py: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
