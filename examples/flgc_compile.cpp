// cvk — computer-vision kernels, header-only C++20.
// FLGC end to end (Wang et al., "Fully Learnable Group Convolution", CVPR 2019): a layer learns
// which input channels and which filters form each of its groups — a few SGD steps on a toy
// problem generated here (a "teacher" conv whose weight has unequal groups), with the
// straight-through estimator — then flgc_compile turns it into a ragged-group conv, and the
// folding helpers move its channel permutations into the convs before and after it. Prints the
// loss, the learned group sizes, the largest difference between the compiled (and folded) layer
// and the masked dense conv it replaces, and the time of both on a larger layer. Exits with 1
// when the compiled or folded network disagrees with the masked dense one.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cvk/conv.hpp>
#include <cvk/core/rng.hpp>
#include <functional>
#include <string>
#include <vector>

namespace {

using cvk::index_t;
using image = cvk::tensor<float, 4>;

image random_image(cvk::rng& gen, const std::array<index_t, 4>& extents, float stddev) {
  image t(extents);
  for (float& v : t) v = gen.normal(0.0f, stddev);
  return t;
}

cvk::tensor<float, 2> random_logits(cvk::rng& gen, index_t rows, index_t groups, float stddev) {
  cvk::tensor<float, 2> t(rows, groups);
  for (float& v : t) v = gen.normal(0.0f, stddev);
  return t;
}

float max_difference(const image& a, const image& b) {
  float m = 0;
  for (index_t k = 0; k < a.size(); ++k) m = std::max(m, std::abs(a.data()[k] - b.data()[k]));
  return m;
}

/// "[5, 3, 0, 8]": the sizes of the groups given their offsets.
std::string sizes(const std::vector<index_t>& offsets) {
  std::string s = "[";
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
    if (g > 0) s += ", ";
    s += std::to_string(offsets[g + 1] - offsets[g]);
  }
  return s + "]";
}

/// Median wall time in milliseconds of `runs` calls.
double median_ms(const std::function<void()>& call, int runs) {
  call();  // warm-up
  std::vector<double> ms;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    call();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::nth_element(ms.begin(), ms.begin() + runs / 2, ms.end());
  return ms[static_cast<std::size_t>(runs / 2)];
}

}  // namespace

int main() {
  cvk::rng gen(2019);
  bool ok = true;

  // ---- 1. Train: 24 → 24 channels, 3×3, G = 4, on the output of a teacher with groups of
  // unequal sizes (input channel c in group c·c mod 4, filter k in group k mod 3: group 3 has
  // channels but no filters).
  constexpr index_t in = 24, out = 24, groups = 4, side = 10, batch = 4;
  const cvk::conv2d_params params{.padding = {1, 1, 1, 1}};
  const image x = random_image(gen, {batch, in, side, side}, 1.0f);
  image teacher = random_image(gen, {out, in, 3, 3}, 0.2f);
  for (index_t k = 0; k < out; ++k) {
    for (index_t c = 0; c < in; ++c) {
      if ((c * c) % 4 != k % 3) {
        for (index_t t = 0; t < 9; ++t) teacher(k, c, t / 3, t % 3) = 0.0f;
      }
    }
  }
  const image target = cvk::conv2d(x, teacher, params);

  image weight = random_image(gen, {out, in, 3, 3}, 0.1f);
  cvk::tensor<float, 1> bias(out);
  auto in_logits = random_logits(gen, in, groups, 0.5f);
  auto out_logits = random_logits(gen, out, groups, 0.5f);
  const float weight_rate = 0.5f, logit_rate = 5.0f;
  std::printf("training an FLGC layer %td -> %td channels, 3x3, G = %td (masked STE, SGD)\n", in,
              out, groups);
  for (int step = 0; step <= 60; ++step) {
    const image y = cvk::flgc_conv2d(x, weight, bias, in_logits, out_logits, params);
    image dy(y.extents());
    double loss = 0;
    const auto count = static_cast<float>(y.size());
    for (index_t k = 0; k < y.size(); ++k) {
      const float e = y.data()[k] - target.data()[k];
      loss += static_cast<double>(e) * e / count;
      dy.data()[k] = 2.0f * e / count;
    }
    const auto g =
        cvk::flgc_conv2d_backward(dy, x, weight, in_logits, out_logits, params, {.input = false});
    if (step % 10 == 0) {
      const auto a = cvk::flgc_assignment(in_logits, out_logits);
      std::vector<index_t> in_count(groups, 0), out_count(groups, 0);
      for (const index_t v : a.input_group) ++in_count[static_cast<std::size_t>(v)];
      for (const index_t v : a.output_group) ++out_count[static_cast<std::size_t>(v)];
      std::string counts;
      for (index_t q = 0; q < groups; ++q) {
        counts += ' ';
        counts += std::to_string(in_count[static_cast<std::size_t>(q)]);
        counts += '/';
        counts += std::to_string(out_count[static_cast<std::size_t>(q)]);
      }
      std::printf("  step %2d  loss %.5f  channels/filters per group:%s\n", step, loss,
                  counts.c_str());
    }
    for (index_t k = 0; k < weight.size(); ++k)
      weight.data()[k] -= weight_rate * g.weight.data()[k];
    for (index_t k = 0; k < bias.size(); ++k) bias.data()[k] -= weight_rate * g.bias.data()[k];
    for (index_t k = 0; k < in_logits.size(); ++k) {
      in_logits.data()[k] -= logit_rate * g.in_logits.data()[k];
    }
    for (index_t k = 0; k < out_logits.size(); ++k) {
      out_logits.data()[k] -= logit_rate * g.out_logits.data()[k];
    }
  }

  // ---- 2. Compile, then fold into a chain: conv 3 → 24 (3×3) → FLGC → conv 24 → 10 (1×1).
  auto compiled = cvk::flgc_compile(weight, bias, in_logits, out_logits, params);
  std::printf("\ncompiled: input channels per group %s, filters per group %s\n",
              sizes(compiled.groups.in_offsets).c_str(),
              sizes(compiled.groups.out_offsets).c_str());
  const image dense_y = cvk::flgc_conv2d(x, weight, bias, in_logits, out_logits, params);
  const float compiled_diff = max_difference(compiled.plan()(x), dense_y);
  std::printf(
      "max |ragged - masked dense| = %.3g (with the permutations: %zu-channel gather, "
      "%zu-channel scatter)\n",
      static_cast<double>(compiled_diff), compiled.groups.in_permutation.size(),
      compiled.groups.out_permutation.size());
  ok = ok && compiled_diff < 1e-4f;

  const image source = random_image(gen, {batch, 3, side, side}, 1.0f);
  const image w_prev = random_image(gen, {in, 3, 3, 3}, 0.3f);
  const cvk::tensor<float, 1> b_prev(in);
  const image w_next = random_image(gen, {10, out, 1, 1}, 0.3f);
  const cvk::tensor<float, 1> b_next(10);
  const cvk::conv2d_params pointwise{};
  const image before = cvk::conv2d(cvk::flgc_conv2d(cvk::conv2d(source, w_prev, b_prev, params),
                                                    weight, bias, in_logits, out_logits, params),
                                   w_next, b_next, pointwise);
  const auto prev = cvk::flgc_fold_input_permutation(compiled, w_prev, b_prev, params);
  const auto next = cvk::flgc_fold_output_permutation(compiled, w_next, b_next, pointwise);
  const image after =
      cvk::conv2d(compiled.plan()(cvk::conv2d(source, prev.weight, prev.bias, params)), next.weight,
                  next.bias, pointwise);
  const float folded_diff = max_difference(after, before);
  std::printf(
      "folded into the neighbours: permutations left %zu + %zu, max |chain difference| "
      "= %.3g\n",
      compiled.groups.in_permutation.size(), compiled.groups.out_permutation.size(),
      static_cast<double>(folded_diff));
  ok = ok && folded_diff < 1e-4f && compiled.groups.in_permutation.empty() &&
       compiled.groups.out_permutation.empty();

  // ---- 3. Speed: a 256 → 256, 3×3 layer on 28×28 NHWC with 8 learned groups of unequal size
  // (logits biased so the groups get unequal sizes), masked dense vs compiled ragged, on one
  // thread (the steadier figure on a shared machine: a ragged conv runs one conv2d per run of
  // equal groups, and each threaded call pays a barrier, which a busy core can stretch to a
  // scheduler tick).
  constexpr index_t wide = 256, wide_groups = 8, wide_side = 28;
  const cvk::conv2d_params nhwc{
      .padding = {1, 1, 1, 1}, .data_layout = cvk::layout::nhwc, .threads = 1};
  auto wide_in = random_logits(gen, wide, wide_groups, 1.0f);
  auto wide_out = random_logits(gen, wide, wide_groups, 1.0f);
  for (index_t r = 0; r < wide; ++r) {
    for (index_t q = 0; q < wide_groups; ++q) {
      wide_in(r, q) += 0.1f * static_cast<float>(q);
      wide_out(r, q) += 0.1f * static_cast<float>(wide_groups - q);
    }
  }
  const image wide_weight = random_image(gen, {wide, wide, 3, 3}, 0.02f);
  const cvk::tensor<float, 1> wide_bias(wide);
  const image wide_x = random_image(gen, {1, wide_side, wide_side, wide}, 1.0f);
  const auto wide_compiled = cvk::flgc_compile(wide_weight, wide_bias, wide_in, wide_out, nhwc);
  // The masked dense conv as inference would run it: W ⊙ M packed once.
  const auto mask = cvk::flgc_mask(wide_in, wide_out);
  image masked(wide_weight.extents());
  for (index_t k = 0; k < wide; ++k) {
    for (index_t c = 0; c < wide; ++c) {
      for (index_t t = 0; t < 9; ++t)
        masked(k, c, t / 3, t % 3) = wide_weight(k, c, t / 3, t % 3) * mask(k, c);
    }
  }
  const cvk::conv2d_plan<float> dense_plan(masked, wide_bias, nhwc);
  const auto ragged_plan = wide_compiled.plan();
  image dense_out(1, wide_side, wide_side, wide), ragged_out(1, wide_side, wide_side, wide);
  const double dense_ms = median_ms([&] { dense_plan(wide_x, dense_out); }, 21);
  const double ragged_ms = median_ms([&] { ragged_plan(wide_x, ragged_out); }, 21);
  // The same layer once its permutations are folded into its neighbours: no gather, no scatter.
  cvk::ragged_groups folded_groups = wide_compiled.groups;
  folded_groups.in_permutation.clear();
  folded_groups.out_permutation.clear();
  const cvk::ragged_conv2d_plan<float> folded_plan(folded_groups, wide_compiled.weight,
                                                   wide_compiled.kernel, wide_compiled.bias, nhwc);
  image folded_out(1, wide_side, wide_side, wide);
  const double folded_ms = median_ms([&] { folded_plan(wide_x, folded_out); }, 21);
  double block_macs = 0;
  for (index_t q = 0; q < wide_groups; ++q) {
    const auto at = static_cast<std::size_t>(q);
    block_macs += static_cast<double>(wide_compiled.groups.in_offsets[at + 1] -
                                      wide_compiled.groups.in_offsets[at]) *
                  static_cast<double>(wide_compiled.groups.out_offsets[at + 1] -
                                      wide_compiled.groups.out_offsets[at]);
  }
  const float wide_diff = max_difference(ragged_out, dense_out);
  std::printf(
      "\n%td -> %td channels, 3x3, %tdx%td NHWC, G = %td, 1 thread: input channels per "
      "group %s, "
      "filters per group %s\n",
      wide, wide, wide_side, wide_side, wide_groups, sizes(wide_compiled.groups.in_offsets).c_str(),
      sizes(wide_compiled.groups.out_offsets).c_str());
  std::printf("  masked dense conv2d_plan    %6.3f ms\n", dense_ms);
  std::printf(
      "  compiled ragged plan        %6.3f ms   (%.1fx faster; %.1f%% of the dense "
      "multiply-adds; gather %zu + scatter %zu channels; max |diff| %.3g)\n",
      ragged_ms, dense_ms / ragged_ms, 100.0 * block_macs / static_cast<double>(wide * wide),
      wide_compiled.groups.in_permutation.size(), wide_compiled.groups.out_permutation.size(),
      static_cast<double>(wide_diff));
  std::printf("  ragged, permutations folded %6.3f ms   (%.1fx faster)\n", folded_ms,
              dense_ms / folded_ms);
  ok = ok && wide_diff < 1e-3f;
  if (!ok) std::printf("MISMATCH: the compiled layer disagrees with the masked dense conv\n");
  return ok ? 0 : 1;
}
