// cvk — computer-vision kernels, header-only C++20.
// Two ShuffleNet V1 units (Zhang et al., CVPR 2018, Fig. 2b and 2c) at inference, NHWC float,
// built from cvk::conv2d_plan and cvk::channel_shuffle, with batch norm folded into each conv's
// weights and bias. Prints, per layer, the path conv2d_plan chose, the median time, GFLOP/s and
// the largest difference from a plain reference loop; then the unit's total. Exits with 1 when a
// layer disagrees with its reference loop.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cvk/conv.hpp>
#include <cvk/core/rng.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace {

using cvk::index_t;
using image = cvk::tensor<float, 4>;  // N×H×W×C (NHWC) throughout

// ShuffleNet V1 1× with g = 3 on a 224² input (the paper's Table 1): stage 2 runs at 28×28 with
// 240 channels, stage 3 at 14×14 with 480. Every unit's bottleneck has a quarter of its output
// channels (60 in stage 2, 120 at the start of stage 3), and both of its 1×1 convs are grouped.
constexpr index_t groups = 3;
constexpr index_t side = 28;
constexpr index_t stage2_channels = 240;
constexpr index_t stage3_channels = 480;
constexpr int repetitions = 51;  // timings are medians of this many runs

/// A conv with batch norm folded in: weight O×(I/g)×KH×KW (OIHW), bias O.
struct conv_layer {
  image weight;
  cvk::tensor<float, 1> bias;
  cvk::conv2d_params params;
};

/// He-initialised weights (σ² = 2 / fan-in, what a trained ReLU net's folded weights resemble)
/// and small biases, seeded: every run prints the same differences.
conv_layer make_conv(cvk::rng& gen, index_t in, index_t out, index_t kernel, index_t conv_groups,
                     index_t stride, cvk::activation act) {
  conv_layer layer{image(out, in / conv_groups, kernel, kernel), cvk::tensor<float, 1>(out),
                   cvk::conv2d_params{.stride = {stride, stride},
                                      .padding = {kernel / 2, kernel / 2, kernel / 2, kernel / 2},
                                      .groups = conv_groups,
                                      .data_layout = cvk::layout::nhwc,
                                      .act = act}};
  const auto fan_in = static_cast<float>(in / conv_groups * kernel * kernel);
  for (float& w : layer.weight) w = gen.normal(0.0f, std::sqrt(2.0f / fan_in));
  for (float& b : layer.bias) b = gen.uniform(-0.1f, 0.1f);
  return layer;
}

// ---- The plain loops the layers are checked against: the contract's formulas, summed in
// double, independent of cvk's paths.

/// y = act(conv(x) + bias [+ residual]) for a square kernel with symmetric padding.
image reference_conv(const image& x, const conv_layer& layer, const image* residual) {
  const index_t height = x.extent(1), width = x.extent(2);
  const index_t out = layer.weight.extent(0), in_per_group = layer.weight.extent(1);
  const index_t kernel = layer.weight.extent(2), out_per_group = out / layer.params.groups;
  const index_t stride = layer.params.stride[0], pad = layer.params.padding[0];
  const index_t out_height = (height + 2 * pad - kernel) / stride + 1;
  const index_t out_width = (width + 2 * pad - kernel) / stride + 1;
  image y(x.extent(0), out_height, out_width, out);
  for (index_t n = 0; n < x.extent(0); ++n) {
    for (index_t oy = 0; oy < out_height; ++oy) {
      for (index_t ox = 0; ox < out_width; ++ox) {
        for (index_t o = 0; o < out; ++o) {
          const index_t first_in = o / out_per_group * in_per_group;
          double sum = layer.bias(o);
          if (residual != nullptr) sum += (*residual)(n, oy, ox, o);
          for (index_t ky = 0; ky < kernel; ++ky) {
            for (index_t kx = 0; kx < kernel; ++kx) {
              const index_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
              if (iy < 0 || iy >= height || ix < 0 || ix >= width) continue;
              for (index_t i = 0; i < in_per_group; ++i) {
                sum += static_cast<double>(layer.weight(o, i, ky, kx)) *
                       static_cast<double>(x(n, iy, ix, first_in + i));
              }
            }
          }
          if (layer.params.act == cvk::activation::relu) sum = std::max(sum, 0.0);
          y(n, oy, ox, o) = static_cast<float>(sum);
        }
      }
    }
  }
  return y;
}

/// ShuffleNet's shuffle written out: channel c of the result is channel (c mod g)·(C/g) + ⌊c/g⌋.
image reference_shuffle(const image& x) {
  image y(x.extents());
  const index_t channels = x.extent(3);
  for (index_t n = 0; n < x.extent(0); ++n) {
    for (index_t h = 0; h < x.extent(1); ++h) {
      for (index_t w = 0; w < x.extent(2); ++w) {
        for (index_t c = 0; c < channels; ++c) {
          y(n, h, w, c) = x(n, h, w, c % groups * (channels / groups) + c / groups);
        }
      }
    }
  }
  return y;
}

/// 3×3, stride 2, padding 1 average pooling counting the padding (torch's nn.AvgPool2d(3, 2, 1)).
image reference_avg_pool(const image& x) {
  const index_t height = x.extent(1), width = x.extent(2), channels = x.extent(3);
  image y(x.extent(0), (height - 1) / 2 + 1, (width - 1) / 2 + 1, channels);
  for (index_t n = 0; n < x.extent(0); ++n) {
    for (index_t oy = 0; oy < y.extent(1); ++oy) {
      for (index_t ox = 0; ox < y.extent(2); ++ox) {
        for (index_t c = 0; c < channels; ++c) {
          double sum = 0;
          for (index_t iy = 2 * oy - 1; iy <= 2 * oy + 1; ++iy) {
            for (index_t ix = 2 * ox - 1; ix <= 2 * ox + 1; ++ix) {
              if (iy >= 0 && iy < height && ix >= 0 && ix < width) sum += x(n, iy, ix, c);
            }
          }
          y(n, oy, ox, c) = static_cast<float>(sum / 9);
        }
      }
    }
  }
  return y;
}

struct difference {
  double max_abs = 0;
  double max_reference = 0;
};
/// max |a − b| over the channels [first_channel, first_channel + b's channels) of a, and max |b|.
difference compare(const image& a, const image& b, index_t first_channel = 0) {
  difference d;
  for (index_t n = 0; n < b.extent(0); ++n) {
    for (index_t h = 0; h < b.extent(1); ++h) {
      for (index_t w = 0; w < b.extent(2); ++w) {
        for (index_t c = 0; c < b.extent(3); ++c) {
          const double reference = b(n, h, w, c);
          d.max_abs = std::max(d.max_abs, std::abs(a(n, h, w, first_channel + c) - reference));
          d.max_reference = std::max(d.max_reference, std::abs(reference));
        }
      }
    }
  }
  return d;
}

// ---- Timing and the table.

/// Median wall time of `run` in seconds, after one untimed call (first-touch of the buffers).
double median_seconds(const std::function<void()>& run) {
  run();
  std::vector<double> seconds;
  for (int r = 0; r < repetitions; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

/// Multiply-adds × 2 of a conv layer producing `output`.
double conv_flops(const conv_layer& layer, const image& output) {
  const auto& w = layer.weight;
  return 2.0 * static_cast<double>(output.size()) *
         static_cast<double>(w.extent(1) * w.extent(2) * w.extent(3));
}

std::string shape_text(const image& x) {
  return std::to_string(x.extent(1)) + "×" + std::to_string(x.extent(2)) + "×" +
         std::to_string(x.extent(3));
}

/// `text` left-aligned in `width` columns: printf's %-30s counts bytes, and "×" or "→" take two
/// or three bytes of UTF-8 for one column (continuation bytes are 10xxxxxx).
std::string padded(const std::string& text, std::size_t width) {
  std::size_t columns = 0;
  for (const char ch : text) {
    if ((static_cast<unsigned char>(ch) & 0xC0U) != 0x80U) ++columns;
  }
  return text + std::string(width > columns ? width - columns : 0, ' ');
}

std::string rate(double per_second, const char* unit) {
  char text[32];
  std::snprintf(text, sizeof text, "%7.2f %s", per_second * 1e-9, unit);
  return text;
}
std::string gflops(double flops, double seconds) { return rate(flops / seconds, "GFLOP/s"); }
/// A copy has no FLOPs: bytes read and written per second instead.
std::string gbytes(double bytes, double seconds) { return rate(bytes / seconds, "GB/s   "); }
double image_bytes(const image& x) {
  return static_cast<double>(x.size()) * static_cast<double>(sizeof(float));
}

bool all_close = true;

void print_header(const char* title) {
  std::printf("\n%s\n  %s %s %s %11s  %-15s  %s\n", title, padded("layer", 30).c_str(),
              padded("output", 11).c_str(), padded("path (plan.path())", 18).c_str(), "median",
              "rate", "max |diff| vs loop");
}

void print_row(const std::string& layer, const std::string& path, const image& output,
               double seconds, const std::string& rate_text, const difference& d) {
  // Float sums of at most 80 products of values of order 1, in another order than the loop's:
  // a few units in the last place of the largest value, far below 1e-4 of it.
  const bool close = d.max_abs <= 1e-4 * std::max(1.0, d.max_reference);
  all_close = all_close && close;
  std::printf("  %s %s %s %8.3f ms  %s  %9.2e%s\n", padded(layer, 30).c_str(),
              padded(shape_text(output), 11).c_str(), padded(path, 18).c_str(), seconds * 1e3,
              rate_text.c_str(), d.max_abs, close ? "" : "  MISMATCH");
}

void print_total(double flops, double seconds, const image& output) {
  std::printf("  %s %s %s %8.3f ms  %s  (%.1f MFLOP in the convs)\n", padded("unit", 30).c_str(),
              padded(shape_text(output), 11).c_str(), padded("", 18).c_str(), seconds * 1e3,
              gflops(flops, seconds).c_str(), flops * 1e-6);
}

// ---- The units.

/// A conv ready to run: its folded weights (kept for the reference loop) and the plan that packed
/// them once.
struct planned_conv {
  conv_layer layer;
  cvk::conv2d_plan<float> plan;
  explicit planned_conv(conv_layer folded)
      : layer(std::move(folded)), plan(layer.weight, layer.bias, layer.params) {}
};

/// Times `run`, checks `output` (from channel `first_channel` on) against `reference`, the plain
/// loop on the same input, and prints the row of conv `c`.
void report_conv(const std::string& name, const planned_conv& c, const std::function<void()>& run,
                 const image& output, index_t first_channel, const image& reference) {
  const double seconds = median_seconds(run);
  print_row(name, cvk::to_string(c.plan.path()), reference, seconds,
            gflops(conv_flops(c.layer, reference), seconds),
            compare(output, reference, first_channel));
}

/// The branch both units share: GConv 1×1 C→bottleneck g=3 + ReLU → channel_shuffle g=3 →
/// DWConv 3×3 (stride 1 or 2) → GConv 1×1 bottleneck→out g=3 + ReLU, on preallocated images. The
/// last conv's epilogue and output differ between the units: they call it themselves.
struct shuffle_branch {
  planned_conv reduce, depthwise, expand;
  image reduced, shuffled, filtered;

  shuffle_branch(cvk::rng& gen, const image& x, index_t bottleneck, index_t out_channels,
                 index_t stride)
      : reduce(make_conv(gen, x.extent(3), bottleneck, 1, groups, 1, cvk::activation::relu)),
        depthwise(
            make_conv(gen, bottleneck, bottleneck, 3, bottleneck, stride, cvk::activation::none)),
        expand(make_conv(gen, bottleneck, out_channels, 1, groups, 1, cvk::activation::relu)),
        reduced(reduce.plan.output_shape(x.extents())),
        shuffled(reduced.extents()),
        filtered(depthwise.plan.output_shape(shuffled.extents())) {}

  void run_reduce(const image& x) { reduce.plan(x, reduced); }
  void run_shuffle() { cvk::channel_shuffle(reduced, groups, cvk::layout::nhwc, shuffled); }
  void run_depthwise() { depthwise.plan(shuffled, filtered); }
  void run_front(const image& x) {
    run_reduce(x);
    run_shuffle();
    run_depthwise();
  }

  /// The rows of the three layers before the last conv. Each layer is checked on the input it
  /// was given, so a difference points at one layer; the buffers must hold a run's results.
  void report_front(const image& x) {
    report_conv(
        "GConv 1×1 " + std::to_string(x.extent(3)) + "→" + std::to_string(reduced.extent(3)) +
            " g=3 +ReLU",
        reduce, [&] { run_reduce(x); }, reduced, 0, reference_conv(x, reduce.layer, nullptr));
    const double seconds = median_seconds([&] { run_shuffle(); });
    print_row("channel_shuffle g=3", "(copy)", shuffled, seconds,
              gbytes(2 * image_bytes(shuffled), seconds),
              compare(shuffled, reference_shuffle(reduced)));
    report_conv(
        "DWConv 3×3 s" + std::to_string(depthwise.layer.params.stride[0]), depthwise,
        [&] { run_depthwise(); }, filtered, 0, reference_conv(shuffled, depthwise.layer, nullptr));
  }

  /// FLOPs of the three convs when the last one produces `output`.
  [[nodiscard]] double flops(const image& output) const {
    return conv_flops(reduce.layer, reduced) + conv_flops(depthwise.layer, filtered) +
           conv_flops(expand.layer, output);
  }
};

/// Fig. 2b: x (28×28×240) → GConv 1×1 240→60 g=3 + ReLU → shuffle → DWConv 3×3 → GConv 1×1
/// 60→240 g=3, + x, ReLU. The skip add and the last ReLU are fused into the last conv's epilogue.
void stride_1_unit(cvk::rng& gen, const image& x) {
  shuffle_branch branch(gen, x, stage2_channels / 4, stage2_channels, 1);
  image y(branch.expand.plan.output_shape(branch.filtered.extents()));
  const auto run_expand = [&] { branch.expand.plan(branch.filtered, x, y); };  // relu(conv + x)

  print_header("ShuffleNet V1 unit, stride 1 (Fig. 2b), g = 3: 28×28×240 → 28×28×240");
  const double unit_seconds = median_seconds([&] {
    branch.run_front(x);
    run_expand();
  });
  branch.report_front(x);
  report_conv("GConv 1×1 60→240 g=3 +x +ReLU", branch.expand, run_expand, y, 0,
              reference_conv(branch.filtered, branch.expand.layer, &x));
  print_total(branch.flops(y), unit_seconds, y);
}

/// Fig. 2c: x (28×28×240) → GConv 1×1 240→120 g=3 + ReLU → shuffle → DWConv 3×3 stride 2 →
/// GConv 1×1 120→240 g=3 + ReLU into channels 240..479 of the 14×14×480 output; AvgPool 3×3
/// stride 2 of x into channels 0..239 (concat without a copy: both write through channel-slice
/// views). The ReLU after the concat is the last conv's fused ReLU: the pooled half is already
/// >= 0, x being the output of a ReLU.
void stride_2_unit(cvk::rng& gen, const image& x) {
  const index_t branch_channels = stage3_channels - stage2_channels;
  shuffle_branch branch(gen, x, stage3_channels / 4, branch_channels, 2);
  const cvk::pool2d_params pool_params{
      .kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .data_layout = cvk::layout::nhwc};
  const index_t out_side = branch.filtered.extent(1);
  image y(1, out_side, out_side, stage3_channels);
  // The concat's two halves: N×Ho×Wo×240 views with y's strides, 0 and 240 channels in.
  const auto half = [&](index_t first_channel) {
    return cvk::view(y.data() + first_channel, {1, out_side, out_side, branch_channels},
                     {out_side * out_side * stage3_channels, out_side * stage3_channels,
                      stage3_channels, index_t{1}});
  };
  // Views are shallow: a const view still writes into y.
  const auto pooled_half = half(0);
  const auto branch_half = half(stage2_channels);
  const auto run_expand = [&] { branch.expand.plan(branch.filtered, branch_half); };
  const auto run_pool = [&] { cvk::avg_pool2d(x, pool_params, pooled_half); };

  print_header("ShuffleNet V1 unit, stride 2 (Fig. 2c), g = 3: 28×28×240 → 14×14×480");
  const double unit_seconds = median_seconds([&] {
    branch.run_front(x);
    run_expand();
    run_pool();
  });
  branch.report_front(x);
  const image branch_reference = reference_conv(branch.filtered, branch.expand.layer, nullptr);
  report_conv("GConv 1×1 120→240 g=3 +ReLU", branch.expand, run_expand, y, stage2_channels,
              branch_reference);
  const double pool_seconds = median_seconds(run_pool);
  const image pool_reference = reference_avg_pool(x);
  print_row("AvgPool 3×3 s2 (shortcut)", "(avg_pool2d)", pool_reference, pool_seconds,
            gbytes(image_bytes(x) + image_bytes(pool_reference), pool_seconds),
            compare(y, pool_reference, 0));
  print_total(branch.flops(branch_reference), unit_seconds, y);
}

}  // namespace

int main() {
  cvk::rng gen(2018);
  // The unit's input is the previous unit's output, after its ReLU: >= 0.
  image x(1, side, side, stage2_channels);
  for (float& v : x) v = gen.uniform(0.0f, 1.0f);

  std::printf("batch 1, NHWC float, %d thread(s); times are medians of %d runs\n",
              cvk::max_threads(), repetitions);
  stride_1_unit(gen, x);
  stride_2_unit(gen, x);
  if (!all_close) {
    std::printf("\nMISMATCH: a layer differs from its reference loop beyond float rounding\n");
    return 1;
  }
  std::printf("\nevery layer matches its plain reference loop (max |diff| column)\n");
  return 0;
}
