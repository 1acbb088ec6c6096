#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Writes tests/data/voting_peers.txt: box voting and variance voting computed by numpy
# re-implementations of the peers, written from their definitions (independent of the C++):
#   Detectron detectron/utils/boxes.py box_voting with cython_bbox.bbox_overlaps, every scoring
#     method, "+1" widths on and off;
#   KL-Loss detectron/utils/py_cpu_nms.py soft (STD.METHOD 'stdiou', STD.IOU_SIGMA 0.01, the
#     effective STD_TH 0.01, STD.SOFT 'soft' and 'hard'), the IoU matrix and the in-place swaps.
# float64 throughout. Run with /usr/bin/python3; CI never runs it.
# SPDX-License-Identifier: MIT
import pathlib

import numpy as np

SEED = 20190619
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
VOTE_TH = 0.8  # Detectron TEST.BBOX_VOTE.VOTE_TH
BETAS = (1.0, 2.0, 0.5)
METHODS = ("ID", "TEMP_AVG", "AVG", "IOU_AVG", "GENERALIZED_AVG", "QUASI_SUM")  # enum order
NMS_TH = 0.5  # TEST.NMS of the KL-Loss configs (used by STD.SOFT 'hard')
IOU_SIGMA = 0.01
STD_TH = 0.01
SOFT_SIGMA = 0.5
DROP = 0.001


def fmt(value):
    if np.isnan(value):
        return "nan"
    return repr(float(value))


def write_table(out, name, array, integer=False):
    a = np.asarray(array)
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    out.write(f"table {name} {a.shape[0]} {a.shape[1] if a.shape[0] else 1}\n")
    for row in a:
        out.write(" ".join(str(int(v)) if integer else fmt(v) for v in row) + "\n")


# --- Detectron ---------------------------------------------------------------------------------

def bbox_overlaps(top, others, one):
    """cython_bbox.bbox_overlaps(top, others): K×N, 0 unless both intersection sides are > 0."""
    area_o = (others[:, 2] - others[:, 0] + one) * (others[:, 3] - others[:, 1] + one)
    out = np.zeros((top.shape[0], others.shape[0]))
    for k in range(top.shape[0]):
        area_t = (top[k, 2] - top[k, 0] + one) * (top[k, 3] - top[k, 1] + one)
        iw = np.minimum(top[k, 2], others[:, 2]) - np.maximum(top[k, 0], others[:, 0]) + one
        ih = np.minimum(top[k, 3], others[:, 3]) - np.maximum(top[k, 1], others[:, 1]) + one
        ok = (iw > 0) & (ih > 0)
        ua = area_t + area_o - iw * ih
        out[k, ok] = iw[ok] * ih[ok] / ua[ok]
    return out


def detectron_box_voting(top_dets, all_dets, thresh, method, beta, one):
    out = top_dets.copy()
    overlaps = bbox_overlaps(top_dets[:, :4], all_dets[:, :4], one)
    for k in range(out.shape[0]):
        inds = np.where(overlaps[k] >= thresh)[0]
        boxes = all_dets[inds, :4]
        ws = all_dets[inds, 4]
        out[k, :4] = np.average(boxes, axis=0, weights=ws)
        if method == "ID":
            pass
        elif method == "TEMP_AVG":
            p = np.vstack((ws, 1.0 - ws))
            x = np.log(p / np.max(p, axis=0))
            e = np.exp(x / beta)
            out[k, 4] = (e / np.sum(e, axis=0))[0].mean()
        elif method == "AVG":
            out[k, 4] = ws.mean()
        elif method == "IOU_AVG":
            out[k, 4] = np.average(ws, weights=overlaps[k, inds])
        elif method == "GENERALIZED_AVG":
            out[k, 4] = np.mean(ws ** beta) ** (1.0 / beta)
        elif method == "QUASI_SUM":
            out[k, 4] = ws.sum() / float(len(ws)) ** beta
        else:
            raise ValueError(method)
    return out


def greedy_nms(dets, thresh, one):
    """Detectron's cython nms: score order, suppress when IoU >= thresh."""
    order = np.argsort(-dets[:, 4], kind="stable")
    ious = bbox_overlaps(dets[:, :4], dets[:, :4], one)
    suppressed = np.zeros(len(dets), dtype=bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= ious[i] >= thresh
    return np.array(keep, dtype=np.int64)


# --- KL-Loss -----------------------------------------------------------------------------------

def kl_soft(dets, confidence, hard, one):
    """py_cpu_nms.soft: returns (original indices, voted boxes, scores) in selection order."""
    dets = dets.copy()
    confidence = confidence.copy()
    index = np.arange(len(dets))
    n = len(dets)
    x1, y1, x2, y2 = (dets[:, c].copy() for c in range(4))
    areas = (x2 - x1 + one) * (y2 - y1 + one)
    ious = np.zeros((n, n))
    for i in range(n):
        xx1 = np.maximum(x1[i], x1)
        yy1 = np.maximum(y1[i], y1)
        xx2 = np.minimum(x2[i], x2)
        yy2 = np.minimum(y2[i], y2)
        w = np.maximum(0.0, xx2 - xx1 + one)
        h = np.maximum(0.0, yy2 - yy1 + one)
        inter = w * h
        ious[i, :] = inter / (areas[i] + areas - inter)
    assert np.all(np.diag(ious) == 1.0)

    def swap(a, b):
        dets[[a, b]] = dets[[b, a]]
        confidence[[a, b]] = confidence[[b, a]]
        index[[a, b]] = index[[b, a]]
        ious[[a, b]] = ious[[b, a]]
        ious[:, [a, b]] = ious[:, [b, a]]

    i = 0
    while i < n:
        maxpos = dets[i:n, 4].argmax() + i
        swap(maxpos, i)
        ovr_bbox = np.where(ious[i, i:n] > STD_TH)[0] + i
        p = np.exp(-(1 - ious[i, ovr_bbox]) ** 2 / IOU_SIGMA)
        dets[i, :4] = p.dot(dets[ovr_bbox, :4] / confidence[ovr_bbox] ** 2) / p.dot(
            1.0 / confidence[ovr_bbox] ** 2)
        pos = i + 1
        while pos < n:
            if ious[i, pos] > 0:
                ovr = ious[i, pos]
                if hard:
                    if ovr > NMS_TH:
                        dets[pos, 4] = 0
                else:
                    dets[pos, 4] *= np.exp(-(ovr * ovr) / SOFT_SIGMA)
                if dets[pos, 4] < DROP:
                    swap(pos, n - 1)
                    n -= 1
                    pos -= 1
            pos += 1
        i += 1
    return index[:n], dets[:n, :4], dets[:n, 4]


# --- scenes ------------------------------------------------------------------------------------

def clusters(rng, objects, per_object, jitter):
    centres = rng.uniform(0, 400, size=(objects, 2))
    sizes = rng.uniform(15, 80, size=(objects, 2))
    boxes = []
    for c, s in zip(centres, sizes):
        for _ in range(per_object):
            cc = c + rng.normal(0, jitter, size=2) * s
            ss = s * np.exp(rng.normal(0, jitter, size=2))
            boxes.append([cc[0] - ss[0] / 2, cc[1] - ss[1] / 2, cc[0] + ss[0] / 2, cc[1] + ss[1] / 2])
    return np.array(boxes)


def uniform(rng, n):
    corners = rng.uniform(0, 150, size=(n, 2))
    sides = rng.uniform(1, 60, size=(n, 2))
    return np.concatenate([corners, corners + sides], axis=1)


def mixed(rng, n):
    side = np.exp(rng.uniform(0, 5.5, size=(n, 1))) * rng.uniform(0.5, 1.5, size=(n, 2))
    centre = rng.uniform(0, 250, size=(n, 2))
    return np.concatenate([centre - side / 2, centre + side / 2], axis=1)


def main():
    rng = np.random.default_rng(SEED)
    scenes = {
        "clusters": clusters(rng, 16, 12, 0.05),
        "uniform": uniform(rng, 70),
        "mixed": mixed(rng, 60),
    }
    scenes = {k: np.round(v * 1024) / 1024 for k, v in scenes.items()}  # short, exact decimals
    path = DATA_DIR / "voting_peers.txt"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write("# cvk golden fixtures: numpy re-implementations of Detectron's box_voting and\n")
        out.write("# KL-Loss's variance voting (py_cpu_nms.soft), float64.\n")
        out.write("# Generated by tests/gen_voting_fixtures.py; do not edit (rerun the script).\n")
        out.write("# scene/<s>/{kept_boxes,kept_scores,all_boxes,all_scores}: box_voting inputs\n")
        out.write("# (kept = greedy NMS, suppressing IoU >= 0.5); box_voting/<s>/<method>/<beta>/<+1>/\n")
        out.write("# {boxes,scores}: method = index in (ID, TEMP_AVG, AVG, IOU_AVG, GENERALIZED_AVG,\n")
        out.write("# QUASI_SUM), beta = index into betas (0 only where unused), threshold vote_th.\n")
        out.write("# vscene/<s>/{boxes,scores,sigmas}: var voting inputs (sigmas = predicted std);\n")
        out.write("# var_voting/<s>/<hard>/<+1>/{indices,boxes,scores} in selection order.\n")
        out.write(f"meta numpy {np.__version__}\n")
        out.write(f"meta seed {SEED}\n")
        write_table(out, "vote_th", [VOTE_TH])
        write_table(out, "betas", np.array([BETAS]))
        write_table(out, "nms_th", [NMS_TH])
        for name, boxes in scenes.items():
            scores = rng.uniform(0.05, 1.0, size=len(boxes))
            dets = np.concatenate([boxes, scores[:, None]], axis=1)
            keep = greedy_nms(dets, 0.5, 0.0)
            top = dets[keep]
            write_table(out, f"scene/{name}/kept_boxes", top[:, :4])
            write_table(out, f"scene/{name}/kept_scores", top[:, 4])
            write_table(out, f"scene/{name}/all_boxes", dets[:, :4])
            write_table(out, f"scene/{name}/all_scores", dets[:, 4])
            for m, method in enumerate(METHODS):
                for b, beta in enumerate(BETAS):
                    if b > 0 and method in ("ID", "AVG", "IOU_AVG"):
                        continue  # beta unused
                    for pixel in (0, 1):
                        voted = detectron_box_voting(top, dets, VOTE_TH, method, beta, float(pixel))
                        stem = f"box_voting/{name}/{m}/{b}/{pixel}"
                        write_table(out, stem + "/boxes", voted[:, :4])
                        write_table(out, stem + "/scores", voted[:, 4])
        for name, boxes in scenes.items():
            n = len(boxes)
            scores = rng.uniform(0.01, 1.0, size=n)
            sigmas = rng.uniform(0.2, 3.0, size=(n, 4))
            dets = np.concatenate([boxes, scores[:, None]], axis=1)
            write_table(out, f"vscene/{name}/boxes", boxes)
            write_table(out, f"vscene/{name}/scores", scores)
            write_table(out, f"vscene/{name}/sigmas", sigmas)
            for hard in (0, 1):
                for pixel in (0, 1):
                    index, voted, voted_scores = kl_soft(dets, sigmas, bool(hard), float(pixel))
                    stem = f"var_voting/{name}/{hard}/{pixel}"
                    write_table(out, stem + "/indices", index, integer=True)
                    write_table(out, stem + "/boxes", voted)
                    write_table(out, stem + "/scores", voted_scores)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
