#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Writes tests/data/saliency_extremal_torch.txt: golden values for <cvk/saliency/extremal.hpp>,
# computed by an independent torch implementation of TorchRay's extremal perturbations
# (torchray/attribution/extremal_perturbation.py @6a198ee, torchray/utils.py imsmooth; TorchRay
# itself is not installed — when `import torchray` works, its MaskGenerator is checked against
# this implementation first):
#   mask<k>:    the smooth-mask generator (unfold of the zero-padded grid, nearest upsampling by
#               `step`, crop of step − 1, per-pixel kernel weights, smooth max / sum / sigmoid
#               pooling, clamp, crop at round(sigma)), its full and cropped masks, and the
#               gradient of the grid through autograd for random upstream gradients on the crop
#               and on the full mask;
#   pyramid<k>: blur (separable imsmooth kernel through conv2d, zero padding) and fade pyramids,
#               Perturbation.apply on masks that include level boundaries, 0 and 1, and the
#               mask gradient through autograd;
#   loop<k>:    a few iterations of the whole optimisation (preserve, delete, dual; two areas;
#               jitter; blur and fade) with an analytic model score = Σ W·x + ½·Σ V·x², in
#               float64: the final masks and the history.
# float32 tables are computed in float32 (TorchRay's dtype), float64 in float64. Run with
# /usr/bin/python3 (Debian's python3-torch 1.13); CI never runs it. Format: fixture_writer.py.
# SPDX-License-Identifier: MIT
import math
import pathlib

import torch
import torch.nn.functional as F

from fixture_writer import write_table

SEED = 20191027
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
DTYPES = ((torch.float32, "float32"), (torch.float64, "float64"))
POOLINGS = {"smooth_max": 0, "sum": 1, "sigmoid": 2}

# (K, H, W, step, sigma, pooling, coldness, clamp)
MASK_CASES = [
    (2, 32, 32, 7, 5.0, "smooth_max", 20.0, 1),
    (2, 13, 17, 4, 4.0, "smooth_max", 20.0, 1),
    (1, 20, 11, 3, 2.5, "smooth_max", 5.0, 1),     # sigma rounds half to even (margin 2)
    (2, 16, 16, 4, 3.0, "sum", 20.0, 1),
    (1, 16, 16, 4, 3.0, "sum", 20.0, 0),           # no clamp: values above 1 kept
    (1, 15, 14, 5, 4.0, "sigmoid", 2.0, 1),
    (2, 12, 12, 3, 3.5, "smooth_max", math.inf, 1),  # hard max
    (1, 9, 10, 1, 1.5, "smooth_max", 20.0, 1),     # step 1: one node per pixel
]

# (C, H, W, kind, levels, max_blur, K)   kind 0 blur, 1 fade
PYRAMID_CASES = [
    (3, 12, 15, 0, 4, 2.5, 3),
    (2, 9, 8, 0, 8, 20.0, 2),    # TorchRay's defaults: kernels far wider than the image
    (3, 10, 7, 1, 5, 20.0, 3),
    (1, 5, 6, 0, 2, 1.0, 2),
]

# (C, H, W, areas, mode, kind, levels, max_blur, step, sigma, iterations, lr, lambda0, growth,
#  jitter)   mode 0 preserve, 1 delete, 2 dual
LOOP_CASES = [
    (2, 18, 21, (0.1, 0.3), 0, 0, 5, 3.0, 4, 4.0, 12, 0.05, 300.0, 1.0035, 1),
    (2, 18, 21, (0.2,), 1, 1, 8, 20.0, 4, 4.0, 12, 0.05, 300.0, 1.0035, 1),
    (1, 16, 16, (0.15, 0.4), 2, 0, 4, 2.0, 5, 3.0, 10, 0.1, 100.0, 1.01, 0),
]


def python_round(x):
    """Python's round (half to even) as TorchRay's `round(self.margin)`."""
    return round(x)


class MaskGenerator:
    """TorchRay's MaskGenerator, written from its formulas (not copied)."""

    def __init__(self, shape, step, sigma, dtype, pooling, coldness, clamp):
        self.shape, self.step, self.sigma = shape, step, sigma
        self.pooling, self.coldness, self.clamp = pooling, coldness, clamp
        self.margin = sigma
        self.padding = 1 + math.ceil((self.margin + sigma) / step)
        self.radius = 1 + math.ceil(sigma / step)
        self.shape_in = [math.ceil(z / step) for z in shape]
        self.shape_mid = [z + 2 * self.padding - (2 * self.radius + 1) + 1 for z in self.shape_in]
        self.shape_up = [step * z for z in self.shape_mid]
        self.shape_out = [z - step + 1 for z in self.shape_up]
        taps = 2 * self.radius + 1
        uy = torch.arange(self.shape_out[0], dtype=dtype).reshape(-1, 1)
        ux = torch.arange(self.shape_out[1], dtype=dtype).reshape(1, -1)
        cell_y = torch.div(torch.arange(self.shape_out[0]), step, rounding_mode="floor")
        cell_x = torch.div(torch.arange(self.shape_out[1]), step, rounding_mode="floor")
        weight = torch.zeros(1, taps * taps, *self.shape_out, dtype=dtype)
        for ky in range(taps):
            for kx in range(taps):
                iy = (cell_y + ky - self.padding).to(dtype).reshape(-1, 1)
                ix = (cell_x + kx - self.padding).to(dtype).reshape(1, -1)
                dist = torch.sqrt((uy - (self.margin + step * iy)) ** 2 +
                                  (ux - (self.margin + step * ix)) ** 2)
                z = dist / sigma
                weight[0, ky * taps + kx] = torch.exp(-2 * (z - 0.5).clamp(min=0) ** 2)
        self.weight = weight

    def generate(self, grid):
        taps = 2 * self.radius + 1
        cols = F.unfold(grid, (taps, taps), padding=(self.padding, self.padding))
        cols = cols.reshape(grid.shape[0], -1, *self.shape_mid)
        cols = F.interpolate(cols, size=self.shape_up, mode="nearest")
        cols = cols[:, :, :self.shape_out[0], :self.shape_out[1]]
        p = self.weight * cols
        if self.pooling == "smooth_max":
            if math.isinf(self.coldness):
                m = p.max(dim=1, keepdim=True)[0]
            else:
                m = (p * F.softmax(self.coldness * p, dim=1)).sum(dim=1, keepdim=True)
        elif self.pooling == "sum":
            m = p.sum(dim=1, keepdim=True)
        else:
            if math.isinf(self.coldness):
                m = (p.sum(dim=1, keepdim=True) - 5 > 0).to(p.dtype)
            else:
                m = torch.sigmoid(self.coldness * p.sum(dim=1, keepdim=True) - 3)
        if self.clamp:
            m = m.clamp(min=0, max=1)
        c = python_round(self.margin)
        return m[:, :, c:c + self.shape[0], c:c + self.shape[1]], m


def imsmooth(x, sigma):
    """TorchRay's imsmooth with constant zero padding: separable kernel, vertical first. float32
    uses TorchRay's x / (√2·σ + eps) exactly; float64 the exact exp(−x²/(2σ²))."""
    width = math.ceil(4 * sigma)
    if x.dtype == torch.float32:
        t = torch.arange(-width, width + 1, dtype=torch.float32)
        t = t / (torch.tensor(math.sqrt(2), dtype=torch.float32) * sigma +
                 torch.tensor(1.19209290e-07, dtype=torch.float32))
        f = torch.exp(-t * t)
    else:
        t = torch.arange(-width, width + 1, dtype=torch.float64)
        f = torch.exp(-t * t / (2 * sigma * sigma)) if sigma > 0 else (t == 0).to(torch.float64)
    f = f / f.sum()
    c = x.shape[1]
    y = F.conv2d(x, f.reshape(1, 1, -1, 1).expand(c, -1, -1, -1), padding=(width, 0), groups=c)
    return F.conv2d(y, f.reshape(1, 1, 1, -1).expand(c, -1, -1, -1), padding=(0, width), groups=c)


def pyramid(x, kind, levels, max_blur):
    """TorchRay's Perturbation: level l from torch.linspace(0, 1, L) (in x's dtype)."""
    out = []
    for t in torch.linspace(0, 1, levels, dtype=x.dtype):
        if kind == 0:
            out.append(imsmooth(x, float((1 - t) * max_blur)))
        else:
            out.append(x * t)
    return torch.cat(out, dim=0)


def apply(pyr, mask):
    """Perturbation.apply: mask K×1×H×W → K×C×H×W."""
    levels = pyr.shape[0]
    n = mask.shape[0]
    w = mask.reshape(n, 1, 1, *mask.shape[1:]) * (levels - 1)
    k = w.floor()
    w = w - k
    k = k.long()
    y = pyr[None].expand(n, *pyr.shape)
    k = k.expand(n, 1, *pyr.shape[1:])
    y0 = torch.gather(y, 1, k)
    y1 = torch.gather(y, 1, torch.clamp(k + 1, max=levels - 1))
    return ((1 - w) * y0 + w * y1).squeeze(1)


def write_params(out, name, params):
    out.write(f"table {name}/params 1 {len(params)}\n" + " ".join(map(str, params)) + "\n")


def mask_cases(out, gen):
    for index, (k, h, w, step, sigma, pooling, coldness, clamp) in enumerate(MASK_CASES):
        write_params(out, f"mask{index}", [k, h, w, step, sigma, POOLINGS[pooling],
                                           "inf" if math.isinf(coldness) else coldness, clamp])
        probe = MaskGenerator((h, w), step, sigma, torch.float64, pooling, coldness, clamp)
        grid64 = torch.rand(k, 1, *probe.shape_in, generator=gen, dtype=torch.float64)
        gcrop64 = torch.randn(k, 1, h, w, generator=gen, dtype=torch.float64)
        gfull64 = torch.randn(k, 1, *probe.shape_out, generator=gen, dtype=torch.float64)
        for dtype, dname in DTYPES:
            mg = MaskGenerator((h, w), step, sigma, dtype, pooling, coldness, clamp)
            prefix = f"mask{index}/{dname}"
            grid = grid64.to(dtype).requires_grad_(True)
            crop, full = mg.generate(grid)
            (crop * gcrop64.to(dtype)).sum().backward()
            grad_crop = grid.grad.clone()
            grid.grad = None
            crop, full = mg.generate(grid)
            (full * gfull64.to(dtype)).sum().backward()
            grad_full = grid.grad.clone()
            write_table(out, f"{prefix}/grid", grid.detach(), dtype)
            write_table(out, f"{prefix}/full", full.detach(), dtype)
            write_table(out, f"{prefix}/crop", crop.detach(), dtype)
            write_table(out, f"{prefix}/grad_crop", gcrop64.to(dtype), dtype)
            write_table(out, f"{prefix}/grad_grid_from_crop", grad_crop, dtype)
            write_table(out, f"{prefix}/grad_full", gfull64.to(dtype), dtype)
            write_table(out, f"{prefix}/grad_grid_from_full", grad_full, dtype)
            if dtype == torch.float64:
                shapes = [*mg.shape_in, *mg.shape_out, python_round(sigma), mg.padding, mg.radius]
                write_table(out, f"mask{index}/shapes", torch.tensor(shapes), torch.int64)


def pyramid_cases(out, gen):
    for index, (c, h, w, kind, levels, max_blur, k) in enumerate(PYRAMID_CASES):
        write_params(out, f"pyramid{index}", [c, h, w, kind, levels, max_blur, k])
        x64 = torch.randn(1, c, h, w, generator=gen, dtype=torch.float64)
        m64 = torch.rand(k, h, w, generator=gen, dtype=torch.float64)
        flat = m64.view(-1)
        flat[0], flat[1], flat[2] = 0.0, 1.0, 1.0 / (levels - 1)
        flat[3 % flat.numel()] = (levels - 2) / (levels - 1)
        g64 = torch.randn(k, c, h, w, generator=gen, dtype=torch.float64)
        for dtype, dname in DTYPES:
            prefix = f"pyramid{index}/{dname}"
            pyr = pyramid(x64.to(dtype), kind, levels, max_blur)
            mask = m64.to(dtype).requires_grad_(True)
            y = apply(pyr, mask)
            (y * g64.to(dtype)).sum().backward()
            write_table(out, f"{prefix}/image", x64.to(dtype), dtype)
            write_table(out, f"{prefix}/levels", pyr, dtype)
            write_table(out, f"{prefix}/masks", mask.detach(), dtype)
            write_table(out, f"{prefix}/apply", y.detach(), dtype)
            write_table(out, f"{prefix}/grad_output", g64.to(dtype), dtype)
            write_table(out, f"{prefix}/grad_masks", mask.grad, dtype)


def run_loop(case, areas, x, wmodel, vmodel):
    """TorchRay's extremal_perturbation loop with an analytic model, in float64; the sort is
    stable (ties in position order), as cvk's. Returns the last masks, the history (A×T×2) and,
    per area, the first iteration whose sorted full mask has a near tie (gap < 1e-12) across the
    regulariser's 0/1 boundary, with the sorted values (None when there is none)."""
    (c, h, w, _, mode, kind, levels, max_blur, step, sigma, iterations, lr, lambda0, growth,
     jitter) = case
    dtype = torch.float64

    def model(batch):
        return (batch * wmodel).sum(dim=(1, 2, 3)) + 0.5 * (batch * batch * vmodel).sum(
            dim=(1, 2, 3))

    pyr = pyramid(x, kind, levels, max_blur)
    mg = MaskGenerator((h, w), step, sigma, dtype, "smooth_max", 20.0, True)
    num = len(areas)
    pmask = torch.ones(num, 1, *mg.shape_in, dtype=dtype)
    max_area = mg.shape_out[0] * mg.shape_out[1]
    reference = torch.ones(num, max_area, dtype=dtype)
    zeros = [int(max_area * (1 - a)) for a in areas]
    for i, z in enumerate(zeros):
        reference[i, :z] = 0
    optimizer = torch.optim.SGD([pmask], lr=lr, momentum=0.9, dampening=0.9)
    hist = []
    ties = [None] * num
    regul_weight = lambda0
    for t in range(iterations):
        pmask.requires_grad_(True)
        crop, full = mg.generate(pmask)
        if mode == 1:
            xs = apply(pyr, 1 - crop.squeeze(1))
        elif mode == 0:
            xs = apply(pyr, crop.squeeze(1))
        else:
            xs = torch.cat((apply(pyr, crop.squeeze(1)), apply(pyr, 1 - crop.squeeze(1))), 0)
        if jitter and t % 2 == 0:
            xs = torch.flip(xs, dims=(3,))
        y = model(xs)
        if mode == 1:
            reward = -y
        elif mode == 0:
            reward = y
        else:
            reward = y[:num] - y[num:]
        ranked = full.reshape(num, -1).sort(dim=1, stable=True)[0]
        for i, z in enumerate(zeros):
            # Exact ties (pixels whose taps are computed alike: zeros, the periodic interior of a
            # uniform grid) keep their position order under a stable sort in every
            # implementation; values a few ulps apart (mirror-image pixels) may be ordered
            # either way by another implementation's rounding.
            gap = ranked[i, z] - ranked[i, z - 1] if 0 < z < max_area else 1.0
            if ties[i] is None and 0 < gap < 1e-12:
                ties[i] = ranked[i].detach().clone()
        regul = -((ranked - reference) ** 2).mean(dim=1) * regul_weight
        energy = (reward + regul).sum()
        optimizer.zero_grad()
        (-energy).backward()
        optimizer.step()
        pmask.data = pmask.data.clamp(0, 1)
        hist.append(torch.stack((reward.detach(), regul.detach()), dim=1))
        regul_weight *= growth
    return crop.detach(), torch.stack(hist, dim=1), ties, max_area


def loop_cases(out, gen):
    """A few iterations of the whole optimisation. Where the sorted full mask has (near) ties
    across the 0/1 boundary of the regulariser's reference, which tied value gets the 1 depends
    on rounding (TorchRay's too), so the gradient is not reproducible: such an area is moved to
    the nearest gap between distinct values and the loop rerun."""
    dtype = torch.float64
    for index, case in enumerate(LOOP_CASES):
        c, h, w, areas = case[0], case[1], case[2], list(case[3])
        x = torch.rand(1, c, h, w, generator=gen, dtype=dtype)
        wmodel = torch.randn(c, h, w, generator=gen, dtype=dtype) * 2
        vmodel = torch.randn(c, h, w, generator=gen, dtype=dtype)
        # The areas are optimised independently: search each alone for a boundary count k
        # (area 1 − (k + ½)/M) near the requested one whose whole run has no ambiguous tie.
        for i in range(len(areas)):
            _, _, ties, max_area = run_loop(case, [areas[i]], x, wmodel, vmodel)
            if ties[0] is None:
                continue
            z = int(max_area * (1 - areas[i]))
            for k in sorted(range(1, max_area), key=lambda k: (abs(k - z), k))[:400]:
                candidate = 1 - (k + 0.5) / max_area
                if run_loop(case, [candidate], x, wmodel, vmodel)[2][0] is None:
                    print(f"loop{index}: area {areas[i]} moved to {candidate} (ties)")
                    areas[i] = candidate
                    break
            else:
                raise RuntimeError(f"loop{index}: no area near {areas[i]} without ties")
        crop, hist, ties, max_area = run_loop(case, areas, x, wmodel, vmodel)
        assert all(t is None for t in ties)
        (_, _, _, _, mode, kind, levels, max_blur, step, sigma, iterations, lr, lambda0, growth,
         jitter) = case
        write_params(out, f"loop{index}", [c, h, w, len(areas), *areas, mode, kind, levels,
                                           max_blur, step, sigma, iterations, lr, lambda0,
                                           growth, jitter])
        prefix = f"loop{index}/float64"
        write_table(out, f"{prefix}/image", x, dtype)
        write_table(out, f"{prefix}/w", wmodel, dtype)
        write_table(out, f"{prefix}/v", vmodel, dtype)
        write_table(out, f"{prefix}/masks", crop, dtype)
        write_table(out, f"{prefix}/history", hist, dtype)  # A×T×2


def check_torchray():
    try:
        from torchray.attribution.extremal_perturbation import MaskGenerator as Reference
    except ImportError:
        return "not installed"
    gen = torch.Generator().manual_seed(1)
    for (k, h, w, step, sigma, pooling, coldness, clamp) in MASK_CASES:
        if pooling != "smooth_max" or math.isinf(coldness) or coldness != 20.0:
            continue
        ours = MaskGenerator((h, w), step, sigma, torch.float32, pooling, coldness, clamp)
        ref = Reference((h, w), step, sigma)
        grid = torch.rand(k, 1, *ref.shape_in, generator=gen)
        a, b = ours.generate(grid), ref.generate(grid)
        assert torch.allclose(a[0], b[0], atol=1e-6) and torch.allclose(a[1], b[1], atol=1e-6)
    return "matches this implementation"


def main():
    gen = torch.Generator().manual_seed(SEED)
    status = check_torchray()
    path = DATA_DIR / "saliency_extremal_torch.txt"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write("# cvk golden fixtures: TorchRay's extremal perturbations (mask generator, "
                  "perturbation pyramid, optimisation loop).\n")
        out.write("# Generated by tests/gen_saliency_extremal_fixtures.py; do not edit "
                  "(rerun the script).\n")
        out.write("# mask<k>/params: K H W step sigma pooling(0 smooth_max, 1 sum, 2 sigmoid) "
                  "coldness clamp\n")
        out.write("# mask<k>/shapes: grid_h grid_w full_h full_w margin padding radius\n")
        out.write("# pyramid<k>/params: C H W kind(0 blur, 1 fade) levels max_blur K\n")
        out.write("# loop<k>/params: C H W A areas... mode(0 preserve, 1 delete, 2 dual) kind "
                  "levels max_blur step sigma iterations lr lambda0 growth jitter\n")
        out.write("# gradients: autograd of (output · upstream).sum().\n")
        out.write(f"meta torch {torch.__version__}\n")
        out.write(f"meta seed {SEED}\n")
        out.write(f"meta torchray {status.replace(' ', '_')}\n")
        out.write(f"meta mask_cases {len(MASK_CASES)}\n")
        out.write(f"meta pyramid_cases {len(PYRAMID_CASES)}\n")
        out.write(f"meta loop_cases {len(LOOP_CASES)}\n")
        mask_cases(out, gen)
        pyramid_cases(out, gen)
        loop_cases(out, gen)
    print(f"wrote {path} (torchray: {status})")


if __name__ == "__main__":
    main()
