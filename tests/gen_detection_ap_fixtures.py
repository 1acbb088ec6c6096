#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Writes tests/data/detection_ap_coco.txt: COCO detection evaluation (the 12 COCOeval.stats,
# and per class and IoU threshold AP and recall) on random multi-image, multi-class scenes.
#
# pycocotools is not packaged in Debian bookworm (and no other registry is reachable here), so
# the expected values come from an independent numpy re-implementation of pycocotools'
# COCOeval for iouType 'bbox' (cocoapi PythonAPI/pycocotools/cocoeval.py: evaluateImg,
# accumulate, summarize; common/maskApi.c: bbIou), written below from its semantics. It is
# written in a different style from cvk's C++ (vectorized IoU, dictionaries per image and
# class, np.cumsum / np.maximum.accumulate / np.searchsorted) and follows COCOeval's data flow
# step by step. Run with /usr/bin/python3 (numpy only); CI never runs it.
# SPDX-License-Identifier: MIT
"""Usage: python3 tests/gen_detection_ap_fixtures.py

File format (tests/support/fixtures.hpp): 'meta scenes <names>'; per scene <s>, tables
<s>/det_boxes (D×4 xyxy float64), <s>/det_scores (D×1), <s>/det_classes, <s>/det_images (D×1
int), <s>/gt_boxes (G×4), <s>/gt_classes, <s>/gt_images, <s>/gt_iscrowd (G×1 int),
<s>/iou_thresholds (T×1), <s>/max_detections (3×1), <s>/stats (12×1), <s>/classes (C×1),
<s>/ap_per_class_and_threshold (C×T), <s>/ar_per_class_and_threshold (C×T). Also
'recall_thresholds' (101×1), the exact np.linspace(0, 1, 101)."""

import math
import pathlib

import numpy as np

SEED = 20240611
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"

# COCOeval's default parameters for 'bbox' (Params.setDetParams).
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RANGES = [(0.0**2, 1e5**2), (0.0**2, 32.0**2), (32.0**2, 96.0**2), (96.0**2, 1e5**2)]
AREA_LABELS = ["all", "small", "medium", "large"]


# ------------------------------------------------------------------------------------------
# The reference: COCOeval ('bbox') on flat arrays.

def xyxy_to_xywh(boxes):
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def bbox_iou(dt, gt, crowd):
    """maskApi.c bbIou on xywh boxes: D×G, crowd columns divide by the detection's area."""
    if len(dt) == 0 or len(gt) == 0:
        return np.zeros((len(dt), len(gt)))
    d_right = (dt[:, 2] + dt[:, 0])[:, None]
    g_right = (gt[:, 2] + gt[:, 0])[None, :]
    d_bottom = (dt[:, 3] + dt[:, 1])[:, None]
    g_bottom = (gt[:, 3] + gt[:, 1])[None, :]
    w = np.fmin(d_right, g_right) - np.fmax(dt[:, 0][:, None], gt[:, 0][None, :])
    h = np.fmin(d_bottom, g_bottom) - np.fmax(dt[:, 1][:, None], gt[:, 1][None, :])
    d_area = (dt[:, 2] * dt[:, 3])[:, None]
    g_area = (gt[:, 2] * gt[:, 3])[None, :]
    inter = w * h
    union = np.where(np.asarray(crowd, dtype=bool)[None, :], d_area, d_area + g_area - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = inter / union
    return np.where((w > 0) & (h > 0), ratio, 0.0)


def match_image(dt_boxes, dt_areas, gt_boxes, gt_areas, gt_crowd, area_range, thresholds):
    """COCOeval.evaluateImg for one image, class and area range. Detections come sorted by
    score (already cut to the largest max_detections). Returns (dt_matched T×D bool,
    dt_ignored T×D bool, number of ground truths not ignored)."""
    lo, hi = area_range
    gt_ignore = np.array([bool(c) or a < lo or a > hi for c, a in zip(gt_crowd, gt_areas)],
                         dtype=bool)
    gt_perm = np.argsort(gt_ignore.astype(np.int64), kind="stable")  # ignored ones last
    ious = bbox_iou(dt_boxes, gt_boxes, gt_crowd)[:, gt_perm] if len(gt_boxes) else None
    ig = gt_ignore[gt_perm]
    crowd = np.asarray(gt_crowd, dtype=bool)[gt_perm]
    T, D, G = len(thresholds), len(dt_boxes), len(gt_boxes)
    matched = np.zeros((T, D), dtype=bool)
    ignored = np.zeros((T, D), dtype=bool)
    if D and G:
        for ti, thr in enumerate(thresholds):
            taken = np.zeros(G, dtype=bool)
            for di in range(D):
                best_iou = min(thr, 1 - 1e-10)
                best = None
                for gi in range(G):
                    if taken[gi] and not crowd[gi]:
                        continue
                    if best is not None and not ig[best] and ig[gi]:
                        break  # a regular match beats every ignored ground truth
                    if ious[di, gi] < best_iou:
                        continue
                    best_iou, best = ious[di, gi], gi
                if best is not None:
                    matched[ti, di] = True
                    ignored[ti, di] = ig[best]
                    taken[best] = True
    outside = np.array([a < lo or a > hi for a in dt_areas], dtype=bool)
    ignored |= (~matched) & outside[None, :]
    return matched, ignored, int(np.count_nonzero(~ig))


def coco_evaluate(det_xyxy, det_scores, det_classes, det_images, gt_xyxy, gt_classes, gt_images,
                  gt_crowd, iou_thresholds=COCO_IOU_THRESHOLDS, max_dets=(1, 10, 100)):
    iou_thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    max_dets = sorted(max_dets)
    det_boxes = xyxy_to_xywh(det_xyxy)
    gt_boxes = xyxy_to_xywh(gt_xyxy)
    det_areas = det_boxes[:, 2] * det_boxes[:, 3]
    gt_areas = gt_boxes[:, 2] * gt_boxes[:, 3]
    classes = sorted(set(int(c) for c in det_classes) | set(int(c) for c in gt_classes))
    images = sorted(set(int(i) for i in det_images) | set(int(i) for i in gt_images))
    dets_of, gts_of = {}, {}
    for i, (c, im) in enumerate(zip(det_classes, det_images)):
        dets_of.setdefault((int(im), int(c)), []).append(i)
    for i, (c, im) in enumerate(zip(gt_classes, gt_images)):
        gts_of.setdefault((int(im), int(c)), []).append(i)

    T, R, K, A, M = len(iou_thresholds), len(RECALL_THRESHOLDS), len(classes), 4, len(max_dets)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    for k, c in enumerate(classes):
        for a, area_range in enumerate(AREA_RANGES):
            per_image = []  # (scores, matched, ignored, npig) in image order
            for im in images:
                d_idx = dets_of.get((im, c), [])
                g_idx = gts_of.get((im, c), [])
                if not d_idx and not g_idx:
                    continue
                d_idx = np.array(d_idx, dtype=np.int64)
                order = np.argsort(-np.asarray(det_scores, dtype=np.float64)[d_idx], kind="stable")
                d_idx = d_idx[order][: max_dets[-1]]
                g_idx = np.array(g_idx, dtype=np.int64)
                matched, ignored, npig = match_image(
                    det_boxes[d_idx], det_areas[d_idx], gt_boxes[g_idx], gt_areas[g_idx],
                    [gt_crowd[i] for i in g_idx], area_range, iou_thresholds)
                scores = np.asarray(det_scores, dtype=np.float64)[d_idx]
                per_image.append((scores, matched, ignored, npig))
            if not per_image:
                continue
            npig = sum(e[3] for e in per_image)
            if npig == 0:
                continue
            for m, md in enumerate(max_dets):
                scores = np.concatenate([e[0][:md] for e in per_image])
                order = np.argsort(-scores, kind="stable")
                matched = np.concatenate([e[1][:, :md] for e in per_image], axis=1)[:, order]
                ignored = np.concatenate([e[2][:, :md] for e in per_image], axis=1)[:, order]
                tp = np.cumsum(matched & ~ignored, axis=1).astype(np.float64)
                fp = np.cumsum(~matched & ~ignored, axis=1).astype(np.float64)
                nd = tp.shape[1]
                for t in range(T):
                    rc = tp[t] / npig
                    pr = tp[t] / (fp[t] + tp[t] + np.spacing(1))
                    recall[t, k, a, m] = rc[-1] if nd else 0
                    envelope = np.maximum.accumulate(pr[::-1])[::-1] if nd else pr
                    at = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
                    q = np.zeros(R)
                    inside = at < nd
                    q[inside] = envelope[at[inside]]
                    precision[t, :, k, a, m] = q

    def mean_valid(values):
        valid = values[values > -1]
        return -1.0 if valid.size == 0 else float(np.mean(valid))

    def ap(t_sel=None, area="all", md=100):
        a = AREA_LABELS.index(area)
        m = [i for i, v in enumerate(max_dets) if v == md]
        s = precision if t_sel is None else precision[np.where(iou_thresholds == t_sel)[0]]
        return mean_valid(s[:, :, :, a, :][..., m])

    def ar(area="all", md=100):
        a = AREA_LABELS.index(area)
        m = [i for i, v in enumerate(max_dets) if v == md]
        return mean_valid(recall[:, :, a, :][..., m])

    big = max_dets[2]
    stats = [ap(), ap(0.5, md=big), ap(0.75, md=big), ap(area="small", md=big),
             ap(area="medium", md=big), ap(area="large", md=big), ar(md=max_dets[0]),
             ar(md=max_dets[1]), ar(md=big), ar("small", big), ar("medium", big), ar("large", big)]
    per_class_ap = np.full((K, T), -1.0)
    per_class_ar = np.full((K, T), -1.0)
    for k in range(K):
        for t in range(T):
            if precision[t, 0, k, 0, M - 1] > -1:
                per_class_ap[k, t] = np.mean(precision[t, :, k, 0, M - 1])
            per_class_ar[k, t] = recall[t, k, 0, M - 1]
    return stats, classes, per_class_ap, per_class_ar


# ------------------------------------------------------------------------------------------
# Scenes.

def jitter(box, rng, amount):
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    dx1, dy1, dx2, dy2 = rng.normal(0.0, amount, 4)
    return [x1 + dx1 * w, y1 + dy1 * h, x2 + dx2 * w, y2 + dy2 * h]


def mixed_scene(rng):
    """Random images (sparse ids, negative included) and classes, object sizes over all three
    area ranges, crowds, duplicates, wrong classes, false positives, score ties (scores with
    two decimals), images with only ground truth or only detections, a class seen only in
    detections, a class whose only ground truths are crowds, and an image with more than 100
    detections of one class."""
    image_ids = sorted(rng.choice(np.arange(-20, 1000), size=40, replace=False).tolist())
    gt_classes_pool = [-3, 0, 2, 5]
    dets, gts = [], []  # (box, score, class, image) / (box, class, image, crowd)
    for n, im in enumerate(image_ids):
        n_gt = 0 if n % 9 == 4 else int(rng.integers(0, 11))
        for _ in range(n_gt):
            side = 10.0 ** rng.uniform(0.5, 2.5, 2)  # ~3 .. ~316 pixels: every area range
            x1, y1 = rng.uniform(0.0, 640.0, 2)
            box = [x1, y1, x1 + side[0], y1 + side[1]]
            cls = int(rng.choice(gt_classes_pool))
            crowd = int(rng.uniform() < 0.06)
            gts.append((box, cls, im, crowd))
            if n % 9 == 7:
                continue  # ground truth only
            if rng.uniform() < 0.8:
                dets.append((jitter(box, rng, 0.08), round(rng.uniform(), 2), cls, im))
            if rng.uniform() < 0.3:
                dets.append((jitter(box, rng, 0.15), round(rng.uniform(), 2), cls, im))
            if rng.uniform() < 0.1:
                other = int(rng.choice([c for c in gt_classes_pool if c != cls]))
                dets.append((jitter(box, rng, 0.05), round(rng.uniform(), 2), other, im))
        if n % 9 != 7:
            for _ in range(int(rng.integers(0, 6))):
                side = 10.0 ** rng.uniform(0.5, 2.5, 2)
                x1, y1 = rng.uniform(0.0, 640.0, 2)
                cls = int(rng.choice(gt_classes_pool + [11]))
                dets.append(([x1, y1, x1 + side[0], y1 + side[1]], round(rng.uniform(), 2), cls, im))
    # class 7: crowd ground truths only, with detections on them
    for im in image_ids[:3]:
        box = [100.0, 100.0, 300.0, 260.0]
        gts.append((box, 7, im, 1))
        dets.append((jitter(box, rng, 0.02), round(rng.uniform(), 2), 7, im))
        dets.append(([120.0, 110.0, 160.0, 150.0], round(rng.uniform(), 2), 7, im))
    # one image with 130 detections of class 0 around 12 objects: the maxDets cut matters
    crowded = image_ids[5]
    for _ in range(12):
        side = rng.uniform(20.0, 120.0, 2)
        x1, y1 = rng.uniform(0.0, 500.0, 2)
        box = [x1, y1, x1 + side[0], y1 + side[1]]
        gts.append((box, 0, crowded, 0))
        for _ in range(10):
            dets.append((jitter(box, rng, 0.1), round(rng.uniform(), 2), 0, crowded))
    for _ in range(10):
        x1, y1 = rng.uniform(0.0, 500.0, 2)
        dets.append(([x1, y1, x1 + 30.0, y1 + 40.0], round(rng.uniform(), 2), 0, crowded))
    # an image with detections only
    for _ in range(4):
        x1, y1 = rng.uniform(0.0, 500.0, 2)
        dets.append(([x1, y1, x1 + 50.0, y1 + 50.0], round(rng.uniform(), 2), 2, 5000))
    order = rng.permutation(len(dets))  # input order must not matter beyond ties
    dets = [dets[i] for i in order]
    return dets, gts


def exact_scene(rng):
    """Integer boxes whose IoUs are exactly 0.5, 0.55, ..., 0.95 and 1 (a det [0, 0, w, 10]
    inside a gt [0, 0, 20, 10] has IoU w/20), heavy score ties, crowds, and boxes on the area
    range boundaries (32² and 96²)."""
    dets, gts = [], []
    for im in range(12):
        for slot in range(6):
            ox, oy = 40.0 * slot, 30.0 * (im % 4)
            cls = slot % 2
            gts.append(([ox, oy, ox + 20.0, oy + 10.0], cls, im, 0))
            for _ in range(int(rng.integers(1, 4))):
                w = float(rng.integers(9, 21))
                dets.append(([ox, oy, ox + w, oy + 10.0], float(rng.integers(1, 5)) / 4.0, cls, im))
        # area exactly 32² and 96²: in two ranges at once
        gts.append(([500.0, 0.0, 532.0, 32.0], 2, im, 0))
        dets.append(([500.0, 0.0, 532.0, 32.0], 0.5, 2, im))
        gts.append(([600.0, 0.0, 696.0, 96.0], 2, im, 0))
        dets.append(([600.0, 0.0, 696.0, 96.0], 0.5, 2, im))
        dets.append(([600.0, 100.0, 632.0, 132.0], 0.5, 2, im))  # false positive of area 32²
        if im % 3 == 0:
            gts.append(([300.0, 300.0, 400.0, 400.0], 0, im, 1))  # crowd
            dets.append(([310.0, 310.0, 330.0, 330.0], 0.75, 0, im))  # inside the crowd
            dets.append(([350.0, 350.0, 450.0, 450.0], 0.25, 0, im))  # crowd IoU 1/4
    return dets, gts


def unpack(dets, gts):
    det_boxes = np.array([d[0] for d in dets], dtype=np.float64).reshape(-1, 4)
    det_scores = np.array([d[1] for d in dets], dtype=np.float64)
    det_classes = np.array([d[2] for d in dets], dtype=np.int64)
    det_images = np.array([d[3] for d in dets], dtype=np.int64)
    gt_boxes = np.array([g[0] for g in gts], dtype=np.float64).reshape(-1, 4)
    gt_classes = np.array([g[1] for g in gts], dtype=np.int64)
    gt_images = np.array([g[2] for g in gts], dtype=np.int64)
    gt_crowd = np.array([g[3] for g in gts], dtype=np.int64)
    return det_boxes, det_scores, det_classes, det_images, gt_boxes, gt_classes, gt_images, gt_crowd


# ------------------------------------------------------------------------------------------
# Output.

def fmt(value, integer=False):
    if integer:
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def write_table(out, name, values, integer=False):
    a = np.asarray(values)
    a = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(-1, 1)
    out.write(f"table {name} {a.shape[0]} {a.shape[1]}\n")
    for row in a.tolist():
        out.write(" ".join(fmt(v, integer) for v in row) + "\n")


def main():
    rng = np.random.default_rng(SEED)
    scenes = {
        "mixed": (mixed_scene(rng), COCO_IOU_THRESHOLDS, (1, 10, 100)),
        "exact": (exact_scene(rng), COCO_IOU_THRESHOLDS, (1, 10, 100)),
        # custom parameters: thresholds 0.25, 0.5, 1 (matched as >= 1 - 1e-10), no 0.75 (AP75 is
        # -1), max_detections given unsorted
        "custom": (exact_scene(rng), np.array([0.25, 0.5, 1.0]), (100, 1, 3)),
    }
    path = DATA_DIR / "detection_ap_coco.txt"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write("# cvk golden fixtures: COCO detection evaluation (COCOeval 'bbox' semantics).\n")
        out.write("# Generated by tests/gen_detection_ap_fixtures.py; do not edit (rerun the script).\n")
        out.write("# Expected values: the script's numpy re-implementation of pycocotools' COCOeval\n")
        out.write("# (pycocotools is not available on this system).\n")
        out.write(f"meta numpy {np.__version__}\n")
        out.write(f"meta seed {SEED}\n")
        out.write("meta scenes " + " ".join(scenes) + "\n")
        write_table(out, "recall_thresholds", RECALL_THRESHOLDS)
        write_table(out, "coco_iou_thresholds", COCO_IOU_THRESHOLDS)
        for name, ((dets, gts), thresholds, max_dets) in scenes.items():
            arrays = unpack(dets, gts)
            stats, classes, per_ap, per_ar = coco_evaluate(*arrays, iou_thresholds=thresholds,
                                                           max_dets=max_dets)
            db, ds, dc, di, gb, gc, gi, gcrowd = arrays
            write_table(out, f"{name}/det_boxes", db)
            write_table(out, f"{name}/det_scores", ds)
            write_table(out, f"{name}/det_classes", dc, integer=True)
            write_table(out, f"{name}/det_images", di, integer=True)
            write_table(out, f"{name}/gt_boxes", gb)
            write_table(out, f"{name}/gt_classes", gc, integer=True)
            write_table(out, f"{name}/gt_images", gi, integer=True)
            write_table(out, f"{name}/gt_iscrowd", gcrowd, integer=True)
            write_table(out, f"{name}/iou_thresholds", thresholds)
            write_table(out, f"{name}/max_detections", np.array(max_dets), integer=True)
            write_table(out, f"{name}/stats", np.array(stats))
            write_table(out, f"{name}/classes", np.array(classes), integer=True)
            write_table(out, f"{name}/ap_per_class_and_threshold", per_ap)
            write_table(out, f"{name}/ar_per_class_and_threshold", per_ar)
            print(name, f"D={len(dets)} G={len(gts)}", " ".join(f"{s:.4f}" for s in stats))
    print("wrote", path)


if __name__ == "__main__":
    main()
