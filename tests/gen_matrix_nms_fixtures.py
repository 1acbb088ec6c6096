#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Writes tests/data/matrix_nms_reference.txt: the matrix NMS family computed with torch tensor
# operations the way the peers compute it — Paddle's matrix_nms (paddle/phi/kernels/cpu/
# matrix_nms_kernel.cc: NMSMatrix, one class), YOLACT's Fast NMS (dbolya/yolact
# layers/functions/detection.py) and the Cluster-NMS variants of Zzh-tju/CIoU
# (layers/functions/detection.py cc_cluster_*, layers/box_utils.py jaccard/diou/distance) —
# re-implemented here from their definitions, independently of cvk's C++. float32 and float64.
# Needs torch (run with /usr/bin/python3); CI never runs it.
# SPDX-License-Identifier: MIT
import pathlib

import numpy as np
import torch

from gen_fixtures import write_table as write_rows  # same directory: the shared table writer

SEED = 20240611
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"

# Options the C++ test passes (tests/nms/test_matrix_nms.cpp, "torch re-implementations").
MATRIX = dict(score_threshold=0.05, post_threshold=0.1, nms_top_k=250, keep_top_k=200, sigma=2.0)
IOU_THRESHOLD = 0.5
TOP_K = 200


def write_table(out, name, tensor, dtype):
    if tensor.shape[0] == 0:
        cols = tensor.shape[1] if tensor.dim() > 1 else 1
        out.write(f"table {name} 0 {cols}\n")
    else:
        write_rows(out, name, tensor, dtype)


# ---------------------------------------------------------------------------------------------
# Scenes (no exact score ties: torch.sort would order them arbitrarily)

def uniform_scene(rng, n, canvas, lo, hi):
    corners = rng.uniform(0, canvas, size=(n, 2))
    sides = rng.uniform(lo, hi, size=(n, 2))
    return np.concatenate([corners, corners + sides], axis=1), rng.uniform(0, 1, size=n)


def cluster_scene(rng, objects, per_object, jitter):
    centres = rng.uniform(0, 400, size=(objects, 2))
    sizes = rng.uniform(15, 80, size=(objects, 2))
    boxes = []
    for o in range(objects):
        for _ in range(per_object):
            c = centres[o] + rng.normal(0, jitter, 2) * sizes[o]
            s = sizes[o] * np.exp(rng.normal(0, jitter, 2))
            boxes.append(np.concatenate([c - s / 2, c + s / 2]))
    return np.array(boxes), rng.uniform(0, 1, size=len(boxes))


def scenes(rng):
    return {
        "uniform": uniform_scene(rng, 300, 300.0, 5.0, 60.0),
        "clusters": cluster_scene(rng, 12, 25, 0.08),
        "tight": cluster_scene(rng, 4, 60, 0.03),
        "overlapping": uniform_scene(rng, 150, 40.0, 30.0, 120.0),
    }


# ---------------------------------------------------------------------------------------------
# Paddle matrix_nms (NMSMatrix for one class, then the keep_top_k sort of MultiClassMatrixNMS)

def paddle_area(b, normalized):
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    area = w * h if normalized else (w + 1) * (h + 1)
    invalid = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    return torch.where(invalid, torch.zeros_like(area), area)


def paddle_iou_matrix(b, normalized):
    """iou[i, j] = JaccardOverlap(box i, box j)."""
    b1 = b[:, None, :]
    b2 = b[None, :, :]
    apart = (b2[..., 0] > b1[..., 2]) | (b2[..., 2] < b1[..., 0]) | (b2[..., 1] > b1[..., 3]) | (
        b2[..., 3] < b1[..., 1])
    norm = 0.0 if normalized else 1.0
    iw = torch.minimum(b1[..., 2], b2[..., 2]) - torch.maximum(b1[..., 0], b2[..., 0]) + norm
    ih = torch.minimum(b1[..., 3], b2[..., 3]) - torch.maximum(b1[..., 1], b2[..., 1]) + norm
    inter = iw * ih
    area = paddle_area(b, normalized)
    iou = inter / (area[:, None] + area[None, :] - inter)
    return torch.where(apart, torch.zeros_like(iou), iou)


def paddle_matrix_nms(boxes, scores, gaussian, normalized):
    o = MATRIX
    candidates = torch.nonzero(scores > o["score_threshold"]).flatten()
    order = candidates[torch.sort(scores[candidates], descending=True, stable=True).indices]
    order = order[: o["nms_top_k"]]
    n = order.numel()
    b = boxes[order]
    s = scores[order]
    iou = torch.tril(paddle_iou_matrix(b, normalized), diagonal=-1)  # iou[i, j], j < i
    iou_max = iou.max(dim=1).values.clamp(min=0) if n else iou.new_zeros(0)
    lower = torch.tril(torch.ones(n, n, dtype=torch.bool), diagonal=-1)
    if gaussian:
        sigma = torch.tensor(o["sigma"], dtype=boxes.dtype)
        decay = torch.exp((iou_max[None, :] ** 2 - iou ** 2) * sigma)
    else:  # Paddle's `1.` literal: double arithmetic, converted to T
        decay = ((1.0 - iou.double()) / (1.0 - iou_max[None, :].double())).to(boxes.dtype)
    decay = torch.where(lower, decay, torch.ones_like(decay))
    min_decay = decay.min(dim=1).values if n else decay.new_zeros(0)
    decayed = min_decay * s
    keep = decayed > o["post_threshold"]
    idx, ds = order[keep], decayed[keep]
    by_score = torch.sort(ds, descending=True, stable=True).indices[: o["keep_top_k"]]
    return torch.stack([idx[by_score].to(boxes.dtype), ds[by_score]], dim=1)


# ---------------------------------------------------------------------------------------------
# YOLACT / CIoU box_utils

def jaccard(a, b):
    max_xy = torch.min(a[:, None, 2:], b[None, :, 2:])
    min_xy = torch.max(a[:, None, :2], b[None, :, :2])
    inter = torch.clamp(max_xy - min_xy, min=0).prod(2)
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    return inter / (area_a + area_b - inter)


def centre_term(a, b):
    """ρ² / (c² + 1e-7) of box_utils.diou and box_utils.distance (row box a, column box b)."""
    x1 = ((a[:, 2] + a[:, 0]) / 2)[:, None]
    y1 = ((a[:, 3] + a[:, 1]) / 2)[:, None]
    x2 = ((b[:, 2] + b[:, 0]) / 2)[None, :]
    y2 = ((b[:, 3] + b[:, 1]) / 2)[None, :]
    cr = torch.max(a[:, None, 2], b[None, :, 2])
    cl = torch.min(a[:, None, 0], b[None, :, 0])
    ct = torch.min(a[:, None, 1], b[None, :, 1])
    cb = torch.max(a[:, None, 3], b[None, :, 3])
    return ((x2 - x1) ** 2 + (y2 - y1) ** 2) / ((cr - cl) ** 2 + (cb - ct) ** 2 + 1e-7)


def diou(a, b):
    return jaccard(a, b) - centre_term(a, b) ** 0.9


def distance(a, b):
    return centre_term(a, b) ** 0.6


def yolact_fast_nms(boxes, scores):
    _, idx = scores.sort(0, descending=True)
    idx = idx[:TOP_K]
    iou = jaccard(boxes[idx], boxes[idx]).triu_(diagonal=1)
    iou_max, _ = torch.max(iou, dim=0)
    return idx[iou_max <= IOU_THRESHOLD].to(boxes.dtype)[:, None]


def cluster(boxes, scores, variant):
    """The repository's cross-class cc_cluster_* code for one class (scores already the max)."""
    _, idx = scores.sort(0, descending=True)
    idx = idx[:TOP_K]
    b = boxes[idx]
    s = scores[idx]
    n = idx.numel()
    iou = (diou(b, b) if variant == "diou" else jaccard(b, b)).triu_(diagonal=1)
    B = iou
    for _ in range(200):
        A = B
        maxA, _ = torch.max(A, dim=0)
        E = (maxA <= IOU_THRESHOLD).to(b.dtype).unsqueeze(1).expand_as(A)
        B = iou.mul(E)
        if A.equal(B):
            break
    if variant in ("plain", "diou"):
        keep = maxA <= IOU_THRESHOLD
    else:
        if variant == "spm":
            s = torch.prod(torch.exp(-B ** 2 / 0.2), 0) * s
        else:
            D = distance(b, b)
            X = (B >= 0).to(b.dtype)
            s = torch.prod(torch.min(torch.exp(-B ** 2 / 0.2) + D * ((B > 0).to(b.dtype)), X), 0) * s
        keep = s > 0.01
        if variant == "spm_dist_weighted":
            weights = (B * (B > 0.8).to(b.dtype) + torch.eye(n, dtype=b.dtype)) * s.reshape((1, n))
            weightsum = weights.sum(dim=1)
            cols = [(b[:, q].expand(n, n) * weights).sum(dim=1) / weightsum for q in range(4)]
            b = torch.stack(cols, 1)
    return torch.cat([idx[keep].to(b.dtype)[:, None], s[keep][:, None], b[keep]], dim=1)


def main():
    rng = np.random.default_rng(SEED)
    path = DATA_DIR / "matrix_nms_reference.txt"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        out.write("# cvk fixtures: the matrix NMS family computed by a torch re-implementation of the\n")
        out.write("# peers' code (Paddle matrix_nms, YOLACT Fast NMS, Zzh-tju/CIoU Cluster-NMS).\n")
        out.write("# Generated by tests/gen_matrix_nms_fixtures.py; do not edit (rerun the script).\n")
        out.write("# boxes/<scene>/<dtype> N×4 xyxy, scores/<scene>/<dtype> N×1;\n")
        out.write("# matrix/<linear|gaussian|linear_pixel>/<scene>/<dtype>: index, decayed score\n")
        out.write(f"#   (score > {MATRIX['score_threshold']}, post > {MATRIX['post_threshold']}, "
                  f"nms_top_k {MATRIX['nms_top_k']}, keep_top_k {MATRIX['keep_top_k']}, "
                  f"sigma {MATRIX['sigma']});\n")
        out.write(f"# fast/yolact/<scene>/<dtype>: kept indices (IoU {IOU_THRESHOLD}, top_k {TOP_K});\n")
        out.write("# cluster/<plain|diou|spm|spm_dist|spm_dist_weighted>/<scene>/<dtype>: index, score,\n")
        out.write(f"#   box (IoU {IOU_THRESHOLD}, top_k {TOP_K}), rows in the repository's order.\n")
        out.write(f"meta torch {torch.__version__}\n")
        out.write(f"meta seed {SEED}\n")
        for name, (boxes_np, scores_np) in scenes(rng).items():
            for dtype, tag in ((torch.float32, "float32"), (torch.float64, "float64")):
                boxes = torch.tensor(boxes_np, dtype=dtype)
                scores = torch.tensor(scores_np, dtype=dtype)
                write_table(out, f"boxes/{name}/{tag}", boxes, dtype)
                write_table(out, f"scores/{name}/{tag}", scores[:, None], dtype)
                for variant, gaussian, normalized in (("linear", False, True),
                                                      ("gaussian", True, True),
                                                      ("linear_pixel", False, False)):
                    write_table(out, f"matrix/{variant}/{name}/{tag}",
                                paddle_matrix_nms(boxes, scores, gaussian, normalized), dtype)
                write_table(out, f"fast/yolact/{name}/{tag}", yolact_fast_nms(boxes, scores), dtype)
                for variant in ("plain", "diou", "spm", "spm_dist", "spm_dist_weighted"):
                    write_table(out, f"cluster/{variant}/{name}/{tag}",
                                cluster(boxes, scores, variant), dtype)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
