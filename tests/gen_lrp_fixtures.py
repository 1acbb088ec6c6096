#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Writes tests/data/lrp_torch.txt: layer-wise relevance propagation on a tiny CNN in float64 —
# conv 3→4 3×3 (padding 1), batch norm, ReLU, conv 4→4 3×3 groups 2 (padding 1), batch norm, ReLU,
# max pool 2, depthwise conv 4 3×3 (padding 1), ReLU, avg pool 2, flatten, linear 16→3 — on
# 2 images of 3×8×8, with seeded random weights and batch-norm statistics. Batch norm is merged
# into the conv before it (W' = W·s, b' = (b − mean)·s + beta, s = gamma/√(var + eps)); each rule
# is computed as zennit computes it, a vector-Jacobian product of the layer with modified inputs
# and parameters (torch.autograd.grad of the modified layer's output, weighted by R over the
# stabilised z, times the modified input), written here from the rules' definitions in
# include/cvk/saliency/lrp.hpp, independently of cvk; pooling by zennit's Norm rule (the average
# pool's output stabilised) or, for max pooling, its gradient. For the composites epsilon_gamma_box,
# epsilon_plus_flat (also with proportional max pooling), epsilon_alpha2_beta1_flat and
# kohlbrenner, and both starts (the score, one), it stores the input relevance and Σ R per image
# at every layer boundary; also the network's scores through the unmerged layers. Needs Debian's
# python3-torch (run with /usr/bin/python3); CI never runs it. Format: tests/fixture_writer.py.
# SPDX-License-Identifier: MIT
import pathlib

import torch
import torch.nn.functional as F

from fixture_writer import write_table  # same directory: the shared table writer

SEED = 20200221
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
D = torch.float64
N, C, H, W, K = 2, 3, 8, 8, 3
TARGETS = (1, 2)
LOW = (-1.2, -0.8, -1.0)  # per-channel z_box bounds; the input is drawn inside them
HIGH = (1.0, 1.3, 0.9)
BN_EPS = 1e-5
EPSILON = 1e-6  # every rule's stabiliser and the pooling layers' (cvk's defaults)
GAMMA = 0.25


def stabilize(z, eps):
    """z + ε·sign(z), sign(0) = +1."""
    return z + eps * torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))


def vjp(fn, x, grad_out):
    """The gradient of fn at x weighted by grad_out (a vector-Jacobian product)."""
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(x), x, grad_out)
    return g.detach()


def make_parameters(gen):
    def normal(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen, dtype=D) * scale

    def uniform(*shape, lo, hi):
        return lo + (hi - lo) * torch.rand(*shape, generator=gen, dtype=D)

    def bn(c):
        return {"mean": normal(c, scale=0.2), "var": uniform(c, lo=0.5, hi=1.5),
                "gamma": uniform(c, lo=0.6, hi=1.4), "beta": normal(c, scale=0.2)}

    return {
        "conv1_weight": normal(4, 3, 3, 3, scale=0.4), "conv1_bias": normal(4, scale=0.1),
        "bn1": bn(4),
        "conv2_weight": normal(4, 2, 3, 3, scale=0.4), "conv2_bias": normal(4, scale=0.1),
        "bn2": bn(4),
        "conv3_weight": normal(4, 1, 3, 3, scale=0.5), "conv3_bias": normal(4, scale=0.1),
        "linear_weight": normal(K, 16, scale=0.5), "linear_bias": normal(K, scale=0.1),
    }


def unmerged_scores(p, x):
    """The network as torch runs it, batch norm in inference form."""
    def bn(y, s):
        return F.batch_norm(y, s["mean"], s["var"], s["gamma"], s["beta"], False, 0.0, BN_EPS)

    y = F.relu(bn(F.conv2d(x, p["conv1_weight"], p["conv1_bias"], padding=1), p["bn1"]))
    y = F.relu(bn(F.conv2d(y, p["conv2_weight"], p["conv2_bias"], padding=1, groups=2), p["bn2"]))
    y = F.max_pool2d(y, 2)
    y = F.relu(F.conv2d(y, p["conv3_weight"], p["conv3_bias"], padding=1, groups=4))
    y = F.avg_pool2d(y, 2)
    return F.linear(torch.flatten(y, 1), p["linear_weight"], p["linear_bias"])


def merge(weight, bias, s):
    """zennit's MergeBatchNorm on an output-channel axis 0."""
    scale = s["gamma"] / torch.sqrt(s["var"] + BN_EPS)
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return weight * scale.reshape(shape), (bias - s["mean"]) * scale + s["beta"]


def merged_layers(p):
    """The layer list after batch-norm merging, as cvk's lrp_merge_batch_norm returns it."""
    w1, b1 = merge(p["conv1_weight"], p["conv1_bias"], p["bn1"])
    w2, b2 = merge(p["conv2_weight"], p["conv2_bias"], p["bn2"])
    return [
        ("conv", w1, b1, 1), ("relu",), ("conv", w2, b2, 2), ("relu",), ("max_pool",),
        ("conv", p["conv3_weight"], p["conv3_bias"], 4), ("relu",), ("avg_pool",), ("flatten",),
        ("linear", p["linear_weight"], p["linear_bias"]),
    ]


def forward(layer, x, weight=None, bias=None):
    """One layer, optionally with replaced parameters (the rules' modified layers)."""
    kind = layer[0]
    if kind == "conv":
        return F.conv2d(x, layer[1] if weight is None else weight,
                        layer[2] if bias is None else bias, padding=1, groups=layer[3])
    if kind == "linear":
        return F.linear(x, layer[1] if weight is None else weight,
                        layer[2] if bias is None else bias)
    if kind == "relu":
        return F.relu(x)
    if kind == "max_pool":
        return F.max_pool2d(x, 2)
    if kind == "avg_pool":
        return F.avg_pool2d(x, 2)
    return torch.flatten(x, 1)


def linear_rule(layer, rule, a, r, bounds):
    """R of a conv or linear layer's input from R of its output, by `rule`."""
    name = rule[0]
    w, b = layer[1], layer[2]

    def fn(weight, bias):
        return lambda inp: forward(layer, inp, weight, bias)

    def ratio(z, eps):
        return r / stabilize(z, eps)

    if name in ("zero", "epsilon", "gamma"):
        if name == "gamma":
            w, b = w + GAMMA * w.clamp(min=0), b + GAMMA * b.clamp(min=0)
        z = fn(w, b)(a)
        if name == "zero":
            nonzero = torch.where(z == 0, torch.ones_like(z), z)
            grad_out = torch.where(z == 0, torch.zeros_like(z), r / nonzero)  # 0 where z = 0
        else:
            grad_out = ratio(z, EPSILON)
        return a * vjp(fn(w, b), a, grad_out)
    if name == "alpha_beta":
        alpha, beta = rule[1], rule[2]
        ap, an = a.clamp(min=0), a.clamp(max=0)
        wp, wn = w.clamp(min=0), w.clamp(max=0)
        bp, bn = b.clamp(min=0), b.clamp(max=0)
        zero_b = torch.zeros_like(b)
        # P: the positive contributions a⁺w⁺ + a⁻w⁻ + b⁺; Q: the negative ones a⁺w⁻ + a⁻w⁺ + b⁻.
        zp = fn(wp, bp)(ap) + fn(wn, zero_b)(an)
        zq = fn(wn, bn)(ap) + fn(wp, zero_b)(an)
        gp, gq = ratio(zp, EPSILON), ratio(zq, EPSILON)
        p_rel = ap * vjp(fn(wp, bp), ap, gp) + an * vjp(fn(wn, zero_b), an, gp)
        q_rel = ap * vjp(fn(wn, bn), ap, gq) + an * vjp(fn(wp, zero_b), an, gq)
        return alpha * p_rel - beta * q_rel
    if name == "z_box":
        low, high = bounds
        lo = low.reshape(1, -1, 1, 1).expand_as(a)
        hi = high.reshape(1, -1, 1, 1).expand_as(a)
        wp, wn = w.clamp(min=0), w.clamp(max=0)
        bp, bn = b.clamp(min=0), b.clamp(max=0)
        # b − b⁺ − b⁻ = 0: the bias does not enter.
        z = fn(w, b)(a) - fn(wp, bp)(lo) - fn(wn, bn)(hi)
        g = ratio(z, EPSILON)
        return a * vjp(fn(w, b), a, g) - lo * vjp(fn(wp, bp), lo, g) - hi * vjp(fn(wn, bn), hi, g)
    if name == "flat":
        ones_w, zero_b = torch.ones_like(w), torch.zeros_like(b)
        ones_a = torch.ones_like(a)
        z = fn(ones_w, zero_b)(ones_a)
        return vjp(fn(ones_w, zero_b), ones_a, ratio(z, EPSILON))
    raise ValueError(name)


def pool_rule(layer, a, r, proportional):
    """R through a pooling layer: the gradient for winner-take-all max pooling, else zennit's Norm
    rule over the average pool of the same windows, R_j = a_j Σ_k (∂y_k/∂a_j) R_k / stab(y_k) =
    a_j Σ_k R_k / (window sum + 4ε) for these 2×2 windows."""
    if layer[0] == "max_pool" and not proportional:
        return vjp(lambda inp: F.max_pool2d(inp, 2), a, r)

    def mean(inp):
        return F.avg_pool2d(inp, 2)

    return a * vjp(mean, a, r / stabilize(mean(a), EPSILON))


def composite_rules(layers, name):
    """The rule of every conv or linear layer (index → rule) under composite `name`."""
    learned = [i for i, layer in enumerate(layers) if layer[0] in ("conv", "linear")]
    rules = {}
    for i in learned:
        kind = layers[i][0]
        if name == "epsilon_gamma_box":
            rule = ("z_box",) if i == learned[0] else (
                ("gamma",) if kind == "conv" else ("epsilon",))
        elif name in ("epsilon_plus_flat", "epsilon_plus_flat_proportional"):
            rule = ("flat",) if i == learned[0] else (
                ("alpha_beta", 1.0, 0.0) if kind == "conv" else ("epsilon",))
        elif name == "epsilon_alpha2_beta1_flat":
            rule = ("flat",) if i == learned[0] else (
                ("alpha_beta", 2.0, 1.0) if kind == "conv" else ("epsilon",))
        elif name == "kohlbrenner":
            if i == learned[0]:
                rule = ("z_box",)
            elif i == learned[-1]:
                rule = ("zero",)
            else:
                rule = ("gamma",) if kind == "conv" else ("epsilon",)
        else:
            raise ValueError(name)
        rules[i] = rule
    return rules


def lrp(layers, x, name, start, bounds):
    """Input relevance (N×C×H×W) and Σ R per image at every layer boundary (N×(L + 1))."""
    activations = [x]
    for layer in layers:
        activations.append(forward(layer, activations[-1]))
    scores = activations[-1]
    onehot = torch.zeros_like(scores)
    onehot[torch.arange(N), torch.tensor(TARGETS)] = 1
    r = onehot * scores if start == "score" else onehot
    rules = composite_rules(layers, name)
    totals = [None] * (len(layers) + 1)
    totals[len(layers)] = r.reshape(N, -1).sum(1)
    for i in reversed(range(len(layers))):
        layer, a = layers[i], activations[i]
        if layer[0] in ("conv", "linear"):
            r = linear_rule(layer, rules[i], a, r, bounds)
        elif layer[0] in ("max_pool", "avg_pool"):
            r = pool_rule(layer, a, r, name.endswith("proportional"))
        elif layer[0] == "flatten":
            r = r.reshape(a.shape)
        # ReLU: R passes unchanged.
        totals[i] = r.reshape(N, -1).sum(1)
    return r, torch.stack(totals, 1)


def main():
    gen = torch.Generator().manual_seed(SEED)
    p = make_parameters(gen)
    low, high = torch.tensor(LOW, dtype=D), torch.tensor(HIGH, dtype=D)
    unit = torch.rand(N, C, H, W, generator=gen, dtype=D)
    x = low.reshape(1, -1, 1, 1) + (high - low).reshape(1, -1, 1, 1) * unit
    layers = merged_layers(p)
    scores = unmerged_scores(p, x)
    merged_scores = x
    for layer in layers:
        merged_scores = forward(layer, merged_scores)
    assert torch.allclose(scores, merged_scores, rtol=1e-12, atol=1e-12)

    path = DATA_DIR / "lrp_torch.txt"
    with open(path, "w") as f:
        f.write("# written by tests/gen_lrp_fixtures.py (PyTorch 1.13, float64)\n")
        f.write(f"meta torch {torch.__version__}\n")
        f.write(f"meta shape {N} {C} {H} {W}\n")
        write_table(f, "targets", torch.tensor([TARGETS]), torch.int64)
        write_table(f, "low", low.reshape(1, -1), D)
        write_table(f, "high", high.reshape(1, -1), D)
        write_table(f, "x", x.reshape(N, -1), D)
        for key in ("conv1", "conv2", "conv3"):
            write_table(f, f"{key}_weight", p[f"{key}_weight"].reshape(4, -1), D)
            write_table(f, f"{key}_bias", p[f"{key}_bias"].reshape(1, -1), D)
        for key in ("bn1", "bn2"):
            for field in ("mean", "var", "gamma", "beta"):
                write_table(f, f"{key}_{field}", p[key][field].reshape(1, -1), D)
        write_table(f, "linear_weight", p["linear_weight"], D)
        write_table(f, "linear_bias", p["linear_bias"].reshape(1, -1), D)
        write_table(f, "scores", scores, D)
        for name in ("epsilon_gamma_box", "epsilon_plus_flat", "epsilon_plus_flat_proportional",
                     "epsilon_alpha2_beta1_flat", "kohlbrenner"):
            for start in ("score", "one"):
                relevance, totals = lrp(layers, x, name, start, (low, high))
                write_table(f, f"relevance_{name}_{start}", relevance.reshape(N, -1), D)
                write_table(f, f"totals_{name}_{start}", totals, D)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
