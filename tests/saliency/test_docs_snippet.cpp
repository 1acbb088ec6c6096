// cvk — computer-vision kernels, header-only C++20.
// The compiled snippet of docs/saliency.md ("Feeding an inference engine's buffers"): Grad-CAM
// from raw NHWC buffers and from DLPack tensors (what libtorch's at::toDLPack and ONNX Runtime's
// DLPack export hand out), and occlusion through a forward callable that runs an "engine" over
// cvk's contiguous batch buffer. The snippet is copied verbatim between the SNIPPET markers; the
// test below checks that it computes what it says.
// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <vector>

#include <cvk/saliency.hpp>
#if CVK_TEST_HAS_DLPACK
#  include <cvk/adapt/dlpack.hpp>
#endif

namespace {

// ---- SNIPPET BEGIN ------------------------------------------------------------------------
// An engine's output buffers: activations of the last conv layer and d logit / d activations,
// NHWC float, 1×7×7×K (ONNX Runtime and TensorRT hand out such pointers).
cvk::tensor<float, 3> heatmap_from_buffers(const float* activations, const float* gradients,
                                           std::int64_t k) {
  const auto a = cvk::view(activations, 1, 7, 7, k);  // contiguous row-major views, no copy
  const auto g = cvk::view(gradients, 1, 7, 7, k);
  auto cam = cvk::grad_cam(a, g, {.data_layout = cvk::layout::nhwc});  // 1×7×7, unnormalised
  auto big = cvk::upsample_bilinear(cam, {224, 224});                  // to the input size
  return cvk::normalize(big);                                          // min-max to [0, 1]
}

#if CVK_TEST_HAS_DLPACK
// The same from DLPack tensors (libtorch: at::toDLPack(t)->dl_tensor; any strides are fine).
cvk::tensor<float, 3> heatmap_from_dlpack(const DLTensor& activations, const DLTensor& gradients) {
  const auto a = cvk::from_dlpack<const float, 4>(activations);  // checks device, dtype, rank
  const auto g = cvk::from_dlpack<const float, 4>(gradients);
  return cvk::grad_cam(a, g, {.data_layout = cvk::layout::nhwc});
}
#endif

// A black-box method through a forward callable: cvk hands the engine a contiguous B×H×W×C
// float buffer (batch.data()) and takes one score per input back, batch_size inputs at a time.
template <class Engine>
cvk::tensor<float, 4> occlusion_through_engine(const cvk::tensor<float, 4>& image_nhwc,
                                               Engine& engine) {
  auto forward = [&](cvk::strided_view<const float, 4> batch, cvk::strided_view<float, 1> scores) {
    engine.run(batch.data(), batch.extent(0), scores.data());  // e.g. Ort::Session::Run
  };
  return cvk::occlusion(image_nhwc, forward,
                        {.window = {.height = 8, .width = 8},
                         .strides = {.height = 8, .width = 8},
                         .model = {.batch_size = 16, .data_layout = cvk::layout::nhwc}});
}
// ---- SNIPPET END --------------------------------------------------------------------------

// A stand-in engine: the score of an H×W×C image is the sum of its first channel.
struct sum_engine {
  std::int64_t h, w, c;
  int calls = 0;
  void run(const float* data, std::int64_t batch, float* scores) {
    ++calls;
    for (std::int64_t b = 0; b < batch; ++b) {
      float s = 0;
      for (std::int64_t i = 0; i < h * w; ++i) s += data[(b * h * w + i) * c];
      scores[b] = s;
    }
  }
};

}  // namespace

TEST_CASE("docs/saliency.md snippet: Grad-CAM from raw NHWC buffers", "[saliency][docs]") {
  const std::int64_t k = 3;
  std::vector<float> a(7 * 7 * k), g(7 * 7 * k);
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>((i * 37) % 11) / 11.0f;
    g[i] = static_cast<float>(i % 3) - 0.5f;  // channel means -0.5, 0.5, 1.5
  }
  const auto map = heatmap_from_buffers(a.data(), g.data(), k);
  REQUIRE(map.extent(0) == 1);
  REQUIRE(map.extent(1) == 224);
  REQUIRE(map.extent(2) == 224);
  float lo = 1, hi = 0;
  for (float v : map) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  CHECK(lo == 0.0f);
  CHECK(hi == 1.0f);
  // the unnormalised map at one pixel by hand: ReLU(Σ_k mean(g^k) A^k)
  const auto cam = cvk::grad_cam(cvk::view(a.data(), 1, 7, 7, k), cvk::view(g.data(), 1, 7, 7, k),
                                 {.data_layout = cvk::layout::nhwc});
  const float want = std::max(0.0f, -0.5f * a[0] + 0.5f * a[1] + 1.5f * a[2]);
  CHECK(cam(0, 0, 0) == Approx(want).epsilon(1e-6));
#if CVK_TEST_HAS_DLPACK
  std::array<std::int64_t, 4> shape{1, 7, 7, k};
  DLTensor ta{};
  ta.data = a.data();
  ta.device = {kDLCPU, 0};
  ta.ndim = 4;
  ta.dtype = {kDLFloat, 32, 1};
  ta.shape = shape.data();
  DLTensor tg = ta;
  tg.data = g.data();
  CHECK(heatmap_from_dlpack(ta, tg) == cam);
#endif
}

TEST_CASE("docs/saliency.md snippet: occlusion through an engine's forward callable",
          "[saliency][docs]") {
  const std::int64_t h = 16, w = 16, c = 2;
  cvk::tensor<float, 4> image(1, h, w, c);
  for (std::int64_t y = 0; y < h; ++y) {
    for (std::int64_t x = 0; x < w; ++x) image(0, y, x, 0) = static_cast<float>(y * w + x);
  }
  sum_engine engine{h, w, c};
  const auto attr = occlusion_through_engine(image, engine);
  // 4 windows of 8×8 plus the unoccluded image, in one batch
  CHECK(engine.calls == 1);
  // each window removes its own pixels from the sum: the attribution of a pixel is the sum of
  // its window's first channel, on both channels (the window spans all channels)
  float top_left = 0;
  for (std::int64_t y = 0; y < 8; ++y) {
    for (std::int64_t x = 0; x < 8; ++x) top_left += image(0, y, x, 0);
  }
  CHECK(attr(0, 3, 5, 0) == Approx(top_left));
  CHECK(attr(0, 3, 5, 1) == Approx(top_left));
}
