#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Writes tests/data/nms_torchvision.txt: torchvision 0.14's nms and batched_nms on random scenes
# and adversarial inputs (score ties, identical boxes, IoU exactly at the threshold, zero-area
# boxes, negative coordinates), float32 and float64, at several IoU thresholds. Needs Debian's
# python3-torchvision (run with /usr/bin/python3); CI never runs it.
# SPDX-License-Identifier: MIT
import pathlib

import numpy as np
import torch
import torchvision
from torchvision import ops

from gen_fixtures import write_table as write_rows  # same directory: the shared table writer

SEED = 20190618
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
THRESHOLDS = (0.0, 0.3, 0.45, 0.5, 0.7, 1.0)


def write_table(out, name, tensor, dtype):
    """write_rows, plus tables with no rows (an empty input, nothing kept)."""
    if tensor.shape[0] == 0:
        cols = tensor.shape[1] if tensor.dim() > 1 else 1
        out.write(f"table {name} 0 {cols}\n")
    else:
        write_rows(out, name, tensor, dtype)


def uniform_scene(rng, n, canvas=1000.0, lo=1.0, hi=50.0, origin=0.0):
    corners = rng.uniform(origin, origin + canvas, size=(n, 2))
    sides = rng.uniform(lo, hi, size=(n, 2))
    return np.concatenate([corners, corners + sides], axis=1), rng.uniform(0, 1, size=n)


def cluster_scene(rng, objects, per_object, jitter=0.1):
    centres = rng.uniform(0, 500, size=(objects, 2))
    sizes = rng.uniform(10, 60, size=(objects, 2))
    boxes = []
    for c, s in zip(centres, sizes):
        for _ in range(per_object):
            cc = c + rng.normal(0, jitter, size=2) * s
            ss = s * np.exp(rng.normal(0, jitter, size=2))
            boxes.append([cc[0] - ss[0] / 2, cc[1] - ss[1] / 2, cc[0] + ss[0] / 2, cc[1] + ss[1] / 2])
    return np.array(boxes), rng.uniform(0, 1, size=len(boxes))


def overlapping_scene(rng, n):
    # every box contains the point (500, 500)
    left = rng.uniform(1, 200, size=(n, 2))
    right = rng.uniform(1, 200, size=(n, 2))
    boxes = np.concatenate([500 - left, 500 + right], axis=1)
    return boxes, rng.uniform(0, 1, size=n)


def exact_threshold_scene():
    # IoU exactly 0.5, 0.3, 0.7 and 1 in float32 and float64 (all values dyadic).
    boxes = [
        [0, 0, 2, 1], [0, 0, 1, 1],            # IoU 1/2
        [10, 0, 20, 10], [10, 0, 20, 3],       # IoU 3/10 (0.3 is not dyadic: compared in double)
        [30, 0, 40, 10], [30, 0, 40, 7],       # IoU 7/10
        [50, 0, 54, 4], [50, 0, 54, 4],        # IoU 1 (identical)
        [60, 0, 64, 4], [62, 0, 66, 4],        # IoU 1/3
        [-8, -8, -4, -6], [-8, -8, -6, -6],    # IoU 1/2, negative coordinates
        [70, 0, 72.5, 1], [70, 0, 71.25, 1],   # IoU 1/2
    ]
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05, 0.04, 0.03, 0.02]
    return np.array(boxes, dtype=np.float64), np.array(scores)


def ties_scene(rng):
    boxes, _ = cluster_scene(rng, 6, 12, jitter=0.15)
    scores = rng.integers(0, 4, size=len(boxes)) / 4.0  # four distinct values: many ties
    return boxes, scores


def identical_scene():
    box = [5.0, 6.0, 25.0, 31.0]
    boxes = [box] * 12 + [[100, 100, 110, 110]] * 4
    scores = [0.5] * 6 + [0.7] * 6 + [0.5, 0.5, 0.9, 0.9]
    return np.array(boxes), np.array(scores)


def degenerate_scene():
    boxes = [
        [0, 0, 0, 0], [0, 0, 0, 0],            # two points: union 0 → NaN IoU → never suppress
        [5, 5, 5, 15], [5, 5, 5, 15],          # two zero-width lines
        [5, 5, 5, 15], [4, 4, 6, 16],          # a line inside a box: IoU 0
        [20, 20, 30, 20], [20, 20, 30, 30],    # zero height vs a box
        [40, 40, 30, 30], [30, 30, 40, 40],    # inverted box vs its proper twin
        [50, 50, 40, 40], [50, 50, 40, 40],    # two inverted boxes
        [60, 60, 70, 70], [60, 60, 70, 70],
        [1, 1, 1, 1], [1, 1, 2, 2],
    ]
    scores = [0.9, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15,
              0.1]
    return np.array(boxes, dtype=np.float64), np.array(scores)


def scenes(rng):
    out = {}
    out["empty"] = (np.zeros((0, 4)), np.zeros(0))
    out["single"] = (np.array([[1.0, 2.0, 3.0, 5.0]]), np.array([0.5]))
    out["exact_threshold"] = exact_threshold_scene()
    out["identical"] = identical_scene()
    out["degenerate"] = degenerate_scene()
    out["ties"] = ties_scene(rng)
    out["sparse"] = uniform_scene(rng, 400)
    out["sparse_negative"] = uniform_scene(rng, 300, canvas=400.0, origin=-600.0)
    out["large_coordinates"] = uniform_scene(rng, 200, canvas=300.0, origin=1e5)
    out["clusters"] = cluster_scene(rng, 15, 40)
    out["overlapping"] = overlapping_scene(rng, 300)
    out["mixed_scales"] = tuple(np.concatenate(p) for p in zip(
        uniform_scene(rng, 300), uniform_scene(rng, 30, lo=100.0, hi=600.0)))
    out["shelf"] = cluster_scene(rng, 40, 40, jitter=0.05)  # 1600 boxes
    return out


def per_class_reference(boxes, scores, classes, thr):
    """batched_nms as per-class torchvision nms merged by (score desc, index asc)."""
    kept = []
    for c in torch.unique(classes):
        idx = torch.nonzero(classes == c).flatten()
        kept.extend(idx[ops.nms(boxes[idx], scores[idx], thr)].tolist())
    kept.sort(key=lambda i: (-scores[i].item(), i))
    return kept


def main():
    rng = np.random.default_rng(SEED)
    all_scenes = scenes(rng)
    class_ids = {name: rng.integers(-2, 5, size=len(s[1])) for name, s in all_scenes.items()}
    # > 1000 boxes (4000 numbers): torchvision's batched_nms takes the per-class path; 80 classes, distinct
    # scores (that path re-sorts with an unstable sort).
    big_boxes, _ = uniform_scene(rng, 1500, canvas=600.0, hi=60.0)
    all_scenes["classes80"] = (big_boxes, rng.permutation(1500) / 1500.0)
    class_ids["classes80"] = rng.integers(0, 80, size=1500)
    path = DATA_DIR / "nms_torchvision.txt"
    skipped = []
    with open(path, "w", encoding="utf-8") as out:
        out.write("# cvk golden fixtures: torchvision.ops.nms and batched_nms.\n")
        out.write("# Generated by tests/gen_nms_fixtures.py; do not edit (rerun the script).\n")
        out.write("# scene <name>: boxes/<name>/<dtype> (N×4 xyxy), scores/<name>/<dtype> (N×1),\n")
        out.write("# classes/<name> (N×1); nms/<name>/<dtype>/<t> and batched_nms/<name>/<dtype>/<t>\n")
        out.write("# (K×1 kept indices) for the threshold thresholds[0][t].\n")
        out.write(f"meta torch {torch.__version__}\n")
        out.write(f"meta torchvision {torchvision.__version__}\n")
        out.write(f"meta seed {SEED}\n")
        write_table(out, "thresholds", torch.tensor([THRESHOLDS], dtype=torch.float64),
                    torch.float64)
        for name, (boxes_np, scores_np) in all_scenes.items():
            classes = torch.tensor(class_ids[name], dtype=torch.int64)
            write_table(out, f"classes/{name}", classes.reshape(-1, 1), torch.int64)
            for dtype, dname in ((torch.float32, "float32"), (torch.float64, "float64")):
                boxes = torch.tensor(boxes_np, dtype=torch.float64).reshape(-1, 4).to(dtype)
                scores = torch.tensor(scores_np, dtype=torch.float64).to(dtype)
                write_table(out, f"boxes/{name}/{dname}", boxes, dtype)
                write_table(out, f"scores/{name}/{dname}", scores.reshape(-1, 1), dtype)
                for t, thr in enumerate(THRESHOLDS):
                    keep = ops.nms(boxes, scores, thr)
                    write_table(out, f"nms/{name}/{dname}/{t}", keep.reshape(-1, 1), torch.int64)
                    batched = ops.batched_nms(boxes, scores, classes, thr)
                    reference = per_class_reference(boxes, scores, classes, thr)
                    if batched.tolist() != reference:
                        # the coordinate-offset trick changed a decision: not cvk's contract
                        skipped.append(f"{name}/{dname}/{thr}")
                        continue
                    write_table(out, f"batched_nms/{name}/{dname}/{t}", batched.reshape(-1, 1),
                                torch.int64)
        if skipped:
            out.write("# batched_nms cases left out (the offset trick differs from per-class "
                      "NMS): " + " ".join(skipped) + "\n")
    print(f"wrote {path}; batched cases left out: {skipped}")


if __name__ == "__main__":
    main()
