#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# torchvision peer timings written as Google-Benchmark-compatible JSON (the same benchmark names
# as cvk_bench, "peer": "torchvision"), so benchmarks/report.py puts both in one table.
# SPDX-License-Identifier: MIT
"""Time torchvision.ops on the inputs cvk_bench uses and write Google Benchmark JSON.

Each op is one function decorated with @op(...): it receives (case, dtype, generator) and
returns a zero-argument callable to time. Adding box_iou or nms is one more such function.

Names follow cvk_bench: ``op/torchvision/type/key:value/.../threads:T``; only the median,
mean and stddev aggregates of the repetitions are written, as
``--benchmark_report_aggregates_only=true`` does.
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import sys
import time

# Same sizes as benchmarks/common.hpp (box_counts).
BOX_COUNTS = (1_000, 100_000, 1_000_000)
DTYPES = ("float", "double")
SEED = 2019

OPS = []


def op(name, cases, description, items=None, impl="torchvision", dtypes=DTYPES):
    """Registers a benchmark: `cases` is a list of dicts of name parameters (in name order);
    `items(case)` is the work per call (default: the case's N), reported as items_per_second;
    `impl` the implementation part of the names ("torch" for torch's own operators)."""

    def register(setup):
        OPS.append({"name": name, "cases": cases, "description": description, "setup": setup,
                    "items": items or (lambda case: case.get("N")), "impl": impl,
                    "dtypes": dtypes})
        return setup

    return register


def torch_dtype(torch, type_name):
    return {"float": torch.float32, "double": torch.float64}[type_name]


def random_boxes(torch, n, dtype, generator):
    """n xyxy boxes, corners in [0, 1000), sides in [1, 100) (as benchmarks/common.hpp)."""
    corners = torch.rand((n, 2), generator=generator, dtype=dtype) * 1000
    sides = 1 + torch.rand((n, 2), generator=generator, dtype=dtype) * 99
    return torch.cat([corners, corners + sides], dim=1).contiguous()


@op("box_area", [{"N": n} for n in BOX_COUNTS], "torchvision.ops.box_area(boxes), xyxy")
def bench_box_area(torch, ops, case, dtype, generator):
    boxes = random_boxes(torch, case["N"], dtype, generator)
    return lambda: ops.box_area(boxes)


@op("box_convert", [{"N": n} for n in BOX_COUNTS],
    "torchvision.ops.box_convert(boxes, 'xyxy', 'cxcywh')")
def bench_box_convert(torch, ops, case, dtype, generator):
    boxes = random_boxes(torch, case["N"], dtype, generator)
    return lambda: ops.box_convert(boxes, in_fmt="xyxy", out_fmt="cxcywh")


# nms scenes: the same as benchmarks/bench_nms.cpp (IoU threshold 0.5).
NMS_CASES = [{"N": n} for n in (1_000, 10_000, 50_000)]


def uniform_nms_scene(torch, n, dtype, generator):
    """n boxes on a 1000×1000 image, sides in [1, 50), uniform scores."""
    corners = torch.rand((n, 2), generator=generator, dtype=dtype) * 1000
    sides = 1 + torch.rand((n, 2), generator=generator, dtype=dtype) * 49
    scores = torch.rand(n, generator=generator, dtype=dtype)
    return torch.cat([corners, corners + sides], dim=1).contiguous(), scores


# The pairwise IoU family at N = M (as benchmarks/bench_box_iou.cpp); items are box pairs.
IOU_CASES = [{"N": n} for n in (100, 1000, 4000)]


def pairwise_op(name):
    @op(name, IOU_CASES, f"torchvision.ops.{name}(boxes1, boxes2), N×N pairs",
        items=lambda case: case["N"] ** 2)
    def bench(torch, ops, case, dtype, generator):
        first = random_boxes(torch, case["N"], dtype, generator)
        second = random_boxes(torch, case["N"], dtype, generator)
        fn = getattr(ops, name)
        return lambda: fn(first, second)

    return bench


for _iou_name in ("box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou"):
    pairwise_op(_iou_name)


@op("nms", NMS_CASES, "torchvision.ops.nms(boxes, scores, 0.5), uniform boxes, sides 1-50")
def bench_nms(torch, ops, case, dtype, generator):
    boxes, scores = uniform_nms_scene(torch, case["N"], dtype, generator)
    return lambda: ops.nms(boxes, scores, 0.5)


@op("nms_shelf", [{"N": 30_000}],
    "torchvision.ops.nms(boxes, scores, 0.5), 150 objects x 200 jittered candidates")
def bench_nms_shelf(torch, ops, case, dtype, generator):
    per_object = case["N"] // 150
    index = torch.arange(150, dtype=dtype)
    cx = (40 + 65 * (index % 15)).repeat_interleave(per_object)
    cy = (50 + 95 * torch.div(index, 15, rounding_mode="floor")).repeat_interleave(per_object)
    noise = torch.randn((case["N"], 4), generator=generator, dtype=dtype)
    w = 60 * torch.exp(0.1 * noise[:, 0])
    h = 90 * torch.exp(0.1 * noise[:, 1])
    x = cx + 6 * noise[:, 2]
    y = cy + 9 * noise[:, 3]
    boxes = torch.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], dim=1).contiguous()
    scores = torch.rand(case["N"], generator=generator, dtype=dtype)
    return lambda: ops.nms(boxes, scores, 0.5)


@op("nms_overlapping", [{"N": 2_000}],
    "torchvision.ops.nms(boxes, scores, 0.5), every box contains the image centre")
def bench_nms_overlapping(torch, ops, case, dtype, generator):
    n = case["N"]
    extents = 1 + torch.rand((n, 4), generator=generator, dtype=dtype) * 199
    boxes = torch.cat([500 - extents[:, :2], 500 + extents[:, 2:]], dim=1).contiguous()
    scores = torch.rand(n, generator=generator, dtype=dtype)
    return lambda: ops.nms(boxes, scores, 0.5)


@op("batched_nms", [{"N": 10_000}],
    "torchvision.ops.batched_nms(boxes, scores, classes, 0.5), uniform boxes, 80 classes")
def bench_batched_nms(torch, ops, case, dtype, generator):
    boxes, scores = uniform_nms_scene(torch, case["N"], dtype, generator)
    classes = torch.randint(0, 80, (case["N"],), generator=generator)
    return lambda: ops.batched_nms(boxes, scores, classes, 0.5)


# conv2d: the shapes of benchmarks/bench_conv.cpp (issue 10), same ids; torch's convolution on
# channels_last (NHWC) tensors, which torch 1.13 runs through its oneDNN (mkldnn) build.
# id: (in channels, image size, out channels, groups, kernel, stride), "same" padding.
CONV_SHAPES = {
    "dense3x3_c64_56": (64, 56, 64, 1, 3, 1),
    "resnext_g32x2_c64_56": (64, 56, 64, 32, 3, 1),
    "resnext_g32x4_c128_56": (128, 56, 128, 32, 3, 1),
    "resnext_g32x8_c256_28": (256, 28, 256, 32, 3, 1),
    "resnext_g32x16_c512_14": (512, 14, 512, 32, 3, 1),
    "resnext_g32x32_c1024_7": (1024, 7, 1024, 32, 3, 1),
    "shufflenet_g3_1x1_c240to60_28": (240, 28, 60, 3, 1, 1),
    "shufflenet_g3_1x1_c60to240_28": (60, 28, 240, 3, 1, 1),
    "shufflenet_g8_1x1_c384to96_28": (384, 28, 96, 8, 1, 1),
    "shufflenet_g8_1x1_c96to384_28": (96, 28, 384, 8, 1, 1),
    "mobilenet1_dw_s1_c128_56": (128, 56, 128, 128, 3, 1),
    "mobilenet1_dw_s2_c128_56": (128, 56, 128, 128, 3, 2),
    "mobilenet1_dw_s2_c256_28": (256, 28, 256, 256, 3, 2),
    "mobilenet1_dw_s1_c512_14": (512, 14, 512, 512, 3, 1),
    "mobilenet2_dw_s1_c144_56": (144, 56, 144, 144, 3, 1),
    "mobilenet2_dw_s2_c144_56": (144, 56, 144, 144, 3, 2),
}
CONV_BATCH8 = ("dense3x3_c64_56", "resnext_g32x4_c128_56", "mobilenet1_dw_s1_c128_56")
CONV_CASES = [{"shape": shape, "batch": batch} for shape in CONV_SHAPES
              for batch in ((1, 8) if shape in CONV_BATCH8 else (1,))]


def conv_flops(case):
    """2 FLOPs per multiply-add, as bench_conv.cpp counts them."""
    channels, size, out, groups, kernel, stride = CONV_SHAPES[case["shape"]]
    out_size = (size + 2 * (kernel // 2) - kernel) // stride + 1
    return 2 * case["batch"] * out_size * out_size * out * (channels // groups) * kernel * kernel


@op("conv2d", CONV_CASES, "torch.nn.functional.conv2d, channels_last (NHWC), bias",
    items=conv_flops, impl="torch", dtypes=("float",))
def bench_conv2d(torch, ops, case, dtype, generator):
    del ops
    channels, size, out, groups, kernel, stride = CONV_SHAPES[case["shape"]]
    nhwc = torch.channels_last
    x = torch.rand((case["batch"], channels, size, size), generator=generator,
                   dtype=dtype).contiguous(memory_format=nhwc)
    w = torch.rand((out, channels // groups, kernel, kernel), generator=generator,
                   dtype=dtype).contiguous(memory_format=nhwc)
    b = torch.rand(out, generator=generator, dtype=dtype)
    conv = torch.nn.functional.conv2d
    return lambda: conv(x, w, b, stride=stride, padding=kernel // 2, groups=groups)


# Pooling and channel shuffle: the cases of benchmarks/bench_pool.cpp (same ids and items), NCHW
# and channels_last (NHWC). id: (channels, image size); windows 3×3 stride 2 padding 1.
POOL_SHAPES = {"resnet_stem_c64_112": (64, 112), "shufflenet_c240_28": (240, 28),
               "resnet_head_c2048_7": (2048, 7), "shufflenet_g3_c240_28": (240, 28)}


def pool_cases(shape):
    return [{"shape": shape, "batch": 1, "layout": layout} for layout in ("nchw", "nhwc")]


def pool_elements(case, pooled):
    """Elements of the input (pooled=False) or of the 3×3 s2 p1 output (adaptive: 1×1)."""
    channels, size = POOL_SHAPES[case["shape"]]
    if pooled:
        size = 1 if case["shape"] == "resnet_head_c2048_7" else (size + 2 - 3) // 2 + 1
    return case["batch"] * channels * size * size


def pool_input(torch, case, dtype, generator, pooled=False):
    channels, size = POOL_SHAPES[case["shape"]]
    if pooled:
        size = (size + 2 - 3) // 2 + 1
    x = torch.rand((case["batch"], channels, size, size), generator=generator, dtype=dtype) * 2 - 1
    memory_format = torch.channels_last if case["layout"] == "nhwc" else torch.contiguous_format
    return x.contiguous(memory_format=memory_format)


def pool_op(name, shape, description, body, pooled_items=True):
    """Registers one pooling row set; body(torch, F, x, dy) returns the callable to time."""

    @op(name, pool_cases(shape), description, impl="torch", dtypes=("float",),
        items=lambda case: pool_elements(case, pooled_items))
    def bench(torch, ops, case, dtype, generator):
        del ops
        x = pool_input(torch, case, dtype, generator)
        dy = pool_input(torch, case, dtype, generator, pooled=True)
        return body(torch, torch.nn.functional, x, dy)

    return bench


pool_op("max_pool2d", "resnet_stem_c64_112", "F.max_pool2d(x, 3, 2, 1); items = output elements",
        lambda torch, F, x, dy: lambda: F.max_pool2d(x, 3, 2, 1))
pool_op("max_pool2d_with_indices", "resnet_stem_c64_112",
        "F.max_pool2d(x, 3, 2, 1, return_indices=True); items = output elements",
        lambda torch, F, x, dy: lambda: F.max_pool2d(x, 3, 2, 1, return_indices=True))


def _max_backward(torch, F, x, dy):
    _, indices = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    backward = torch.ops.aten.max_pool2d_with_indices_backward
    return lambda: backward(dy, x, [3, 3], [2, 2], [1, 1], [1, 1], False, indices)


pool_op("max_pool2d_backward", "resnet_stem_c64_112",
        "aten.max_pool2d_with_indices_backward, 3×3 s2 p1; items = grad_input elements",
        _max_backward, pooled_items=False)
pool_op("avg_pool2d", "shufflenet_c240_28",
        "F.avg_pool2d(x, 3, 2, 1, count_include_pad=False); items = output elements",
        lambda torch, F, x, dy: lambda: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False))
pool_op("avg_pool2d_backward", "shufflenet_c240_28",
        "aten.avg_pool2d_backward, 3×3 s2 p1, count_include_pad=False; "
        "items = grad_input elements",
        lambda torch, F, x, dy: lambda: torch.ops.aten.avg_pool2d_backward(
            dy, x, [3, 3], [2, 2], [1, 1], False, False, None), pooled_items=False)
pool_op("adaptive_avg_pool2d", "resnet_head_c2048_7",
        "F.adaptive_avg_pool2d(x, 1); items = output elements",
        lambda torch, F, x, dy: lambda: F.adaptive_avg_pool2d(x, 1))


@op("channel_shuffle", pool_cases("shufflenet_g3_c240_28"),
    "torch.channel_shuffle(x, 3); items = bytes read + written", impl="torch", dtypes=("float",),
    items=lambda case: 2 * 4 * pool_elements(case, False))
def bench_channel_shuffle(torch, ops, case, dtype, generator):
    del ops
    x = pool_input(torch, case, dtype, generator)
    return lambda: torch.channel_shuffle(x, 3)


# deform_conv2d: the shape of benchmarks/bench_deform_conv.cpp (issue 13), same names and items;
# torchvision's CPU kernel (NCHW, its only layout), forward through torchvision.ops.deform_conv2d
# and backward through the kernel's own op (torchvision::_deform_conv2d_backward: every
# gradient, as cvk's deform_conv2d_backward computes them). Offsets uniform in [-2, 2), mask in
# [0, 1), padding 1, one offset group.
DEFORM_CASES = [{"shape": "c64_56_k3", "batch": 1, "mask": mask} for mask in (0, 1)]
DEFORM_SHAPE = (64, 56, 64, 3)  # in channels, image size, out channels, kernel


def deform_flops(case):
    """2 FLOPs per multiply-add of the 1×1 GEMM, as bench_deform_conv.cpp counts them."""
    channels, size, out, kernel = DEFORM_SHAPE
    return 2 * case["batch"] * size * size * out * channels * kernel * kernel


def deform_inputs(torch, case, dtype, generator):
    channels, size, out, kernel = DEFORM_SHAPE
    taps = kernel * kernel
    n = case["batch"]
    x = torch.rand((n, channels, size, size), generator=generator, dtype=dtype) * 2 - 1
    offset = torch.rand((n, 2 * taps, size, size), generator=generator, dtype=dtype) * 4 - 2
    mask = torch.rand((n, taps, size, size), generator=generator, dtype=dtype)
    weight = (torch.rand((out, channels, kernel, kernel), generator=generator, dtype=dtype) * 0.2
              - 0.1)
    bias = torch.rand(out, generator=generator, dtype=dtype) * 2 - 1
    grad = torch.rand((n, out, size, size), generator=generator, dtype=dtype) * 2 - 1
    return x, offset, (mask if case["mask"] else None), weight, bias, grad


@op("deform_conv2d", DEFORM_CASES, "torchvision.ops.deform_conv2d, NCHW, bias, padding 1",
    items=deform_flops, dtypes=("float",))
def bench_deform_conv2d(torch, ops, case, dtype, generator):
    x, offset, mask, weight, bias, _ = deform_inputs(torch, case, dtype, generator)
    return lambda: ops.deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)


@op("deform_conv2d_backward", DEFORM_CASES,
    "torchvision::_deform_conv2d_backward (input, offset, mask, weight, bias), NCHW, padding 1",
    items=lambda case: 2 * deform_flops(case), dtypes=("float",))
def bench_deform_conv2d_backward(torch, ops, case, dtype, generator):
    del ops
    x, offset, mask, weight, bias, grad = deform_inputs(torch, case, dtype, generator)
    use_mask = mask is not None
    if mask is None:
        mask = torch.ones((x.shape[0], 9, x.shape[2], x.shape[3]), dtype=dtype)
    backward = torch.ops.torchvision._deform_conv2d_backward
    return lambda: backward(grad, x, weight, offset, mask, bias, 1, 1, 1, 1, 1, 1, 1, 1, use_mask)


# explain_cnn_train_step: the network of examples/support/shapes_network.hpp in torch (NCHW
# float32, torch's CPU convolutions), one SGD step (momentum 0.9, weight decay 5e-4) on a batch of
# 32 40×40 images: the same name and items (images) as benchmarks/bench_explain_cnn.cpp.
def explain_cnn_model(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, groups=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.Conv2d(32, 64, 1), nn.BatchNorm2d(64),
        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 4))


@op("explain_cnn_train_step", [{"batch": 32}],
    "examples/support/shapes_network.hpp's layers in torch.nn, NCHW, one SGD step",
    items=lambda case: case["batch"], impl="torch", dtypes=("float",))
def bench_explain_cnn_train_step(torch, ops, case, dtype, generator):
    del ops
    torch.manual_seed(SEED)
    model = explain_cnn_model(torch).to(dtype)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand((case["batch"], 3, 40, 40), generator=generator, dtype=dtype)
    y = torch.randint(0, 4, (case["batch"],), generator=generator)
    loss_fn = torch.nn.functional.cross_entropy

    def step():
        with torch.inference_mode(False), torch.enable_grad():  # timed under inference_mode
            optimiser.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimiser.step()

    return step


def time_repetitions(fn, repetitions, min_time):
    """Per-call wall and CPU seconds of each repetition; each runs at least `min_time` seconds."""
    fn()  # warm-up: allocator, lazy initialisation
    iterations = 1
    while True:  # calibrate as Google Benchmark does: grow until one batch lasts min_time
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            break
        scale = 10 if elapsed <= 0 else min(10.0, max(1.4, 1.4 * min_time / elapsed))
        iterations = max(iterations + 1, int(iterations * scale))
    runs = []
    for _ in range(repetitions):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(iterations):
            fn()
        runs.append(((time.perf_counter() - wall) / iterations,
                     (time.process_time() - cpu) / iterations))
    return iterations, runs


def bench_name(op_name, type_name, case, threads, impl="torchvision"):
    params = "".join(f"/{key}:{value}" for key, value in case.items())
    return f"{op_name}/{impl}/{type_name}{params}/threads:{threads}"


def aggregates(name, description, items, runs, repetitions, label):
    """Google Benchmark aggregate entries (median, mean, stddev) for one benchmark."""
    walls = [wall for wall, _ in runs]
    cpus = [cpu for _, cpu in runs]
    entries = []
    for aggregate, reduce in (("median", statistics.median), ("mean", statistics.fmean),
                              ("stddev", lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0)):
        wall, cpu = reduce(walls), reduce(cpus)
        entry = {
            "name": f"{name}/real_time_{aggregate}",
            "run_name": f"{name}/real_time",
            "run_type": "aggregate",
            "repetitions": repetitions,
            "threads": 1,
            "aggregate_name": aggregate,
            "aggregate_unit": "time",
            "iterations": repetitions,
            "real_time": wall * 1e6,
            "cpu_time": cpu * 1e6,
            "time_unit": "us",
            "label": f"{description} [{label}]",
            "peer": "torchvision",
        }
        if items is not None and aggregate != "stddev" and wall > 0:
            entry["items_per_second"] = items / wall
        entries.append(entry)
    return entries


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            fields = {}
            for line in cpuinfo:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown"
    model = fields.get("model name", "unknown")
    if "cpu family" in fields and "model" in fields:
        model += f" (family {fields['cpu family']}, model {fields['model']})"
    return model


def torch_build(torch):
    """How the installed torch was built: compiler, CPU capability, parallel backend."""
    parts = []
    try:
        for line in torch.__config__.show().splitlines():
            line = line.strip().lstrip("- ").strip()
            if line.startswith(("GCC", "clang", "MSVC")) or line.startswith("CPU capability"):
                parts.append(line)
        for line in torch.__config__.parallel_info().splitlines():
            if line.startswith("ATen parallel backend"):
                parts.append(line.strip())
    except (AttributeError, RuntimeError):
        pass
    return f"torch {torch.__version__}" + (f" ({'; '.join(parts)})" if parts else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.05,
                        help="seconds each repetition runs at least")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch.set_num_threads values")
    parser.add_argument("--filter", default="",
                        help="run only the benchmarks whose name matches this regular expression")
    args = parser.parse_args()

    try:
        import torch
        import torchvision
        from torchvision import ops
    except ImportError as missing:
        print(f"torchvision_bench.py: {missing}; skipping the torchvision peer "
              "(Debian: apt-get install python3-torchvision)")
        return 0

    label = f"torchvision {torchvision.__version__}, torch {torch.__version__}"
    benchmarks = []
    for spec in OPS:
        for threads in args.threads:
            torch.set_num_threads(threads)
            for type_name in spec["dtypes"]:
                for case in spec["cases"]:
                    name = bench_name(spec["name"], type_name, case, threads, spec["impl"])
                    if args.filter and not re.search(args.filter, name):
                        continue
                    generator = torch.Generator().manual_seed(SEED)
                    fn = spec["setup"](torch, ops, case, torch_dtype(torch, type_name), generator)
                    with torch.inference_mode():
                        _, runs = time_repetitions(fn, args.repetitions, args.min_time)
                    entries = aggregates(name, spec["description"], spec["items"](case), runs, args.repetitions,
                                         label)
                    benchmarks.extend(entries)
                    median = entries[0]
                    print(f"{name:<52} {median['real_time']:12.3f} us "
                          f"{median.get('items_per_second', 0) / 1e6:10.1f} M items/s", flush=True)

    context = {
        "date": datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(
            timespec="seconds"),
        "host_name": platform.node(),
        "executable": os.path.abspath(__file__),
        "num_cpus": os.cpu_count(),
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
        "library_build_type": "release",
        "cpu_model": cpu_model(),
        "cvk_variant": "torchvision",
        "cvk_peers": label,
        "cvk_flags": f"Python {platform.python_version()}, {label}, "
                     f"torch.set_num_threads({' and '.join(str(t) for t in args.threads)})",
        "cvk_compiler": torch_build(torch),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump({"context": context, "benchmarks": benchmarks}, out, indent=2)
    print(f"torchvision_bench.py: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
