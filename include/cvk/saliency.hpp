// cvk — computer-vision kernels, header-only C++20.
// Saliency: model callables (model.hpp); the CAM family from activations and gradients (cam.hpp);
// gradient methods — vanilla, gradient × input, SmoothGrad, integrated gradients (gradient.hpp);
// occlusion and RISE (perturbation.hpp); extremal perturbations with the smooth-mask generator
// and perturbation pyramids (extremal.hpp); FickleNet-style stochastic aggregation (fickle.hpp);
// post-processing — upsampling, normalisation, smoothing, colormaps, overlays (postprocess.hpp);
// metrics — Spearman, SSIM, pointing game, deletion/insertion AUC, cascading randomisation
// (metrics.hpp). docs/saliency.md lists every entry point.
// SPDX-License-Identifier: MIT
#pragma once

#include "saliency/cam.hpp"
#include "saliency/extremal.hpp"
#include "saliency/fickle.hpp"
#include "saliency/gradient.hpp"
#include "saliency/lrp.hpp"
#include "saliency/metrics.hpp"
#include "saliency/model.hpp"
#include "saliency/perturbation.hpp"
#include "saliency/postprocess.hpp"
