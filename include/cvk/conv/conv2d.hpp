// cvk — computer-vision kernels, header-only C++20.
// conv2d: 2-D (grouped, depthwise) convolution forward with torch.nn.functional.conv2d semantics,
// ONNX Conv auto_pad, NCHW or NHWC activations, OIHW or HWIO weights, and a fused epilogue
// (bias, residual add, ReLU / ReLU6 / clamp); conv2d_plan packs the weights once for many calls.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/conv2d_run.hpp"
#include "detail/dispatch.hpp"
#include "detail/geometry.hpp"

CVK_BEGIN_NAMESPACE

// The contract of every conv2d entry point.
//
//   y[n, o, oy, ox] = act( bias[o] + residual[n, o, oy, ox]
//                          + Σ_{i < I/g, ky < KH, kx < KW} w[o, i, ky, kx]
//                              · x[n, (o / (O/g))·(I/g) + i, oy·sh − pt + ky·dh, ox·sw − pl +
//                              kx·dw] )
//   with x = 0 outside the image (zero padding), g = params.groups.
//
// Shapes (N batch, I input channels, O output channels, g groups):
//   input     N×I×H×W (layout::nchw) or N×H×W×I (layout::nhwc), any strides
//   weight    O×(I/g)×KH×KW (weight_layout::oihw) or KH×KW×(I/g)×O (weight_layout::hwio)
//   bias      O, or cvk::no_bias
//   residual  the output's shape (same layout), optional; may be the output itself (in place)
//   output    N×O×Ho×Wo or N×Ho×Wo×O, with, per axis (pt + pb = padding of H, likewise W),
//               Ho = floor((H + pt + pb − dh·(KH − 1) − 1) / sh) + 1
//             auto_pad::same_upper / same_lower: Ho = ceil(H / sh) and the total padding
//               max(0, (Ho − 1)·sh + dh·(KH − 1) + 1 − H) split evenly, the odd row at the bottom
//               (upper) or the top (lower) — ONNX Conv; auto_pad::valid: no padding.
//   Every tensor holds the same type, float or double (checked at compile time).
//   The output must not overlap the input or the weight.
//
// Epilogue order: bias, then residual, then the activation — y = act(conv + bias + residual),
// as in ResNet blocks (ReLU after the skip add), oneDNN's sum-then-eltwise post-ops and
// XNNPACK/TFLite fused add + clamp. NaN propagates through every activation.
//
// Forms (Bias is a rank-1 tensor or cvk::no_bias):
//   conv2d(input, weight[, params])                          → cvk::tensor<T, 4>
//   conv2d(input, weight, bias, params)                      → cvk::tensor<T, 4>
//   conv2d(input, weight, bias, residual, params)            → cvk::tensor<T, 4>
//   conv2d(input, weight, bias, params, out)                 → writes out (no allocation of it)
//   conv2d(input, weight, bias, residual, params, out)       → writes out
//   conv2d_output_shape(input_shape, weight_shape, params)   → output extents in params' layout
//   conv2d_plan<T> plan(weight[, bias], params); plan(input) → tensor; plan(input, out);
//   plan(input, residual, out); plan.with_residual(input, residual) → tensor
//
// Errors (every message names the function, the argument and the shapes):
//   cvk::invalid_argument  stride or dilation < 1, padding < 0, groups < 1, non-zero padding with
//                          auto_pad, clamp_min > clamp_max, threads < 0
//   cvk::shape_error       wrong rank; groups not dividing I or O; weight's I/g not matching the
//                          input; kernel larger than the padded input (empty output); bias not of
//                          length O; residual or output of the wrong shape
//   cvk::out_of_range      size products that overflow; buffers too large to allocate
//
// Complexity: N·Ho·Wo·O·(I/g)·KH·KW multiply-adds; memory: the plan's packed weights, one copy
// of the input in the path's layout for the call (none when the input is NHWC-contiguous and
// the path reads NHWC; groups interleaved for the small-group path) and one output row per
// thread chunk. The path (depthwise, small_group, large_group, pointwise, generic; conv2d_path)
// is chosen from the weight shape, the groups and the build's vector width: docs/conv.md.

/// Tag for the forms without a bias: `conv2d(x, w, cvk::no_bias, params, out)`.
struct no_bias_t {
  explicit constexpr no_bias_t() = default;
};
inline constexpr no_bias_t no_bias{};

/// A bias argument: a rank-1 tensor of O values, or cvk::no_bias.
template <class B>
concept conv_bias = std::same_as<std::remove_cvref_t<B>, no_bias_t> || tensor_of_rank<B, 1>;

namespace detail {

/// The public function whose name error messages carry.
struct caller {
  const char* function;
};

template <class X>
struct conv_value {
  using type = tensor_value_t<const X&>;
};
template <>
struct conv_value<no_bias_t> {
  using type = void;
};

/// Every tensor of a conv2d call holds T (float or double).
template <class T, class... Tensors>
constexpr void assert_conv_types() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: conv2d runs on float or double tensors");
  static_assert(((std::is_void_v<typename conv_value<std::remove_cvref_t<Tensors>>::type> ||
                  std::is_same_v<typename conv_value<std::remove_cvref_t<Tensors>>::type, T>)&&...),
                "cvk: conv2d needs the same element type in input, weight, bias, residual and "
                "output (all float or all double); convert one of them");
}

/// "input 1×3×8×8 (N×C×H×W), weight 4×3×3×3 (O×I/groups×KH×KW)".
inline std::string conv_shapes(const std::string& input, const std::string& weight,
                               const conv2d_params& p) {
  return "input " + input + " (" + layout_pattern(p.data_layout) + "), weight " + weight + " (" +
         weight_pattern(p.weights) + ")";
}

/// The (n, c, h, w)-ordered views of one plan call — input, residual (null data: none) and
/// output — after the checks every plan makes: the element types, the output mutable and of the
/// geometry's output extents, the residual of those extents.
template <class T>
struct plan_call_views {
  conv2d_geometry g;
  strided_view<const T, 4> x, r;
  strided_view<T, 4> y;
};

/// `geometry(extents, text)` resolves the plan's geometry for an input of those extents.
template <class T, class Input, class Residual, class Out, class Geometry>
plan_call_views<T> plan_call(const Input& input, const Residual* residual, Out&& out,
                             const conv2d_params& params, const char* fn, Geometry&& geometry) {
  if constexpr (std::is_same_v<Residual, std::nullptr_t>) {
    assert_conv_types<T, Input, Out>();
  } else {
    assert_conv_types<T, Input, Residual, Out>();
  }
  plan_call_views<T> v;
  const auto x = checked_view<4>(input, fn, "input");
  v.g = geometry(x.extents(), x.shape_string());
  const auto extents =
      from_nchw({v.g.batch, v.g.out_channels, v.g.out_height, v.g.out_width}, params.data_layout);
  const auto pattern =
      std::string(layout_pattern(params.data_layout)) + " = " + shape_string(extents, 4);
  auto y = checked_view<4>(std::forward<Out>(out), fn, "out");
  static_assert(!std::is_const_v<typename decltype(y)::element_type>,
                "cvk: the output of a convolution must be a mutable tensor");
  expect_shape(y, extents, fn, "out", pattern.c_str());
  const auto axes = nchw_axes(params.data_layout);
  if constexpr (!std::is_same_v<Residual, std::nullptr_t>) {
    const auto rv = checked_view<4>(*residual, fn, "residual");
    expect_shape(rv, extents, fn, "residual", pattern.c_str());
    v.r = permute_axes(strided_view<const T, 4>(rv), axes);
  }
  v.x = permute_axes(strided_view<const T, 4>(x), axes);
  v.y = permute_axes(strided_view<T, 4>(y), axes);
  return v;
}

/// A new output tensor for an input of `input`'s extents (checked before the allocation).
template <class T, class Input, class Geometry>
tensor<T, 4> plan_new_output(const Input& x, const conv2d_params& params, const char* fn,
                             Geometry&& geometry) {
  const conv2d_geometry g = geometry(x.extents(), x.shape_string());
  const auto extents =
      from_nchw({g.batch, g.out_channels, g.out_height, g.out_width}, params.data_layout);
  const index_t count = g.batch * g.out_channels * g.out_height * g.out_width;  // checked
  return checked_allocation<T>(
      count, fn, "the output", [&] { return shape_string(extents, 4); },
      [&] { return tensor<T, 4>(extents); });
}

}  // namespace detail

/// Output extents (in params.data_layout) of a conv2d of an input of `input_shape` (in
/// params.data_layout) with a weight of `weight_shape` (in params.weights). Same errors as conv2d.
[[nodiscard]] inline std::array<index_t, 4> conv2d_output_shape(
    const std::array<index_t, 4>& input_shape, const std::array<index_t, 4>& weight_shape,
    const conv2d_params& params = {}) {
  const auto g = detail::resolve_conv2d(
      detail::nchw_extents(input_shape, params.data_layout),
      detail::oihw_extents(weight_shape, params.weights), params, "conv2d_output_shape",
      detail::conv_shapes(detail::shape_string(input_shape, 4),
                          detail::shape_string(weight_shape, 4), params));
  return detail::from_nchw({g.batch, g.out_channels, g.out_height, g.out_width},
                           params.data_layout);
}

/// Weights (and bias) packed once for the path their shape selects; runs conv2d on any number of
/// inputs. Holds the packed weight (O·(I/g)·KH·KW values of T, zero-padded to whole vectors on
/// the vector paths: memory_bytes() says how much), O bias values and the params; nothing else is
/// kept between calls. Immutable after construction: one plan may run on several threads at once.
template <class T>
class conv2d_plan {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: conv2d_plan<T> needs T = float or double");

 public:
  /// Packs `weight` (shape per params.weights); no bias.
  template <tensor_of_rank<4> Weight>
  explicit conv2d_plan(const Weight& weight, const conv2d_params& params = {})
      : conv2d_plan(weight, no_bias, params) {}

  /// Packs `weight` and `bias` (O values, or cvk::no_bias).
  template <tensor_of_rank<4> Weight, conv_bias Bias>
  conv2d_plan(const Weight& weight, const Bias& bias, const conv2d_params& params)
      : conv2d_plan(detail::caller{"conv2d_plan"}, weight, bias, params) {}

  /// The kernel this plan runs.
  [[nodiscard]] conv2d_path path() const noexcept { return path_; }
  [[nodiscard]] const conv2d_params& params() const noexcept { return params_; }
  /// The weight's extents as O×(I/g)×KH×KW, whatever params.weights.
  [[nodiscard]] const std::array<index_t, 4>& weight_extents() const noexcept { return oihw_; }
  /// Bytes of packed weights and bias the plan holds.
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return (packed_.size() + bias_.size()) * sizeof(T);
  }

  /// Output extents for an input of `input_shape` (both in params().data_layout).
  [[nodiscard]] std::array<index_t, 4> output_shape(
      const std::array<index_t, 4>& input_shape) const {
    const auto g = geometry(input_shape, detail::shape_string(input_shape, 4));
    return detail::from_nchw({g.batch, g.out_channels, g.out_height, g.out_width},
                             params_.data_layout);
  }

  /// y = conv2d(input) with this plan's weights, bias, params.
  template <tensor_of_rank<4> Input>
  [[nodiscard]] tensor<T, 4> operator()(const Input& input) const {
    return run_new(input, static_cast<const std::nullptr_t*>(nullptr));
  }
  /// y = act(conv2d(input) + bias + residual). (A named function: `plan(input, x)` with two
  /// tensors always writes into x, whatever x's constness — a const view is still writable.)
  template <tensor_of_rank<4> Input, tensor_of_rank<4> Residual>
  [[nodiscard]] tensor<T, 4> with_residual(const Input& input, const Residual& residual) const {
    return run_new(input, &residual);
  }
  /// Writes conv2d(input) into `out` (no allocation of the output).
  template <tensor_of_rank<4> Input, tensor_of_rank<4> Out>
  void operator()(const Input& input, Out&& out) const {
    run(input, static_cast<const std::nullptr_t*>(nullptr), std::forward<Out>(out));
  }
  /// Writes act(conv2d(input) + bias + residual) into `out`.
  template <tensor_of_rank<4> Input, tensor_of_rank<4> Residual, tensor_of_rank<4> Out>
  void operator()(const Input& input, const Residual& residual, Out&& out) const {
    run(input, &residual, std::forward<Out>(out));
  }

  /// Internal (the one-shot conv2d): errors name `who.function`.
  template <tensor_of_rank<4> Weight, conv_bias Bias>
  conv2d_plan(detail::caller who, const Weight& weight, const Bias& bias,
              const conv2d_params& params)
      : params_(params), function_(who.function) {
    detail::assert_conv_types<T, Weight, Bias>();
    detail::check_conv2d_params(params_, function_);
    const auto w = detail::permute_axes(detail::checked_view<4>(weight, function_, "weight"),
                                        detail::oihw_axes(params_.weights));
    oihw_ = w.extents();
    if (oihw_[2] < 1 || oihw_[3] < 1) {
      CVK_THROW(shape_error, std::string(function_) +
                                 ": weight must have a kernel of at least 1×1, got " +
                                 weight_text());
    }
    if (oihw_[0] % params_.groups != 0) {
      CVK_THROW(shape_error, std::string(function_) + ": params.groups (" +
                                 std::to_string(params_.groups) +
                                 ") must divide the output channels (" + std::to_string(oihw_[0]) +
                                 "); weight " + weight_text());
    }
    const auto desc = [&] { return weight_text(); };
    const index_t count = detail::checked_mul(
        detail::checked_mul(detail::checked_mul(oihw_[0], oihw_[1], function_, "weight", desc),
                            oihw_[2], function_, "weight", desc),
        oihw_[3], function_, "weight", desc);
    // Packing reads only the channel and kernel fields of a geometry.
    detail::conv2d_geometry g;
    g.out_channels = oihw_[0];
    g.groups = params_.groups;
    g.in_per_group = oihw_[1];
    g.in_channels = oihw_[1] * params_.groups;
    g.out_per_group = oihw_[0] / params_.groups;
    g.kernel_h = oihw_[2];
    g.kernel_w = oihw_[3];
    path_ = detail::choose_conv2d_path<T>(g.groups, g.in_per_group, g.out_per_group, g.kernel_h,
                                          g.kernel_w);
    // The vector paths pad groups or outputs to whole vectors: at most lanes × the weight.
    detail::checked_mul(count, detail::simd<T>::lanes, function_, "the packed weight", desc);
    packed_ = detail::checked_vector<T>(detail::packed_weight_size<T>(path_, g), function_,
                                        "the packed weight", desc);
    detail::pack_conv2d_weights(
        path_, g, [&](index_t o, index_t i, index_t ky, index_t kx) { return w(o, i, ky, kx); },
        packed_.data());
    finite_weights_ =
        std::all_of(packed_.begin(), packed_.end(), [](T v) { return std::isfinite(v); });
    // A zero bias when there is none: adding +0 changes no value (x + 0 = x, -0 + 0 = +0 aside:
    // a conv output of -0 becomes +0, as in PyTorch, whose conv sums start from zero).
    bias_.assign(static_cast<std::size_t>(oihw_[0]), T(0));
    if constexpr (!std::is_same_v<Bias, no_bias_t>) {
      const auto b = detail::checked_view<1>(bias, function_, "bias");
      if (b.extent(0) != oihw_[0]) {
        CVK_THROW(shape_error, std::string(function_) + ": bias must have " +
                                   std::to_string(oihw_[0]) +
                                   " values (the output channels of weight " + weight_text() +
                                   "), got " + b.shape_string());
      }
      for (index_t o = 0; o < oihw_[0]; ++o) bias_[static_cast<std::size_t>(o)] = b(o);
    }
  }

 private:
  [[nodiscard]] std::string weight_text() const {
    return detail::shape_string(detail::from_oihw(oihw_, params_.weights), 4) + " (" +
           detail::weight_pattern(params_.weights) + ")";
  }

  [[nodiscard]] detail::conv2d_geometry geometry(const std::array<index_t, 4>& input_extents,
                                                 const std::string& input_text) const {
    return detail::resolve_conv2d(
        detail::nchw_extents(input_extents, params_.data_layout), oihw_, params_, function_,
        detail::conv_shapes(input_text,
                            detail::shape_string(detail::from_oihw(oihw_, params_.weights), 4),
                            params_));
  }

  [[nodiscard]] auto geometry_of() const {
    return [this](const std::array<index_t, 4>& e, const std::string& text) {
      return geometry(e, text);
    };
  }

  template <class Input, class Residual>
  tensor<T, 4> run_new(const Input& input, const Residual* residual) const {
    const auto x = detail::checked_view<4>(input, function_, "input");
    tensor<T, 4> result = detail::plan_new_output<T>(x, params_, function_, geometry_of());
    run(x, residual, result);
    return result;
  }

  template <class Input, class Residual, class Out>
  void run(const Input& input, const Residual* residual, Out&& out) const {
    const auto v = detail::plan_call<T>(input, residual, std::forward<Out>(out), params_, function_,
                                        geometry_of());
    detail::conv2d_call<T> call;
    call.path = path_;
    call.packed = packed_.data();
    call.bias = bias_.data();
    call.finite_weights = finite_weights_;
    call.function = function_;
    detail::conv2d_execute<T>(v.g, call, v.x, v.r, v.y, params_);
  }

  conv2d_params params_;
  const char* function_ = "conv2d_plan";
  std::array<index_t, 4> oihw_{};
  conv2d_path path_ = conv2d_path::generic_nhwc;
  std::vector<T> packed_;
  std::vector<T> bias_;
  bool finite_weights_ = false;
};

namespace detail {
template <class Input>
using conv_scalar_t = std::remove_const_t<tensor_value_t<const Input&>>;
}  // namespace detail

/// y = conv2d(input, weight) (params: stride, padding, dilation, groups, layouts, epilogue).
template <tensor_of_rank<4> Input, tensor_of_rank<4> Weight>
[[nodiscard]] auto conv2d(const Input& input, const Weight& weight,
                          const conv2d_params& params = {}) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_conv_types<T, Weight>();
  return conv2d_plan<T>(detail::caller{"conv2d"}, weight, no_bias, params)(input);
}

/// y = conv2d(input, weight) + bias (or cvk::no_bias), then params.act.
template <tensor_of_rank<4> Input, tensor_of_rank<4> Weight, conv_bias Bias>
[[nodiscard]] auto conv2d(const Input& input, const Weight& weight, const Bias& bias,
                          const conv2d_params& params) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_conv_types<T, Weight, Bias>();
  return conv2d_plan<T>(detail::caller{"conv2d"}, weight, bias, params)(input);
}

/// y = act(conv2d(input, weight) + bias + residual).
template <tensor_of_rank<4> Input, tensor_of_rank<4> Weight, conv_bias Bias,
          tensor_of_rank<4> Residual>
[[nodiscard]] auto conv2d(const Input& input, const Weight& weight, const Bias& bias,
                          const Residual& residual, const conv2d_params& params) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_conv_types<T, Weight, Bias, Residual>();
  return conv2d_plan<T>(detail::caller{"conv2d"}, weight, bias, params)
      .with_residual(input, residual);
}

/// Writes act(conv2d(input, weight) + bias) into `out`.
template <tensor_of_rank<4> Input, tensor_of_rank<4> Weight, conv_bias Bias, tensor_of_rank<4> Out>
void conv2d(const Input& input, const Weight& weight, const Bias& bias, const conv2d_params& params,
            Out&& out) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_conv_types<T, Weight, Bias, Out>();
  conv2d_plan<T>(detail::caller{"conv2d"}, weight, bias, params)(input, std::forward<Out>(out));
}

/// Writes act(conv2d(input, weight) + bias + residual) into `out` (`out` may be `residual`).
template <tensor_of_rank<4> Input, tensor_of_rank<4> Weight, conv_bias Bias,
          tensor_of_rank<4> Residual, tensor_of_rank<4> Out>
void conv2d(const Input& input, const Weight& weight, const Bias& bias, const Residual& residual,
            const conv2d_params& params, Out&& out) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_conv_types<T, Weight, Bias, Residual, Out>();
  conv2d_plan<T>(detail::caller{"conv2d"}, weight, bias, params)(input, residual,
                                                                 std::forward<Out>(out));
}

CVK_END_NAMESPACE
