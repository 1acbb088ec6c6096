#!/usr/bin/env python3
# cvk — computer-vision kernels, header-only C++20.
# Writes tests/data/saliency_post_torch.txt, the goldens of the saliency post-processing and
# metrics (tests/saliency/test_postprocess.cpp, test_metrics.cpp): PyTorch 1.13
# F.interpolate(mode="bilinear") with both align_corners, TorchRay's imsmooth (its formula:
# separable conv2d with zero, replicate or reflect padding), and the reference formulas of the
# normalisations, SSIM (skimage.metrics.structural_similarity), Spearman (scipy.stats.spearmanr)
# and the RISE deletion/insertion curves written here in torch/numpy (scipy and skimage are not
# needed). Run with /usr/bin/python3; CI never runs it. Text format: tests/fixture_writer.py's.
# SPDX-License-Identifier: MIT
import math
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

from fixture_writer import write_table  # same directory: the shared table writer

SEED = 20181008
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
DTYPES = ((torch.float32, "float32"), (torch.float64, "float64"))

# (H, W, Ho, Wo, align_corners)
BILINEAR_CASES = [
    (7, 7, 32, 32, 0),
    (7, 7, 32, 32, 1),
    (3, 5, 8, 11, 0),
    (3, 5, 8, 11, 1),
    (9, 6, 4, 3, 0),    # downsampling
    (9, 6, 4, 3, 1),
    (1, 4, 5, 1, 0),    # one source row, one output column
    (1, 4, 5, 1, 1),
    (5, 5, 5, 5, 0),    # same size: a copy
    (2, 3, 7, 13, 1),
]

# (H, W, sigma, border) — border 0 zero, 1 replicate, 2 reflect (torch's reflect padding
# needs pad < extent, so those cases keep ceil(4σ) below H and W)
BLUR_CASES = [
    (9, 11, 1.0, 0),
    (9, 11, 1.0, 1),
    (9, 11, 1.0, 2),
    (12, 10, 0.7, 2),
    (6, 7, 2.5, 0),     # kernel wider than the plane
    (6, 7, 2.5, 1),
    (1, 9, 1.3, 0),
    (20, 17, 4.0, 1),
    (5, 5, 0.0, 0),     # σ = 0 copies
]


def imsmooth(x, sigma, border, eps):
    """TorchRay's imsmooth (utils.py): taps exp(−(x/(√2·σ + eps))²), x in [−ceil(4σ), ceil(4σ)],
    normalised; vertical conv then horizontal; constant-zero, replicate or reflect padding.
    TorchRay's eps is 1.19209290e-07; eps = 0 gives cvk's taps exp(−x²/(2σ²))."""
    width = math.ceil(4 * sigma)
    if sigma == 0:
        filt = torch.ones(1, dtype=x.dtype)
    else:
        filt = torch.arange(-width, width + 1, dtype=x.dtype) / (math.sqrt(2) * sigma + eps)
        filt = torch.exp(-filt * filt)
    filt = filt / filt.sum()
    c = x.shape[1]
    if border == 0:
        y = F.conv2d(x, filt.reshape(1, 1, -1, 1).expand(c, -1, -1, -1), padding=(width, 0),
                     groups=c)
        return F.conv2d(y, filt.reshape(1, 1, 1, -1).expand(c, -1, -1, -1), padding=(0, width),
                        groups=c)
    mode = "replicate" if border == 1 else "reflect"
    y = F.pad(x, (width, width, width, width), mode=mode)
    y = F.conv2d(y, filt.reshape(1, 1, -1, 1).expand(c, -1, -1, -1), groups=c)
    return F.conv2d(y, filt.reshape(1, 1, 1, -1).expand(c, -1, -1, -1), groups=c)


def write_params(out, name, params):
    out.write(f"table {name}/params 1 {len(params)}\n" + " ".join(map(str, params)) + "\n")


def write_case(out, prefix, tensors):
    for dtype, dname in DTYPES:
        for key, value in tensors(dtype).items():
            write_table(out, f"{prefix}/{dname}/{key}", value,
                        torch.int64 if value.dtype == torch.int64 else dtype)


def resample_section(out, gen):
    for k, (h, w, ho, wo, align) in enumerate(BILINEAR_CASES):
        write_params(out, f"bilinear{k}", [h, w, ho, wo, align])
        x64 = torch.randn(1, 1, h, w, generator=gen, dtype=torch.float64)

        def tensors(dtype, x64=x64, size=(ho, wo), align=bool(align)):
            x = x64.to(dtype)
            y = F.interpolate(x, size=size, mode="bilinear", align_corners=align)
            return {"input": x[0, 0], "output": y[0, 0]}
        write_case(out, f"bilinear{k}", tensors)

    for k, (h, w, sigma, border) in enumerate(BLUR_CASES):
        write_params(out, f"blur{k}", [h, w, sigma, border])
        x64 = torch.randn(1, 1, h, w, generator=gen, dtype=torch.float64)

        def tensors(dtype, x64=x64, sigma=sigma, border=border):
            x = x64.to(dtype)
            return {"input": x[0, 0], "output": imsmooth(x, sigma, border, 0.0)[0, 0],
                    "torchray": imsmooth(x, sigma, border, 1.19209290e-07)[0, 0]}
        write_case(out, f"blur{k}", tensors)


# normalize: (mode, sign, per_map, outlier_percent, percentile)
NORMALIZE_MODES = ("min_max", "max_abs", "percentile_clip", "percentile")
NORMALIZE_SIGNS = ("all", "positive", "negative", "absolute")


def select_sign(x, sign):
    if sign == "positive":
        return np.maximum(x, 0.0)
    if sign == "negative":
        return np.maximum(-x, 0.0)
    if sign == "absolute":
        return np.abs(x)
    return x


def cumulative_sum_threshold(values, percentile):
    """Captum's visualization._cumulative_sum_threshold, written out."""
    sorted_vals = np.sort(values.flatten())
    cum_sums = np.cumsum(sorted_vals)
    threshold_id = np.where(cum_sums >= cum_sums[-1] * 0.01 * percentile)[0][0]
    return sorted_vals[threshold_id]


def normalize_reference(x, mode, sign, outlier_percent=2.0, percentile=99.0):
    """One map (or the whole batch) normalised: the formulas of Captum (_normalize_attr, sign
    selection, cumulative-sum threshold), PAIR (VisualizeImageGrayscale), pytorch-grad-cam
    (min-max) and Quantus (normalise_by_max), a zero range giving zeros."""
    s = select_sign(x, sign)
    if mode == "min_max":
        lo, hi = s.min(), s.max()
        return np.zeros_like(s) if hi == lo else (s - lo) / (hi - lo)
    if mode == "max_abs":
        m = np.abs(s).max()
        return np.zeros_like(s) if m == 0 else s / m
    if mode == "percentile_clip":
        t = cumulative_sum_threshold(np.abs(s), 100.0 - outlier_percent)
        return np.zeros_like(s) if t == 0 else np.clip(s / t, -1, 1)
    vmax = np.percentile(s, percentile)
    vmin = s.min()
    return np.zeros_like(s) if vmax == vmin else np.clip((s - vmin) / (vmax - vmin), 0, 1)


def normalize_section(out, rng):
    x = rng.standard_normal((3, 6, 7))
    x[1] = np.round(x[1] * 2) / 2  # ties
    x[2, :3] = 0.0                 # a block of zeros
    x32 = x.astype(np.float32)
    write_table(out, "normalize/float64/input", torch.from_numpy(x), torch.float64)
    write_table(out, "normalize/float32/input", torch.from_numpy(x32), torch.float32)
    for mode in NORMALIZE_MODES:
        for sign in NORMALIZE_SIGNS:
            for per_map in (1, 0):
                for dname, data, dtype in (("float64", x, torch.float64),
                                           ("float32", x32.astype(np.float64), torch.float32)):
                    if per_map:
                        y = np.stack([normalize_reference(m, mode, sign) for m in data])
                    else:
                        y = normalize_reference(data, mode, sign)
                    write_table(out, f"normalize/{mode}/{sign}/{per_map}/{dname}",
                                torch.from_numpy(y).to(dtype), dtype)


def spearman_section(out, rng):
    """scipy.stats.spearmanr of map pairs, signed and absolute."""
    from scipy.stats import spearmanr
    a = rng.standard_normal((4, 5, 6))
    b = 0.6 * a + 0.8 * rng.standard_normal((4, 5, 6))
    a[1] = np.round(a[1])          # ties in a
    b[1] = np.round(b[1] * 2) / 2  # ties in b
    b[2] = -a[2] + 0.1 * rng.standard_normal((5, 6))
    rho, rho_abs = [], []
    for i in range(4):
        rho.append(spearmanr(a[i].ravel(), b[i].ravel()).correlation)
        rho_abs.append(spearmanr(np.abs(a[i]).ravel(), np.abs(b[i]).ravel()).correlation)
    for dname, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        ad = a.astype(np.float32).astype(np.float64) if dtype == torch.float32 else a
        bd = b.astype(np.float32).astype(np.float64) if dtype == torch.float32 else b
        r = [spearmanr(ad[i].ravel(), bd[i].ravel()).correlation for i in range(4)]
        ra = [spearmanr(np.abs(ad[i]).ravel(), np.abs(bd[i]).ravel()).correlation
              for i in range(4)]
        write_table(out, f"spearman/{dname}/a", torch.from_numpy(ad).to(dtype), dtype)
        write_table(out, f"spearman/{dname}/b", torch.from_numpy(bd).to(dtype), dtype)
        write_table(out, f"spearman/{dname}/rho", torch.tensor(r, dtype=torch.float64),
                    torch.float64)
        write_table(out, f"spearman/{dname}/rho_abs", torch.tensor(ra, dtype=torch.float64),
                    torch.float64)


def skimage_ssim(a, b, win_size=7, gaussian=False, sigma=1.5, sample_covariance=True,
                 data_range=None, k1=0.01, k2=0.03):
    """skimage.metrics.structural_similarity (0.19) for 2-D float images, written out with
    scipy.ndimage's filters; data_range None = Quantus' joint max − min."""
    from scipy.ndimage import gaussian_filter, uniform_filter
    if data_range is None:
        data_range = float(abs(max(a.max(), b.max()) - min(a.min(), b.min())))
    if gaussian:
        truncate = 3.5
        win_size = 2 * int(truncate * sigma + 0.5) + 1

        def filt(z):
            return gaussian_filter(z, sigma=sigma, truncate=truncate, mode="reflect")
    else:
        def filt(z):
            return uniform_filter(z, size=win_size)
    npix = win_size ** 2
    cov_norm = npix / (npix - 1) if sample_covariance else 1.0
    ux, uy = filt(a), filt(b)
    uxx, uyy, uxy = filt(a * a), filt(b * b), filt(a * b)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    return s[pad:s.shape[0] - pad, pad:s.shape[1] - pad].mean(dtype=np.float64)


# (H, W, window, gaussian, sample_covariance, data_range (0 = joint), k1, k2)
SSIM_CASES = [
    (16, 16, 7, 0, 1, 0.0, 0.01, 0.03),
    (9, 12, 7, 0, 1, 0.0, 0.01, 0.03),
    (13, 11, 5, 0, 0, 2.0, 0.01, 0.03),
    (24, 20, 11, 1, 0, 0.0, 0.01, 0.03),  # Wang et al.: σ = 1.5, population covariance
    (15, 15, 11, 1, 1, 0.0, 0.02, 0.05),
    (7, 7, 7, 0, 1, 0.0, 0.01, 0.03),     # a single window
]


def ssim_section(out, rng):
    for k, (h, w, win, gaussian, sample, data_range, k1, k2) in enumerate(SSIM_CASES):
        write_params(out, f"ssim{k}", [h, w, win, gaussian, sample, data_range, k1, k2])
        a = rng.standard_normal((3, h, w))
        b = a + 0.5 * rng.standard_normal((3, h, w))
        b[2] = rng.uniform(-1, 1, (h, w))  # unrelated
        for dname, dtype in (("float64", torch.float64), ("float32", torch.float32)):
            ad = a.astype(np.float32).astype(np.float64) if dtype == torch.float32 else a
            bd = b.astype(np.float32).astype(np.float64) if dtype == torch.float32 else b
            values = [skimage_ssim(ad[i], bd[i], win_size=win, gaussian=bool(gaussian),
                                   sample_covariance=bool(sample),
                                   data_range=data_range if data_range > 0 else None,
                                   k1=k1, k2=k2) for i in range(3)]
            write_table(out, f"ssim{k}/{dname}/a", torch.from_numpy(ad).to(dtype), dtype)
            write_table(out, f"ssim{k}/{dname}/b", torch.from_numpy(bd).to(dtype), dtype)
            write_table(out, f"ssim{k}/{dname}/ssim", torch.tensor(values, dtype=torch.float64),
                        torch.float64)


def causal_section(out, rng):
    """RISE's CausalMetric.single_run on a linear model score = Σ weight·x (C×H×W): pixels by
    decreasing saliency (ties: lower index first), `step` at a time, deletion towards zeros and
    insertion from the image blurred with σ (zero border), auc() of RISE."""
    c, h, w, step, sigma = 3, 9, 8, 5, 1.5
    write_params(out, "causal", [c, h, w, step, sigma])
    x = rng.uniform(0, 1, (2, c, h, w))
    weight = rng.standard_normal((c, h, w))
    sal = rng.standard_normal((2, h, w))
    sal[1] = np.round(sal[1])  # ties
    n_steps = (h * w + step - 1) // step
    for dname, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        xd = x.astype(np.float32).astype(np.float64) if dtype == torch.float32 else x
        sd = sal.astype(np.float32).astype(np.float64) if dtype == torch.float32 else sal
        wd = weight.astype(np.float32).astype(np.float64) if dtype == torch.float32 else weight
        blurred = imsmooth(torch.from_numpy(xd), sigma, 0, 0.0).numpy()
        for mode in ("deletion", "insertion"):
            curves, aucs = [], []
            for i in range(2):
                order = np.argsort(-sd[i].ravel(), kind="stable")
                if mode == "deletion":
                    start, finish = xd[i].copy(), np.zeros_like(xd[i])
                else:
                    start, finish = blurred[i].copy(), xd[i].copy()
                scores = np.empty(n_steps + 1)
                for s in range(n_steps + 1):
                    scores[s] = float((wd * start).sum())
                    if s < n_steps:
                        coords = order[step * s:step * (s + 1)]
                        start.reshape(c, h * w)[:, coords] = finish.reshape(c, h * w)[:, coords]
                curves.append(scores)
                aucs.append((scores.sum() - scores[0] / 2 - scores[-1] / 2) / (scores.shape[0] - 1))
            write_table(out, f"causal/{dname}/{mode}/curve", torch.tensor(np.array(curves)),
                        torch.float64)
            write_table(out, f"causal/{dname}/{mode}/auc", torch.tensor(aucs), torch.float64)
        write_table(out, f"causal/{dname}/images", torch.from_numpy(xd).to(dtype), dtype)
        write_table(out, f"causal/{dname}/weight", torch.from_numpy(wd).to(dtype), dtype)
        write_table(out, f"causal/{dname}/maps", torch.from_numpy(sd).to(dtype), dtype)


def colour_section(out):
    """The reference colour tables: matplotlib's Turbo (Google's 256-entry table), Google's
    polynomial fit of it, and matplotlib's bwr, as
    0-255 floats, and OpenCV's COLORMAP_JET table built the way colormap.cpp builds it: the
    float32 basemap r, g, b = clamp(1.5 − |4x − k|) on linspace(0, 1, 256), interp1 at the same
    points in float32, then convertTo(CV_8U, 255) (float32 product, round half to even)."""
    from matplotlib import cm
    t = np.arange(256)
    write_table(out, "colour/turbo", torch.from_numpy(cm.turbo(t)[:, :3] * 255.0), torch.float64)
    # Google's published polynomial fit of Turbo (Mikhailov 2019), clamped, ×255, rounded.
    coefficients = ((0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943),
                    (0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604),
                    (0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973))
    x = t / 255.0
    poly = np.stack([np.clip(sum(k[j] * x ** j for j in range(6)), 0, 1) for k in coefficients], 1)
    write_table(out, "colour/turbo_poly", torch.from_numpy(np.round(poly * 255.0)), torch.float64)
    write_table(out, "colour/bwr", torch.from_numpy(cm.bwr(t)[:, :3] * 255.0), torch.float64)
    f32 = np.float32
    step = f32(f32(1) - f32(0)) / f32(255)
    xs = np.array([f32(0) + f32(i) * step for i in range(256)], dtype=np.float32)
    jet = np.zeros((256, 3))
    for ch, k in enumerate((3.0, 2.0, 1.0)):
        base = np.clip(1.5 - np.abs(4.0 * (np.arange(256) / 255.0) - k), 0, 1).astype(np.float32)
        for i in range(256):
            xi = xs[i]
            lo, hi = 0, 255
            while hi - lo > 1:
                mid = lo + ((hi - lo) >> 1)
                if xi > xs[mid]:
                    lo = mid
                else:
                    hi = mid
            v = f32(base[lo] + f32(f32(xi - xs[lo]) * f32(base[hi] - base[lo])) / f32(xs[hi] - xs[lo]))
            jet[i, ch] = np.rint(f32(v * f32(255)))
    write_table(out, "colour/jet_opencv", torch.from_numpy(jet), torch.float64)
    return jet


def overlay_section(out, rng, jet):
    """pytorch-grad-cam's show_cam_on_image in float32: heatmap = JET[np.uint8(255·mask)] (RGB),
    / 255; cam = (1 − w)·heatmap + w·img; cam / max; np.uint8(255·cam). And the plain blend
    round-half-away(255·((1 − w)·heat + w·img)) with w = 0.3."""
    h, w = 6, 5
    mask = rng.uniform(0, 1, (h, w)).astype(np.float32)
    mask[0, 0], mask[0, 1] = 0.0, 1.0
    img = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
    heat = jet.astype(np.float32)[np.uint8(255 * mask)]
    heat = np.float32(heat) / 255
    cam = (1 - 0.5) * heat + 0.5 * img
    cam = cam / np.max(cam)
    result = np.uint8(255 * cam)
    mix = (1 - 0.3) * heat + 0.3 * img
    blend = np.floor(np.float64(np.float32(255) * mix) + 0.5)
    write_table(out, "overlay/mask", torch.from_numpy(mask), torch.float32)
    write_table(out, "overlay/image", torch.from_numpy(img.reshape(h * w, 3)), torch.float32)
    write_table(out, "overlay/output", torch.from_numpy(result.astype(np.int64).reshape(h * w, 3)),
                torch.int64)
    write_table(out, "overlay/blend", torch.from_numpy(blend.astype(np.int64).reshape(h * w, 3)),
                torch.int64)


def main():
    gen = torch.Generator().manual_seed(SEED)
    path = DATA_DIR / "saliency_post_torch.txt"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write("# cvk golden fixtures: saliency post-processing and metrics.\n")
        out.write("# Generated by tests/gen_saliency_post_fixtures.py; do not edit (rerun it).\n")
        out.write("# bilinear<k>/params: H W Ho Wo align_corners (F.interpolate bilinear)\n")
        out.write("# blur<k>/params: H W sigma border (0 zero, 1 replicate, 2 reflect; imsmooth)\n")
        out.write(f"meta torch {torch.__version__}\n")
        out.write(f"meta seed {SEED}\n")
        out.write(f"meta bilinear_cases {len(BILINEAR_CASES)}\n")
        out.write(f"meta blur_cases {len(BLUR_CASES)}\n")
        resample_section(out, gen)
        rng = np.random.default_rng(SEED)
        normalize_section(out, rng)
        spearman_section(out, rng)
        out.write(f"meta ssim_cases {len(SSIM_CASES)}\n")
        ssim_section(out, rng)
        causal_section(out, rng)
        jet = colour_section(out)
        overlay_section(out, rng, jet)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
