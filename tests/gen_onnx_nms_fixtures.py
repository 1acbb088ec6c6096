#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Writes tests/data/onnx_nms.txt: ONNX NonMaxSuppression cases for cvk::onnx::non_max_suppression.
#  * the ONNX backend node tests (onnx/backend/test/case/node/nonmaxsuppression.py of the installed
#    onnx package), with the expected outputs those tests ship;
#  * random cases (both center_point_box modes, flipped corners, score ties, IoU exactly at the
#    threshold, zero and negative sides, several batches and classes, with and without
#    score_threshold), their outputs computed by `onnx_nms` below in float32 numpy scalars.
# The installed onnx (Debian's python3-onnx 1.12) predates onnx.reference.ReferenceEvaluator, and
# ONNX Runtime is not packaged, so `onnx_nms` implements the operator as its spec, the reference
# op_non_max_suppression.py and ORT's CPU kernel define it: candidates with score > score_threshold
# (when given), visited by (score desc, index asc), each compared with the boxes already selected
# for its batch and class by ORT's suppress_by_iou (an extent <= 0, an area or the union <= 0 never
# suppresses; IoU > iou_threshold, strictly), at most max_output_boxes_per_class per class, all in
# float32 as ORT. It is checked here against the backend tests' expected outputs and, on every
# random class whose boxes all have positive sides, against torchvision.ops.nms (float32, with the
# threshold given as the float32 value, so its float IoU > threshold decisions are ORT's).
# Needs /usr/bin/python3 with python3-onnx, numpy and torchvision; CI never runs it.
# SPDX-License-Identifier: MIT
import pathlib

import numpy as np
import onnx
import onnx.helper
import torch
import torchvision
from onnx.backend.test.case.node import nonmaxsuppression as backend_cases
from torchvision import ops

from gen_fixtures import fmt  # same directory: the shared number formatting

SEED = 20240611
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
F32 = np.float32


# ---------------------------------------------------------------------------------------------
# The operator in float32 scalars.

def box_extents(box, center_point_box):
    """(x_min, x_max, y_min, y_max) of one box as ORT reads it."""
    box = [F32(v) for v in box]
    if center_point_box == 0:  # [y1, x1, y2, x2], any diagonal corners
        y1, x1, y2, x2 = box
        x_min, x_max = (x2, x1) if x1 >= x2 else (x1, x2)
        y_min, y_max = (y2, y1) if y1 >= y2 else (y1, y2)
    else:  # [x_center, y_center, width, height]
        xc, yc, w, h = box
        half_w = w / F32(2)
        half_h = h / F32(2)
        x_min, x_max = xc - half_w, xc + half_w
        y_min, y_max = yc - half_h, yc + half_h
    return x_min, x_max, y_min, y_max


def suppresses(candidate, selected, iou_threshold):
    """ORT's suppress_by_iou(candidate, selected) on box extents."""
    x1_min, x1_max, y1_min, y1_max = candidate
    x2_min, x2_max, y2_min, y2_max = selected
    ix_min = max(x1_min, x2_min)
    ix_max = min(x1_max, x2_max)
    if ix_max <= ix_min:
        return False
    iy_min = max(y1_min, y2_min)
    iy_max = min(y1_max, y2_max)
    if iy_max <= iy_min:
        return False
    inter = (ix_max - ix_min) * (iy_max - iy_min)
    if inter <= 0:
        return False
    area1 = (x1_max - x1_min) * (y1_max - y1_min)
    area2 = (x2_max - x2_min) * (y2_max - y2_min)
    union = area1 + area2 - inter
    if area1 <= 0 or area2 <= 0 or union <= 0:
        return False
    return inter / union > iou_threshold


def onnx_nms(boxes, scores, max_output, iou_threshold, score_threshold, center_point_box):
    """selected_indices (list of (batch, class, box)) of NonMaxSuppression on float32 input."""
    max_output = max(int(max_output), 0)
    iou_threshold = F32(iou_threshold)
    score_threshold = None if score_threshold is None else F32(score_threshold)
    batches, n, _ = boxes.shape
    classes = scores.shape[1]
    result = []
    if max_output == 0:
        return result
    for b in range(batches):
        extents = [box_extents(boxes[b, i], center_point_box) for i in range(n)]
        for c in range(classes):
            s = scores[b, c]
            candidates = [i for i in range(n) if score_threshold is None or s[i] > score_threshold]
            candidates.sort(key=lambda i: (-s[i], i))
            chosen = []
            for i in candidates:
                if len(chosen) == max_output:
                    break
                if any(suppresses(extents[i], extents[k], iou_threshold) for k in chosen):
                    continue
                chosen.append(i)
                result.append((b, c, i))
    return result


def torchvision_check(boxes, scores, max_output, iou_threshold, score_threshold, center_point_box,
                      selected):
    """Per class with positive-sided boxes only: torchvision.ops.nms gives the same selection."""
    batches, n, _ = boxes.shape
    checked = 0
    for b in range(batches):
        extents = [box_extents(boxes[b, i], center_point_box) for i in range(n)]
        if not all(e[1] > e[0] and e[3] > e[2] for e in extents):
            continue
        xyxy = torch.tensor([[e[0], e[2], e[1], e[3]] for e in extents], dtype=torch.float32)
        for c in range(scores.shape[1]):
            s = torch.tensor(scores[b, c], dtype=torch.float32)
            idx = torch.arange(n)
            if score_threshold is not None:
                idx = idx[s > float(F32(score_threshold))]
            keep = idx[ops.nms(xyxy[idx].reshape(-1, 4), s[idx], float(F32(iou_threshold)))]
            expected = keep.tolist()[:max(int(max_output), 0)]
            mine = [i for (bb, cc, i) in selected if bb == b and cc == c]
            assert mine == expected, (b, c, mine, expected)
            checked += 1
    return checked


# ---------------------------------------------------------------------------------------------
# Cases.

def backend_test_cases():
    """The ONNX backend node tests: (name, inputs, expected, center_point_box)."""
    captured = []

    def capture(node, inputs, outputs, name, **_):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        captured.append((name, inputs, outputs[0], int(attrs.get("center_point_box", 0))))

    backend_cases.expect = capture
    for attr in sorted(dir(backend_cases.NonMaxSuppression)):
        if attr.startswith("export"):
            getattr(backend_cases.NonMaxSuppression, attr)()
    return captured


def random_case(rng, kind):
    batches = int(rng.integers(1, 4))
    classes = int(rng.integers(1, 5))
    n = int(rng.choice([0, 1, 2, 7, 30, 80, 200]))
    center = int(rng.integers(0, 2))
    if kind == "grid":  # integer boxes on a small canvas: identical boxes, exact IoU values
        corner = rng.integers(0, 6, size=(batches, n, 2)).astype(np.float64)
        size = rng.integers(1, 4, size=(batches, n, 2)).astype(np.float64)
    elif kind == "clusters":
        centres = rng.uniform(0, 300, size=(5, 2))
        pick = rng.integers(0, 5, size=(batches, n))
        size = rng.uniform(20, 60, size=(batches, n, 2))
        corner = centres[pick] + rng.normal(0, 5, size=(batches, n, 2)) - size / 2
    else:  # sparse
        corner = rng.uniform(0, 1000, size=(batches, n, 2))
        size = rng.uniform(1, 50, size=(batches, n, 2))
    if kind == "degenerate":
        zero = rng.random(size=(batches, n, 2)) < 0.2
        size[zero] = 0.0
        negative = rng.random(size=(batches, n, 2)) < 0.1
        size[negative] *= -1.0
    x1, y1 = corner[..., 0], corner[..., 1]
    w, h = size[..., 0], size[..., 1]
    if center == 0:
        boxes = np.stack([y1, x1, y1 + h, x1 + w], axis=-1)
        flip = rng.random(size=(batches, n, 2)) < 0.3  # the other diagonal pair / order
        boxes[..., [0, 2]] = np.where(flip[..., :1], boxes[..., [2, 0]], boxes[..., [0, 2]])
        boxes[..., [1, 3]] = np.where(flip[..., 1:], boxes[..., [3, 1]], boxes[..., [1, 3]])
    else:
        boxes = np.stack([x1 + w / 2, y1 + h / 2, w, h], axis=-1)
    boxes = boxes.astype(F32)
    if rng.random() < 0.4:  # ties
        scores = (rng.integers(0, 5, size=(batches, classes, n)) / 4).astype(F32)
    else:
        scores = rng.random(size=(batches, classes, n)).astype(F32)
    iou = float(rng.choice([0.0, 0.3, 1 / 3, 0.5, 0.7, 1.0, rng.random()]))
    score_threshold = None if rng.random() < 0.4 else float(rng.choice([0.0, 0.25, 0.5, rng.random()]))
    max_output = int(rng.choice([1, 2, 3, 10, 1000, 2 ** 40]))
    return boxes, scores, max_output, iou, score_threshold, center


def threshold_cases():
    """Hand-made cases where IoU equals the threshold exactly (kept: > is strict)."""
    # [y1, x1, y2, x2]: box 1 is the left half of box 0: IoU 1/2; box 2 a third of box 0: 1/3
    boxes = np.array([[[0, 0, 1, 2], [0, 0, 1, 1], [1, 3, 0, 1], [0, 10, 3, 11], [0, 10, 1, 11]]],
                     dtype=F32)
    scores = np.array([[[0.9, 0.8, 0.7, 0.6, 0.5]]], dtype=F32)
    yield "iou_equals_half", boxes, scores, 10, 0.5, None, 0
    yield "iou_just_below_half", boxes, scores, 10, 0.4999, None, 0
    yield "iou_equals_third", boxes, scores, 10, 1 / 3, 0.55, 0
    yield "iou_threshold_zero", boxes, scores, 10, 0.0, 0.0, 0
    yield "iou_threshold_one", boxes, scores, 10, 1.0, None, 0
    centre = np.array([[[1, 0.5, 2, 1], [0.5, 0.5, 1, 1], [1, 0.5, 2, 1], [1, 0.5, 0, 1],
                        [1, 0.5, -2, 1]]], dtype=F32)
    yield "center_iou_half_and_degenerate", centre, scores, 10, 0.5, None, 1


def write_case(out, name, boxes, scores, max_output, iou, score_threshold, center, selected):
    batches, n, _ = boxes.shape
    classes = scores.shape[1]
    has_score = 0 if score_threshold is None else 1
    out.write(f"table case/{name}/shape 1 6\n")
    out.write(f"{batches} {n} {classes} {max_output} {center} {has_score}\n")
    out.write(f"table case/{name}/thresholds 1 2\n")
    score_value = 0.0 if score_threshold is None else score_threshold
    out.write(f"{fmt(float(F32(iou)), torch.float32)} {fmt(float(F32(score_value)), torch.float32)}\n")
    out.write(f"table case/{name}/boxes {batches * n} 4\n")
    for row in boxes.reshape(-1, 4).tolist():
        out.write(" ".join(fmt(v, torch.float32) for v in row) + "\n")
    out.write(f"table case/{name}/scores {batches * classes * n} 1\n")
    for v in scores.reshape(-1).tolist():
        out.write(fmt(v, torch.float32) + "\n")
    out.write(f"table case/{name}/selected {len(selected)} 3\n")
    for row in selected:
        out.write(" ".join(str(int(v)) for v in row) + "\n")


def main():
    rng = np.random.default_rng(SEED)
    path = DATA_DIR / "onnx_nms.txt"
    counts = {"backend": 0, "hand": 0, "random": 0, "torchvision_classes": 0}
    with np.errstate(all="ignore"), open(path, "w", encoding="utf-8") as out:
        out.write("# cvk golden fixtures: ONNX NonMaxSuppression (opset 11).\n")
        out.write("# Generated by tests/gen_onnx_nms_fixtures.py; do not edit (rerun the script).\n")
        out.write("# case/<name>/shape: B N C max_output_boxes_per_class center_point_box\n")
        out.write("#   has_score_threshold; thresholds: iou_threshold score_threshold (float32);\n")
        out.write("# boxes: (B*N)x4 float32 rows of boxes[b][i]; scores: B*C*N float32 (row-major\n")
        out.write("# [B,C,N]); selected: Kx3 (batch, class, box). Cases named backend/* are the ONNX\n")
        out.write("# backend node tests with their shipped outputs.\n")
        out.write(f"meta onnx {onnx.__version__}\n")
        out.write(f"meta torchvision {torchvision.__version__}\n")
        out.write(f"meta seed {SEED}\n")
        for name, inputs, expected, center in backend_test_cases():
            boxes, scores, max_output, iou, score = inputs
            selected = onnx_nms(boxes, scores, max_output[0], iou[0], score[0], center)
            assert [tuple(r) for r in expected.tolist()] == selected, name
            write_case(out, "backend/" + name, boxes, scores, int(max_output[0]), float(iou[0]),
                       float(score[0]), center, expected.tolist())
            counts["backend"] += 1
        for name, boxes, scores, max_output, iou, score, center in threshold_cases():
            selected = onnx_nms(boxes, scores, max_output, iou, score, center)
            write_case(out, "hand/" + name, boxes, scores, max_output, iou, score, center, selected)
            counts["hand"] += 1
        kinds = ("sparse", "clusters", "grid", "degenerate")
        for k in range(120):
            kind = kinds[k % len(kinds)]
            case = random_case(rng, kind)
            selected = onnx_nms(*case)
            counts["torchvision_classes"] += torchvision_check(*case, selected)
            write_case(out, f"random/{k}_{kind}", *case, selected)
            counts["random"] += 1
    print(f"wrote {path}: {counts}")


if __name__ == "__main__":
    main()
