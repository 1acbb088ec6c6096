#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Writes tests/data/saliency_gradient_torch.txt: the gradient attributions of a tiny tanh MLP
# (f(x) = v·tanh(W·flatten(x) + b) + c on 2 images of 2×3×3) computed with PyTorch 1.13 autograd,
# in float32 and float64: the raw, absolute and channel-max gradient, gradient × input,
# integrated gradients for Captum's five rules (7 and 50 steps, zero and given baselines) with
# the completeness delta, and SmoothGrad / SmoothGrad² / VarGrad (base gradient and gradient ×
# input, relative and absolute noise) on noise from cvk::rng, replayed here in Python
# (xoshiro256** seeded by splitmix64, Box–Muller in double). Also the quadrature rules: Riemann
# points from torch.linspace in float64 and Gauss–Legendre from numpy's leggauss. The formulas
# are written here from Captum's definitions, independently of cvk. Needs Debian's
# python3-torch (run with /usr/bin/python3); CI never runs it. Format: tests/fixture_writer.py.
# SPDX-License-Identifier: MIT
import math
import pathlib

import numpy as np
import torch

from fixture_writer import write_table  # same directory: the shared table writer

SEED = 20191027
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
DTYPES = ((torch.float32, "float32"), (torch.float64, "float64"))
SHAPE = (2, 2, 3, 3)
HIDDEN = 5
METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
           "gauss_legendre")
SMOOTH_SAMPLES, SMOOTH_SIGMA_RANGE, SMOOTH_SIGMA_ABSOLUTE, SMOOTH_SEED = 4, 0.2, 0.05, 7
RULE_STEPS = (1, 2, 3, 5, 7, 10, 20, 50, 64)

MASK = (1 << 64) - 1


class CvkRng:
    """cvk::rng (include/cvk/core/rng.hpp) in Python integers: the same doubles bit for bit."""

    def __init__(self, seed, stream):
        x = seed ^ ((stream * 0xD1B54A32D192ED03 + 0x8CB92BA72F3D8DD7) & MASK)
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK

    def next(self):
        s = self.s
        result = (self._rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53

    def normal(self):
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def model(params, x):
    """Scores of a batch: one per image."""
    weight, bias, out, offset = params
    hidden = torch.tanh(x.reshape(x.shape[0], -1) @ weight.T + bias)
    return hidden @ out + offset


def gradient(params, x):
    """Autograd d score / d input of every image, and the scores."""
    x = x.detach().clone().requires_grad_(True)
    scores = model(params, x)
    (g,) = torch.autograd.grad(scores.sum(), x)
    return g.detach(), scores.detach()


def rule(method, n):
    """Captum's approximation_methods.py: (alphas, step sizes), in float64."""
    if method == "gauss_legendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return 0.5 * (1 + nodes), 0.5 * weights
    weights = np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        weights[0] /= 2
        weights[-1] /= 2
        alphas = torch.linspace(0, 1, n, dtype=torch.float64)
    elif method == "riemann_left":
        alphas = torch.linspace(0, 1 - 1 / n, n, dtype=torch.float64)
    elif method == "riemann_middle":
        alphas = torch.linspace(1 / (2 * n), 1 - 1 / (2 * n), n, dtype=torch.float64)
    else:
        alphas = torch.linspace(1 / n, 1, n, dtype=torch.float64)
    return alphas.numpy(), weights


def integrated_gradients(params, x, baseline, method, steps, dtype):
    alphas, weights = rule(method, steps)
    total = torch.zeros(x.shape, dtype=torch.float64)
    for alpha, weight in zip(alphas, weights):
        point = baseline + torch.tensor(float(alpha), dtype=dtype) * (x - baseline)
        g, _ = gradient(params, point)
        total += float(weight) * g.double()
    attributions = ((x.double() - baseline.double()) * total).to(dtype)
    f_x = model(params, x).double()
    f_b = model(params, baseline).double()
    delta = attributions.double().reshape(x.shape[0], -1).sum(dim=1) - (f_x - f_b)
    return attributions, delta.to(dtype)


def smooth_grad(params, x, kind, base, relative, dtype):
    sigma = SMOOTH_SIGMA_RANGE if relative else SMOOTH_SIGMA_ABSOLUTE
    result = []
    for n in range(x.shape[0]):
        image = x[n].double()
        s_n = sigma * (image.max() - image.min()).item() if relative else sigma
        flat = image.reshape(-1).tolist()
        samples = []
        for s in range(SMOOTH_SAMPLES):
            gen = CvkRng(SMOOTH_SEED, n * SMOOTH_SAMPLES + s)
            noisy = torch.tensor([v + s_n * gen.normal() for v in flat], dtype=torch.float64)
            noisy = noisy.to(dtype).reshape((1,) + tuple(x.shape[1:]))
            g, _ = gradient(params, noisy)
            a = g.double()
            if base == "x_input":
                a = a * noisy.double()
            samples.append(a[0])
        stack = torch.stack(samples)
        if kind == "smoothgrad":
            value = stack.mean(dim=0)
        elif kind == "smoothgrad_sq":
            value = (stack * stack).mean(dim=0)
        else:
            value = stack.var(dim=0, unbiased=False)  # population variance, as Captum
        result.append(value)
    return torch.stack(result).to(dtype)


def main():
    gen = torch.Generator().manual_seed(SEED)
    features = SHAPE[1] * SHAPE[2] * SHAPE[3]
    weight = torch.rand(HIDDEN, features, generator=gen, dtype=torch.float64) - 0.5
    bias = torch.rand(HIDDEN, generator=gen, dtype=torch.float64) - 0.5
    out = 2 * torch.rand(HIDDEN, generator=gen, dtype=torch.float64) - 1
    offset = torch.tensor([0.3], dtype=torch.float64)
    x = 2 * torch.rand(SHAPE, generator=gen, dtype=torch.float64) - 1
    baseline = 0.5 * torch.rand(SHAPE, generator=gen, dtype=torch.float64) - 0.25

    path = DATA_DIR / "saliency_gradient_torch.txt"
    with open(path, "w") as f:
        f.write("# Generated by tests/gen_saliency_gradient_fixtures.py with torch "
                f"{torch.__version__}, numpy {np.__version__}.\n")
        f.write("# Tanh MLP f(x) = out·tanh(weight·flatten(x) + bias) + offset; images NCHW, "
                "flattened NCHW.\n")
        f.write("# Parameters and inputs in float64; the float32 tables use them rounded to "
                "float32.\n")
        write_table(f, "shape", torch.tensor([SHAPE]), torch.int64)
        write_table(f, "mlp_weight", weight, torch.float64)
        write_table(f, "mlp_bias", bias.reshape(1, -1), torch.float64)
        write_table(f, "mlp_out", out.reshape(1, -1), torch.float64)
        write_table(f, "mlp_offset", offset.reshape(1, 1), torch.float64)
        write_table(f, "x", x.reshape(SHAPE[0], -1), torch.float64)
        write_table(f, "baseline", baseline.reshape(SHAPE[0], -1), torch.float64)
        write_table(f, "smooth_grad", torch.tensor(
            [[SMOOTH_SAMPLES, SMOOTH_SIGMA_RANGE, SMOOTH_SIGMA_ABSOLUTE, SMOOTH_SEED]],
            dtype=torch.float64), torch.float64)
        for method in METHODS:
            for n in RULE_STEPS:
                if method != "gauss_legendre" and n < 2:
                    continue
                alphas, weights = rule(method, n)
                write_table(f, f"rule_{method}_{n}",
                            torch.tensor(np.stack([alphas, weights])), torch.float64)
        for dtype, name in DTYPES:
            params = tuple(t.to(dtype) for t in (weight, bias, out, offset))
            xd, bd = x.to(dtype), baseline.to(dtype)

            def table(label, t):
                write_table(f, f"{name}_{label}", t.reshape(SHAPE[0], -1), dtype)

            g, _ = gradient(params, xd)
            table("gradient", g)
            table("abs_gradient", g.abs())
            table("channel_max", g.abs().max(dim=1, keepdim=True).values)
            table("x_input", xd * g)
            for method in METHODS:
                for steps in (7, 50):
                    for label, base in (("zero", torch.zeros_like(xd)), ("given", bd)):
                        attributions, delta = integrated_gradients(params, xd, base, method,
                                                                   steps, dtype)
                        key = f"ig_{method}_{steps}_{label}"
                        table(key, attributions)
                        write_table(f, f"{name}_{key}_delta", delta.reshape(1, -1), dtype)
            for kind in ("smoothgrad", "smoothgrad_sq", "vargrad"):
                for base in ("gradient", "x_input"):
                    for relative in (True, False):
                        key = f"smooth_{kind}_{base}_{'range' if relative else 'absolute'}"
                        table(key, smooth_grad(params, xd, kind, base, relative, dtype))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
