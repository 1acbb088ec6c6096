// cvk — computer-vision kernels, header-only C++20.
// Model callables for the saliency methods that run a model (Score-CAM, occlusion, RISE,
// SmoothGrad, integrated gradients, extremal perturbations, deletion/insertion AUC, ...): the
// concepts a user's forward and gradient functions satisfy, and the one batching mechanism that
// feeds them. No framework: the callable receives a contiguous buffer it can hand to ONNX Runtime,
// libtorch, TensorRT or its own code.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/layout.hpp"
#include "../core/parallel.hpp"
#include "../core/strided_view.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"

CVK_BEGIN_NAMESPACE

// The contract of every model callable.
//
// A batch is B inputs of the image shape C×H×W, handed to the callable as a contiguous
// strided_view<const T, 4> in model_options::data_layout: B×C×H×W (layout::nchw) or B×H×W×C
// (layout::nhwc), row-major, so `batch.data()` is a dense buffer of B·C·H·W values. 1 <= B <=
// model_options::batch_size; the last batch of a method may be shorter.
//
// Forward function (forward_function<F, T>), either form:
//   void f(strided_view<const T, 4> batch, strided_view<T, 1> scores)   writes B scores
//   S    f(strided_view<const T, 4> batch)                              returns any rank-1
//                                                                       tensor-like of B values
// Gradient function (gradient_function<F, T>), either form:
//   void g(strided_view<const T, 4> batch, strided_view<T, 1> scores, strided_view<T, 4> grads)
//        writes B scores and d score / d input in the batch's shape and layout (contiguous)
//   R    g(strided_view<const T, 4> batch)      returns an object with members `scores` (rank 1,
//        B values) and `gradients` (rank 4, the batch's shape in its layout, any strides)
//
// The score is one number per input: the quantity being explained (a logit, a probability, a
// reward). Select the target class inside the callable. Callables are called from the calling
// thread, one batch at a time, in input order, never concurrently; an exception thrown by one
// propagates out of the method unchanged. A returned tensor of the wrong shape raises
// cvk::shape_error naming the method and both shapes. NaN scores are not checked: they flow
// into the result as the method's arithmetic makes them (each method documents it).

/// How a method calls a model.
struct model_options {
  /// Inputs per call, >= 1. Memory: the method holds at most batch_size·C·H·W inputs (and as
  /// many gradients) at once.
  index_t batch_size = 16;
  /// Axis order of the images handed to the callable and of the method's image arguments.
  layout data_layout = layout::nchw;
};

namespace detail {

template <class T>
using batch_view_t = strided_view<const T, 4>;

template <class R, class T>
concept returned_scores = tensor_of_rank<R, 1>;

template <class R, class T>
concept returned_gradients = requires(const R& r) {
  requires tensor_of_rank<decltype((r.scores)), 1>;
  requires tensor_of_rank<decltype((r.gradients)), 4>;
};

}  // namespace detail

/// A forward function of a batch of T images: see the contract above.
template <class F, class T>
concept forward_function = std::invocable<F&, detail::batch_view_t<T>, strided_view<T, 1>> ||
    (std::invocable<F&, detail::batch_view_t<T>>&&
         detail::returned_scores<std::invoke_result_t<F&, detail::batch_view_t<T>>, T>);

/// A gradient function of a batch of T images: see the contract above.
template <class F, class T>
concept gradient_function =
    std::invocable<F&, detail::batch_view_t<T>, strided_view<T, 1>, strided_view<T, 4>> ||
    (std::invocable<F&, detail::batch_view_t<T>>&&
         detail::returned_gradients<std::invoke_result_t<F&, detail::batch_view_t<T>>, T>);

namespace detail {

/// Throws cvk::invalid_argument unless the options are usable.
inline void check_model_options(const model_options& o, const char* fn) {
  if (o.batch_size < 1) {
    CVK_THROW(invalid_argument, std::string(fn) + ": model.batch_size must be >= 1, got " +
                                    std::to_string(o.batch_size));
  }
  if (o.data_layout != layout::nchw && o.data_layout != layout::nhwc) {
    CVK_THROW(invalid_argument, std::string(fn) + ": model.data_layout is not a cvk::layout");
  }
}

/// Copies a returned rank-1 tensor of scores into `scores`, checking its length.
template <class T, class S>
void take_scores(const S& returned, strided_view<T, 1> scores, const char* fn, const char* what) {
  const auto v = checked_view<1>(returned, fn, what);
  if (v.extent(0) != scores.extent(0)) {
    CVK_THROW(shape_error, std::string(fn) + ": the " + what + " returned " +
                               std::to_string(v.extent(0)) + " scores for a batch of " +
                               std::to_string(scores.extent(0)));
  }
  for (index_t i = 0; i < v.extent(0); ++i) scores(i) = static_cast<T>(v(i));
}

/// Calls forward function `f` on `batch` (contiguous, in the callable's layout); the B scores
/// land in `scores`.
template <class T, class F>
void call_forward(F& f, batch_view_t<T> batch, strided_view<T, 1> scores, const char* fn) {
  if constexpr (std::invocable<F&, batch_view_t<T>, strided_view<T, 1>>) {
    f(batch, scores);
  } else {
    take_scores<T>(f(batch), scores, fn, "forward callable");
  }
}

/// Calls gradient function `g` on `batch`; scores land in `scores`, gradients in `grads` (the
/// batch's shape and layout, contiguous).
template <class T, class G>
void call_gradient(G& g, batch_view_t<T> batch, strided_view<T, 1> scores, strided_view<T, 4> grads,
                   const char* fn) {
  if constexpr (std::invocable<G&, batch_view_t<T>, strided_view<T, 1>, strided_view<T, 4>>) {
    g(batch, scores, grads);
  } else {
    const auto r = g(batch);
    take_scores<T>(r.scores, scores, fn, "gradient callable");
    const auto v = checked_view<4>(r.gradients, fn, "gradient callable's gradients");
    for (std::size_t a = 0; a < 4; ++a) {
      if (v.extent(a) != grads.extent(a)) {
        CVK_THROW(shape_error, std::string(fn) + ": the gradient callable returned gradients of " +
                                   v.shape_string() + " for a batch of " + grads.shape_string());
      }
    }
    for (index_t n = 0; n < v.extent(0); ++n) {
      for (index_t i = 0; i < v.extent(1); ++i) {
        for (index_t j = 0; j < v.extent(2); ++j) {
          for (index_t k = 0; k < v.extent(3); ++k) {
            grads(n, i, j, k) = static_cast<T>(v(n, i, j, k));
          }
        }
      }
    }
  }
}

/// The batches a method feeds to a model: up to batch_size images of C×H×W, held contiguous in
/// the callable's layout, with their scores and (for gradient methods) their gradients. Memory
/// is allocated once per method call and released with it.
template <class T>
class model_batches {
 public:
  /// `image_chw` = {C, H, W}; `gradients`: hold a gradient buffer too. `inputs`: how many
  /// inputs the method will evaluate in all, when known (>= 1): batches then hold
  /// min(batch_size, inputs) slots, so a method with few inputs never allocates a full batch.
  /// Sizes are checked (overflow, allocation) and named after `fn`.
  model_batches(const model_options& o, std::array<index_t, 3> image_chw, bool gradients,
                const char* fn, index_t inputs = 0)
      : options_(o), chw_(image_chw), fn_(fn) {
    check_model_options(o, fn);
    if (inputs >= 1 && options_.batch_size > inputs) options_.batch_size = inputs;
    const auto describe = [&] {
      return std::to_string(options_.batch_size) + "×" + std::to_string(chw_[0]) + "×" +
             std::to_string(chw_[1]) + "×" + std::to_string(chw_[2]);
    };
    image_size_ = checked_mul(checked_mul(chw_[0], chw_[1], fn, "the model's input", describe),
                              chw_[2], fn, "the model's input", describe);
    const index_t total = checked_mul(options_.batch_size, std::max<index_t>(image_size_, 1), fn,
                                      "a batch of model inputs", describe);
    images_ = checked_vector<T>(total, fn, "a batch of model inputs", describe);
    if (gradients) grads_ = checked_vector<T>(total, fn, "a batch of model gradients", describe);
    scores_.assign(static_cast<std::size_t>(options_.batch_size), T(0));
  }

  [[nodiscard]] index_t batch_size() const noexcept { return options_.batch_size; }
  [[nodiscard]] index_t image_size() const noexcept { return image_size_; }

  /// Slot `b` of the batch as a mutable (c, h, w)-ordered view, whatever the layout.
  [[nodiscard]] strided_view<T, 3> image(index_t b) noexcept {
    return chw_view(images_.data() + b * image_size_);
  }
  /// The gradient of slot `b` after run_gradient, (c, h, w)-ordered.
  [[nodiscard]] strided_view<const T, 3> gradient(index_t b) const noexcept {
    return chw_view(const_cast<T*>(grads_.data()) + b * image_size_);
  }
  /// The score of slot `b` after a run.
  [[nodiscard]] T score(index_t b) const noexcept { return scores_[static_cast<std::size_t>(b)]; }

  /// Calls forward function `f` on the first `count` slots.
  template <class F>
  void run_forward(F& f, index_t count) {
    call_forward<T>(f, batch(count), scores(count), fn_);
  }
  /// Calls gradient function `g` on the first `count` slots.
  template <class G>
  void run_gradient(G& g, index_t count) {
    strided_view<T, 4> gv(grads_.data(), layout_extents(count));
    call_gradient<T>(g, batch(count), scores(count), gv, fn_);
  }

  /// Evaluates `count` model inputs in batches: fill(i, image) writes input i into a (c, h, w)
  /// view (called for the slots of one batch through parallel_for: it must only write its
  /// image), then the model runs on the batch, then consume(i, slot) reads the result of input i
  /// (in input order, on the calling thread). `threads` as parallel_for's.
  template <class Run, class Fill, class Consume>
  void for_each(index_t count, Run&& run, Fill&& fill, Consume&& consume, int threads = 0) {
    for (index_t first = 0; first < count; first += options_.batch_size) {
      const index_t b = std::min(options_.batch_size, count - first);
      parallel_for(
          0, b, 1,
          [&](index_t lo, index_t hi) {
            for (index_t s = lo; s < hi; ++s) fill(first + s, image(s));
          },
          threads);
      run(b);
      for (index_t s = 0; s < b; ++s) consume(first + s, s);
    }
  }

 private:
  [[nodiscard]] std::array<index_t, 4> layout_extents(index_t count) const noexcept {
    return from_nchw({count, chw_[0], chw_[1], chw_[2]}, options_.data_layout);
  }
  [[nodiscard]] batch_view_t<T> batch(index_t count) const noexcept {
    return {images_.data(), layout_extents(count)};
  }
  [[nodiscard]] strided_view<T, 1> scores(index_t count) noexcept {
    return {scores_.data(), {count}};
  }
  [[nodiscard]] strided_view<T, 3> chw_view(T* base) const noexcept {
    const index_t c = chw_[0], h = chw_[1], w = chw_[2];
    if (options_.data_layout == layout::nchw) return {base, {c, h, w}, {h * w, w, 1}};
    return {base, {c, h, w}, {1, w * c, c}};
  }

  model_options options_;
  std::array<index_t, 3> chw_;
  const char* fn_;
  index_t image_size_ = 0;
  std::vector<T> images_;
  std::vector<T> grads_;
  std::vector<T> scores_;
};

}  // namespace detail

CVK_END_NAMESPACE
