#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Writes tests/data/saliency_perturb_torch.txt, the goldens of cvk/saliency/perturbation.hpp and
# cvk/saliency/fickle.hpp (tests/saliency/test_perturbation.cpp, test_fickle.cpp), written here
# independently of cvk's code:
#   occlusion  Captum's Occlusion formula (captum is not installed): windows from index 0,
#              ⌈(D − k)/s⌉ + 1 shifts per axis, cropped at the border, x·(1 − mask) + b·mask,
#              total += (f(x) − f(x_occ))·mask, divided by the summed masks; the model is a
#              small torch net (conv 3×3 + ReLU + mean + linear) whose C++ twin is in the test.
#   RISE masks TorchRay's _upsample_reflect (F.pad reflect + F.interpolate + crop) for the
#              torchray convention; the RISE authors' skimage resize(order=1, mode='reflect')
#              written out in numpy (half-pixel coordinates, mirrored taps) for the paper one.
#   RISE       end to end: cvk::rng (xoshiro256** seeded by splitmix64, re-implemented below)
#              draws the grids and shifts, the torch model scores x ⊙ M, maps = Σ f·M / Z.
#   FickleNet  the map expansion through F.unfold (window s, padding (s − 1)/2) and its
#              adjoint by autograd.
# Run with /usr/bin/python3 (Debian's python3-torch 1.13); CI never runs it. Text format:
# tests/fixture_writer.py's.
# SPDX-License-Identifier: MIT
import math
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

from fixture_writer import write_table  # same directory: the shared table writer

SEED = 20180607
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
DTYPES = ((torch.float32, "float32"), (torch.float64, "float64"))
MASK64 = (1 << 64) - 1

# Occlusion cases: (N, C, H, W, window c h w (c = 0: all), strides c h w, average,
#                   baseline kind (0 scalar, 1 tensor N×C×H×W, 2 tensor 1×C×H×W), scalar)
OCCLUSION_CASES = [
    (2, 2, 6, 7, 0, 2, 3, 1, 1, 2, 1, 0, 0.0),
    (1, 2, 6, 7, 1, 3, 3, 1, 2, 2, 1, 0, 0.5),   # one channel at a time, cropped windows
    (2, 2, 5, 5, 2, 5, 1, 1, 1, 1, 1, 1, 0.0),   # window = whole height (stride ignored)
    (1, 2, 7, 6, 0, 3, 2, 1, 3, 2, 0, 2, 0.0),   # PAIR's sum, broadcast baseline
    (1, 2, 4, 4, 0, 4, 4, 1, 1, 1, 1, 0, -1.0),  # one window over everything
]

# RISE mask cases: (H, W, cells, mode (0 paper, 1 torchray), shift_y, shift_x)
RISE_MASK_CASES = [
    (64, 70, 7, 0, 7, 9),
    (56, 56, 7, 1, 0, 7),
    (10, 13, 3, 0, 3, 4),
    (10, 13, 3, 1, 1, 0),
    (9, 5, 4, 0, 2, 1),
    (9, 5, 4, 1, 2, 1),
    (6, 6, 2, 1, 2, 2),
    (5, 8, 1, 0, 4, 0),
    (3, 4, 7, 0, 0, 0),     # more cells than pixels
    (3, 4, 7, 1, 0, 0),
]

# RISE end-to-end cases: (N, C, H, W, cells, masks, p, seed, mode, normalization (0 paper))
RISE_CASES = [
    (2, 2, 10, 13, 3, 24, 0.5, 7, 0, 0),
    (1, 2, 9, 8, 4, 30, 0.3, 11, 1, 1),
    (2, 2, 12, 12, 5, 17, 0.8, 0, 1, 0),
]

# FickleNet expansion cases: (N, K, h, w, s)
FICKLE_CASES = [(2, 3, 4, 5, 3), (1, 2, 3, 3, 5), (1, 2, 2, 4, 1), (1, 1, 1, 1, 3)]


class Rng:
    """cvk::rng: xoshiro256** seeded through splitmix64 from (seed, stream)."""

    def __init__(self, seed, stream):
        x = (seed ^ ((stream * 0xD1B54A32D192ED03 + 0x8CB92BA72F3D8DD7) & MASK64)) & MASK64
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK64

    def next(self):
        s = self.s
        result = (self.rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self.rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53

    def below(self, n):
        threshold = ((1 << 64) - n) % n
        while True:
            r = self.next()
            if r >= threshold:
                return r % n


class Net(torch.nn.Module):
    """The score model of the occlusion and RISE goldens: conv 3×3 (pad 1) → ReLU → spatial
    mean → linear to one score. Its C++ twin is tiny_net in test_perturbation.cpp."""

    def __init__(self, gen):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 3, 3, padding=1)
        self.fc = torch.nn.Linear(3, 1)
        with torch.no_grad():
            # float32-representable weights: the float64 twin reads the same numbers.
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen).to(torch.float32))

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.fc(y.mean(dim=(2, 3)))[:, 0]


def axis_windows(d, k, s):
    count = math.ceil((d - k) / s) + 1
    return [(j * s, min(j * s + k, d)) for j in range(count)]


def captum_occlusion(net, x, window, strides, average, baseline):
    """Captum's Occlusion over (C, H, W), written from its formula with dense masks."""
    n, c, h, w = x.shape
    kc = window[0] if window[0] > 0 else c
    axes = [axis_windows(c, kc, strides[0]), axis_windows(h, window[1], strides[1]),
            axis_windows(w, window[2], strides[2])]
    base = net(x)
    total = torch.zeros_like(x)
    weight = torch.zeros_like(x)
    for (w0, w1) in axes[2]:
        for (h0, h1) in axes[1]:
            for (c0, c1) in axes[0]:
                mask = torch.zeros((1, c, h, w), dtype=x.dtype)
                mask[:, c0:c1, h0:h1, w0:w1] = 1
                occluded = x * (1 - mask) + baseline * mask
                diff = base - net(occluded)
                total += diff.reshape(n, 1, 1, 1) * mask
                weight += mask
    return total / weight if average else total


def torchray_mask(grid, h, w, cells, sy, sx):
    """TorchRay's rise(): grid upsampled by _upsample_reflect to (H + cell, W + cell), cropped."""
    cell = (math.ceil(h / cells), math.ceil(w / cells))
    up = (h + cell[0], w + cell[1])
    g = grid.reshape(1, 1, cells, cells)
    c2 = [int(math.ceil(up[i] / cells)) for i in range(2)]
    pad = [c2[i] * (cells + 2) for i in range(2)]
    padded = F.pad(g, (1, 1, 1, 1), mode="reflect")
    x_up = F.interpolate(padded, pad, mode="bilinear", align_corners=False)
    x_up = x_up[:, :, c2[0]:c2[0] + up[0], c2[1]:c2[1] + up[1]]
    return x_up[0, 0, sy:sy + h, sx:sx + w]


def mirror(i, n):
    """numpy 'reflect' (scipy 'mirror'): index −1 reads 1, index n reads n − 2."""
    if n == 1:
        return np.zeros_like(i)
    period = 2 * (n - 1)
    r = np.mod(i, period)
    return np.where(r < n, r, period - r)


def paper_mask(grid, h, w, cells, sy, sx):
    """The RISE authors' generate_masks: skimage resize(grid, (cells + 1)·cell, order=1,
    mode='reflect', anti_aliasing=False) then the crop [sy:sy + H, sx:sx + W]."""
    g = grid.numpy().astype(np.float64)
    cell = (math.ceil(h / cells), math.ceil(w / cells))
    up = ((cells + 1) * cell[0], (cells + 1) * cell[1])
    ys = (np.arange(sy, sy + h) + 0.5) * cells / up[0] - 0.5
    xs = (np.arange(sx, sx + w) + 0.5) * cells / up[1] - 0.5
    y0 = np.floor(ys).astype(np.int64)
    x0 = np.floor(xs).astype(np.int64)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    ya, yb = mirror(y0, cells), mirror(y0 + 1, cells)
    xa, xb = mirror(x0, cells), mirror(x0 + 1, cells)
    top = g[ya][:, xa] * (1 - fx) + g[ya][:, xb] * fx
    bottom = g[yb][:, xa] * (1 - fx) + g[yb][:, xb] * fx
    return torch.from_numpy(top * (1 - fy) + bottom * fy)


def rise_mask(m, seed, h, w, cells, p, mode):
    """Mask m of cvk's rise: the grid row by row (1 when uniform < p), then sy, then sx."""
    r = Rng(seed, m)
    grid = torch.tensor([1.0 if r.uniform() < p else 0.0 for _ in range(cells * cells)],
                        dtype=torch.float64).reshape(cells, cells)
    sy = r.below(math.ceil(h / cells))
    sx = r.below(math.ceil(w / cells))
    make = paper_mask if mode == 0 else torchray_mask
    return make(grid, h, w, cells, sy, sx)


def write_params(out, name, params):
    out.write(f"table {name}/params 1 {len(params)}\n" + " ".join(map(str, params)) + "\n")


def main():
    gen = torch.Generator().manual_seed(SEED)
    net64 = Net(gen).double()
    net32 = Net(gen)
    net32.load_state_dict({k: v.float() for k, v in net64.state_dict().items()})
    path = DATA_DIR / "saliency_perturb_torch.txt"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write("# cvk golden fixtures: occlusion (Captum's formula), RISE masks (TorchRay's and\n")
        out.write("# the RISE authors' upsampling), RISE end to end, FickleNet map expansion.\n")
        out.write("# Generated by tests/gen_saliency_perturb_fixtures.py; do not edit (rerun it).\n")
        out.write("# model/*: conv.weight 3×2×3×3, conv.bias 3, fc.weight 1×3, fc.bias 1.\n")
        out.write("# occ<k>/params: N C H W wc wh ww sc sh sw average baseline_kind baseline\n")
        out.write("# risemask<k>/params: H W cells mode shift_y shift_x (mode 0 paper, 1 torchray)\n")
        out.write("# rise<k>/params: N C H W cells masks p seed mode normalization (0 paper)\n")
        out.write("# fickle<k>/params: N K h w s; grad = d<expand(x), y>/dx\n")
        out.write(f"meta torch {torch.__version__}\n")
        out.write(f"meta seed {SEED}\n")
        for name, cases in (("occ", OCCLUSION_CASES), ("risemask", RISE_MASK_CASES),
                            ("rise", RISE_CASES), ("fickle", FICKLE_CASES)):
            out.write(f"meta {name}_cases {len(cases)}\n")
        state = net64.state_dict()
        write_table(out, "model/conv_weight", state["conv.weight"], torch.float64)
        write_table(out, "model/conv_bias", state["conv.bias"], torch.float64)
        write_table(out, "model/fc_weight", state["fc.weight"], torch.float64)
        write_table(out, "model/fc_bias", state["fc.bias"], torch.float64)

        with torch.no_grad():
            for k, case in enumerate(OCCLUSION_CASES):
                n, c, h, w, wc, wh, ww, sc, sh, sw, average, kind, value = case
                write_params(out, f"occ{k}", list(case))
                x64 = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
                b64 = torch.randn(n if kind == 1 else 1, c, h, w, generator=gen,
                                  dtype=torch.float64)
                for dtype, dname in DTYPES:
                    net = net32 if dtype == torch.float32 else net64
                    x = x64.to(dtype)
                    base = b64.to(dtype) if kind else value
                    attr = captum_occlusion(net, x, (wc, wh, ww), (sc, sh, sw), average, base)
                    write_table(out, f"occ{k}/{dname}/input", x, dtype)
                    write_table(out, f"occ{k}/{dname}/baseline", b64.to(dtype), dtype)
                    write_table(out, f"occ{k}/{dname}/attribution", attr, dtype)

            for k, case in enumerate(RISE_MASK_CASES):
                h, w, cells, mode, sy, sx = case
                write_params(out, f"risemask{k}", list(case))
                grid = (torch.rand(cells, cells, generator=gen, dtype=torch.float64) < 0.5)
                grid = grid.to(torch.float64)
                make = paper_mask if mode == 0 else torchray_mask
                write_table(out, f"risemask{k}/grid", grid, torch.float64)
                write_table(out, f"risemask{k}/mask", make(grid, h, w, cells, sy, sx),
                            torch.float64)

            for k, case in enumerate(RISE_CASES):
                n, c, h, w, cells, masks, p, seed, mode, norm = case
                write_params(out, f"rise{k}", list(case))
                x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
                sal = torch.zeros(n, h, w, dtype=torch.float64)
                for m in range(masks):
                    mask = rise_mask(m, seed, h, w, cells, p, mode)
                    scores = net64(x * mask)
                    sal += scores.reshape(n, 1, 1) * mask
                sal /= masks * p if norm == 0 else masks
                write_table(out, f"rise{k}/input", x, torch.float64)
                write_table(out, f"rise{k}/maps", sal, torch.float64)

        for k, case in enumerate(FICKLE_CASES):
            n, kk, h, w, s = case
            write_params(out, f"fickle{k}", list(case))
            x = torch.randn(n, kk, h, w, generator=gen, dtype=torch.float64, requires_grad=True)
            cols = F.unfold(x, s, padding=(s - 1) // 2)  # N × (K·s·s) × (h·w)
            expanded = cols.reshape(n, kk, s, s, h, w).permute(0, 1, 4, 2, 5, 3)
            expanded = expanded.reshape(n, kk, h * s, w * s)
            y = torch.randn(expanded.shape, generator=gen, dtype=torch.float64)
            (expanded * y).sum().backward()
            write_table(out, f"fickle{k}/x", x.detach(), torch.float64)
            write_table(out, f"fickle{k}/expanded", expanded.detach(), torch.float64)
            write_table(out, f"fickle{k}/y", y, torch.float64)
            write_table(out, f"fickle{k}/grad", x.grad, torch.float64)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
