#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Regenerates the box-loss fixtures under tests/data from torchvision 0.14 (values and autograd
# gradients); needs torch and torchvision only when run, CI reads the text files it writes.
# SPDX-License-Identifier: MIT
"""Writes tests/data/box_loss_iou.txt and tests/data/box_loss_kl.txt.

box_loss_iou.txt: torchvision.ops generalized_box_iou_loss, distance_box_iou_loss and
complete_box_iou_loss, plus the IoU loss 1 - inter / (union + eps) built from torchvision's own
``_loss_inter_union`` (torchvision has no iou_loss), on ~100 random pairs and hand-made edge cases
(identical, nested, touching, disjoint, zero-area, inverted predicted corners), in float32 and
float64. For each loss: the values with reduction none/mean/sum and the autograd gradients with
respect to the predicted boxes (none: the vector-Jacobian product with ``grad_loss``; mean, sum:
the gradient of the scalar). The ``ordered`` variant first puts the predicted corners in order
(GIoU paper, Algorithm 2, step 1) with torch.min / torch.max, which torchvision does not do.

box_loss_kl.txt: the KL loss of He et al. (CVPR 2019) written with torch ops, values and autograd
gradients with respect to the prediction and the log-variance.

Format: that of tests/gen_fixtures.py (shared writer; shortest round-trip decimals, nan, inf).

Usage: /usr/bin/python3 tests/gen_loss_fixtures.py   (Debian python3-torch / python3-torchvision)
"""

import pathlib
import sys

import numpy as np
import torch
import torchvision
from torchvision.ops import complete_box_iou_loss, distance_box_iou_loss, generalized_box_iou_loss
from torchvision.ops._utils import _loss_inter_union

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from gen_fixtures import write_table  # noqa: E402  (the fixture writer shared by all generators)

SEED = 20190617  # fixed: the fixtures must not change when regenerated
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
DTYPES = ((torch.float32, "float32"), (torch.float64, "float64"))


def iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    """1 - IoU with generalized_box_iou_loss's own intersection and union."""
    inter, union = _loss_inter_union(boxes1, boxes2)
    loss = 1 - inter / (union + eps)
    if reduction == "mean":
        loss = loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


LOSSES = {
    "iou": iou_loss,
    "giou": generalized_box_iou_loss,
    "diou": distance_box_iou_loss,
    "ciou": complete_box_iou_loss,
}


def ordered(pred):
    """GIoU Algorithm 2, step 1: x1 = min(x1, x2), x2 = max(x1, x2) (same for y)."""
    x1, y1, x2, y2 = pred.unbind(dim=-1)
    return torch.stack(
        [torch.min(x1, x2), torch.min(y1, y2), torch.max(x1, x2), torch.max(y1, y2)], dim=-1
    )


def random_pairs(rng):
    """~100 random (pred, target) pairs, float64."""
    pairs = []
    # 60 image-scale pairs: the prediction is the target jittered, so most overlap.
    for _ in range(60):
        x1, y1 = rng.uniform(-50.0, 600.0, 2)
        w, h = rng.uniform(1.0, 200.0, 2)
        target = [x1, y1, x1 + w, y1 + h]
        jitter = rng.normal(0.0, 0.25, 4) * np.array([w, h, w, h])
        pred = [target[0] + jitter[0], target[1] + jitter[1], target[2] + jitter[2],
                target[3] + jitter[3]]
        pairs.append((pred, target))
    # 25 independent normalized boxes (often disjoint).
    for _ in range(25):
        boxes = []
        for _ in range(2):
            xs = np.sort(rng.uniform(0.0, 1.0, 2))
            ys = np.sort(rng.uniform(0.0, 1.0, 2))
            boxes.append([xs[0], ys[0], xs[1], ys[1]])
        pairs.append((boxes[0], boxes[1]))
    # 15 predictions of any corner order against valid targets (some inverted predictions).
    for _ in range(15):
        target_x = np.sort(rng.uniform(-10.0, 10.0, 2))
        target_y = np.sort(rng.uniform(-10.0, 10.0, 2))
        pred = list(rng.uniform(-10.0, 10.0, 4))
        pairs.append((pred, [target_x[0], target_y[0], target_x[1], target_y[1]]))
    return pairs


def edge_pairs():
    """Hand-made edge cases; dyadic values so that ties stay ties in float32."""
    return [
        ([0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]),  # identical: every min/max ties
        ([10.0, 20.0, 30.0, 60.0], [10.0, 20.0, 30.0, 60.0]),  # identical, larger
        ([1.0, 1.0, 2.0, 2.0], [0.0, 0.0, 4.0, 4.0]),  # prediction nested in the target
        ([-1.0, -2.0, 5.0, 6.0], [0.0, 0.0, 4.0, 4.0]),  # target nested in the prediction
        ([0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 4.0, 4.0]),  # nested, sharing a corner (ties)
        ([0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]),  # overlap, equal y extents (ties)
        ([0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0]),  # touching along an edge
        ([0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 2.0, 2.0]),  # touching at a corner
        ([0.0, 0.0, 1.0, 1.0], [3.0, 4.0, 5.0, 7.0]),  # disjoint
        ([0.0, 0.0, 1.0, 1.0], [0.5, 3.0, 1.5, 5.0]),  # disjoint in y, overlapping in x
        ([1.0, 1.0, 1.0, 3.0], [0.0, 0.0, 2.0, 2.0]),  # zero-width prediction
        ([1.0, 1.0, 3.0, 1.0], [0.0, 0.0, 2.0, 2.0]),  # zero-height prediction
        ([0.0, 0.0, 2.0, 2.0], [1.0, 0.5, 1.0, 1.5]),  # zero-width target
        ([2.0, 2.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]),  # prediction inverted in x and y
        ([2.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]),  # prediction inverted in x
        ([0.0, 3.0, 2.0, 1.0], [0.5, 0.5, 1.5, 2.5]),  # prediction inverted in y
        ([4.0, 1.0, 1.0, 5.0], [1.0, 1.0, 4.0, 5.0]),  # inverted copy of the target
        ([0.0, 0.0, 8.0, 1.0], [3.5, -2.0, 4.5, 3.0]),  # same centre, very different aspect
        ([0.0, 0.0, 4.0, 2.0], [0.0, 0.0, 2.0, 4.0]),  # same corner, transposed aspect
        ([1000.25, 2000.5, 1100.75, 2100.0], [1010.0, 1990.0, 1105.0, 2080.5]),  # large coords
        ([-8.0, -6.0, -2.0, -1.0], [-7.0, -5.0, -3.0, 0.5]),  # negative coordinates
    ]


def degenerate_pairs():
    """Pairs whose CIoU loss is NaN (atan(0/0) of a point box); kept apart so that the reduced
    losses of the main set stay finite."""
    return [
        ([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0]),  # point prediction
        ([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]),  # two equal points (vision#7746: GIoU 1)
        ([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0]),  # point target
    ]


def compute(loss_fn, pred, target, grad_loss, reduction, order, eps):
    """Loss value and autograd gradient with respect to pred."""
    p = pred.clone().requires_grad_(True)
    boxes = ordered(p) if order else p
    kwargs = {} if eps is None else {"eps": eps}
    loss = loss_fn(boxes, target, reduction=reduction, **kwargs)
    if reduction == "none":
        loss.backward(grad_loss)
        value = loss.detach().reshape(-1, 1)
    else:
        loss.backward()
        value = loss.detach().reshape(1, 1)
    return value, p.grad.detach()


def write_iou_family(path, rng):
    pairs = random_pairs(rng) + edge_pairs()
    pred64 = torch.tensor([p for p, _ in pairs], dtype=torch.float64)
    target64 = torch.tensor([t for _, t in pairs], dtype=torch.float64)
    grad_loss64 = torch.tensor(rng.uniform(-2.0, 2.0, len(pairs)), dtype=torch.float64)
    with open(path, "w", encoding="utf-8") as out:
        out.write("# cvk golden fixtures: IoU-family box losses of torchvision.ops, values and\n")
        out.write("# autograd gradients with respect to pred.\n")
        out.write("# Generated by tests/gen_loss_fixtures.py; do not edit (rerun the script).\n")
        out.write("# <loss>[/ordered][/eps=<e>]/<reduction>/<dtype>: loss values (N×1 for none)\n")
        out.write("# <loss>[/ordered][/eps=<e>]/grad_<reduction>/<dtype>: d loss / d pred, N×4;\n")
        out.write("# for none the vector-Jacobian product with grad_loss/<dtype>.\n")
        out.write("# ordered: pred corners put in order first (GIoU Algorithm 2, step 1).\n")
        out.write(f"meta torch {torch.__version__}\n")
        out.write(f"meta torchvision {torchvision.__version__}\n")
        out.write(f"meta seed {SEED}\n")
        out.write(f"meta random_pairs {len(pairs) - len(edge_pairs())}\n")
        for dtype, name in DTYPES:
            pred = pred64.to(dtype)
            target = target64.to(dtype)
            grad_loss = grad_loss64.to(dtype)
            write_table(out, f"pred/{name}", pred, dtype)
            write_table(out, f"target/{name}", target, dtype)
            write_table(out, f"grad_loss/{name}", grad_loss.reshape(-1, 1), dtype)
            variants = [(loss, False, None) for loss in LOSSES]
            variants += [(loss, True, None) for loss in LOSSES]
            # A non-default eps (CIoU excluded: torchvision 0.14 ignores it in the DIoU term).
            variants += [(loss, False, 0.01) for loss in ("iou", "giou", "diou")]
            for loss, order, eps in variants:
                prefix = loss + ("/ordered" if order else "")
                prefix += "" if eps is None else f"/eps={eps}"
                for reduction in ("none", "mean", "sum"):
                    value, grad = compute(
                        LOSSES[loss], pred, target, grad_loss, reduction, order, eps
                    )
                    assert value.dtype == dtype and grad.dtype == dtype
                    write_table(out, f"{prefix}/{reduction}/{name}", value, dtype)
                    write_table(out, f"{prefix}/grad_{reduction}/{name}", grad, dtype)
        # Degenerate pairs: reduction none, gradient of the sum.
        for dtype, name in DTYPES:
            pred = torch.tensor([p for p, _ in degenerate_pairs()], dtype=dtype)
            target = torch.tensor([t for _, t in degenerate_pairs()], dtype=dtype)
            write_table(out, f"degenerate/pred/{name}", pred, dtype)
            write_table(out, f"degenerate/target/{name}", target, dtype)
            for loss in LOSSES:
                value, grad = compute(LOSSES[loss], pred, target, None, "sum", False, None)
                value = LOSSES[loss](pred, target, reduction="none").reshape(-1, 1)
                write_table(out, f"degenerate/{loss}/none/{name}", value, dtype)
                write_table(out, f"degenerate/{loss}/grad_sum/{name}", grad, dtype)
        # Mean of nothing: torchvision returns 0.0 * loss.sum() = 0 (and a zero gradient).
        empty = torch.zeros((0, 4), dtype=torch.float64)
        for loss in LOSSES:
            value = LOSSES[loss](empty, empty, reduction="mean")
            assert value.item() == 0.0
    print(f"wrote {path}", file=sys.stderr)


def kl_loss(pred, log_var, target, reduction):
    """KL loss (He et al. 2019) with the smooth-L1 branch, in the operation order of cvk."""
    diff = target - pred
    distance = diff.abs()
    smooth = torch.where(distance <= 1, 0.5 * (diff * diff), distance - 0.5)
    loss = torch.exp(-log_var) * smooth + 0.5 * log_var
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


def write_kl(path, rng):
    n = 64
    pred64 = torch.tensor(rng.uniform(-3.0, 3.0, (n, 4)), dtype=torch.float64)
    # Half of the residuals below 1 (quadratic branch), half above (linear branch).
    offsets = rng.uniform(-0.95, 0.95, (n, 4))
    far = rng.uniform(1.05, 4.0, (n, 4)) * rng.choice([-1.0, 1.0], (n, 4))
    use_far = rng.uniform(0.0, 1.0, (n, 4)) < 0.5
    target64 = pred64 + torch.tensor(np.where(use_far, far, offsets), dtype=torch.float64)
    log_var64 = torch.tensor(rng.uniform(-4.0, 3.0, (n, 4)), dtype=torch.float64)
    grad_loss64 = torch.tensor(rng.uniform(-2.0, 2.0, (n, 4)), dtype=torch.float64)
    with open(path, "w", encoding="utf-8") as out:
        out.write("# cvk golden fixtures: KL loss of He et al. (CVPR 2019) written with torch\n")
        out.write("# ops, values and autograd gradients with respect to pred and log_var.\n")
        out.write("# Generated by tests/gen_loss_fixtures.py; do not edit (rerun the script).\n")
        out.write(f"meta torch {torch.__version__}\n")
        out.write(f"meta seed {SEED}\n")
        for dtype, name in DTYPES:
            pred = pred64.to(dtype)
            target = target64.to(dtype)
            log_var = log_var64.to(dtype)
            grad_loss = grad_loss64.to(dtype)
            write_table(out, f"pred/{name}", pred, dtype)
            write_table(out, f"log_var/{name}", log_var, dtype)
            write_table(out, f"target/{name}", target, dtype)
            write_table(out, f"grad_loss/{name}", grad_loss, dtype)
            for reduction in ("none", "mean", "sum"):
                p = pred.clone().requires_grad_(True)
                v = log_var.clone().requires_grad_(True)
                loss = kl_loss(p, v, target, reduction)
                if reduction == "none":
                    loss.backward(grad_loss)
                    value = loss.detach()
                else:
                    loss.backward()
                    value = loss.detach().reshape(1, 1)
                write_table(out, f"kl/{reduction}/{name}", value, dtype)
                write_table(out, f"kl/grad_pred_{reduction}/{name}", p.grad, dtype)
                write_table(out, f"kl/grad_log_var_{reduction}/{name}", v.grad, dtype)
    print(f"wrote {path}", file=sys.stderr)


def main():
    rng = np.random.default_rng(SEED)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    write_iou_family(DATA_DIR / "box_loss_iou.txt", rng)
    write_kl(DATA_DIR / "box_loss_kl.txt", rng)


if __name__ == "__main__":
    main()
