// cvk — computer-vision kernels, header-only C++20.
// libFuzzer target: cvk::onnx::non_max_suppression on decoded B×N×4 boxes and B×C×N scores
// (float or double). Checked against the operator's contract (docs/nms.md): invalid arguments
// throw a cvk::error and valid ones do not; rows are (batch, class, box) in range, grouped by
// batch then class, unique per group, at most max_output_boxes_per_class each; with
// center_point_box = 0 every group equals the plain O(N²) loop of tests/support/nms_reference.hpp
// on the boxes with ordered corners and the thresholds rounded as the operator's float inputs.
// Input layout: byte 0: bit 4 double; then iou_threshold, score_threshold (flag + threshold),
// max_output_boxes_per_class, center_point_box, threads, B, C, N, the B·N boxes and B·C·N
// scores (fuzz_input.hpp).
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include <cvk/core.hpp>
#include <cvk/nms/onnx.hpp>

#include "fuzz/fuzz_input.hpp"
#include "support/nms_reference.hpp"

namespace {

using cvk::index_t;
using cvk_fuzz::byte_reader;

template <class T>
void fuzz_onnx(byte_reader& in) {
  const double iou_threshold = cvk_fuzz::threshold(in);
  std::optional<double> score_threshold;
  if (in.flag()) score_threshold = cvk_fuzz::threshold(in);
  const std::int64_t max_output = cvk_fuzz::count(in);
  const int center_point_box = static_cast<int>(in.u8() % 3) - (in.flag() ? 1 : 0);
  const int threads = 1 + static_cast<int>(in.below(2));
  const std::size_t batches = in.u8() % 4;
  const std::size_t classes = in.u8() % 4;
  const std::size_t n = in.u8() % 96;
  cvk::tensor<T, 3> boxes(static_cast<index_t>(batches), static_cast<index_t>(n), index_t{4});
  cvk::tensor<T, 3> scores(static_cast<index_t>(batches), static_cast<index_t>(classes),
                           static_cast<index_t>(n));
  for (std::size_t b = 0; b < batches; ++b) {
    const auto rows = cvk_fuzz::boxes<T>(in, n);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t c = 0; c < 4; ++c) {
        boxes(static_cast<index_t>(b), static_cast<index_t>(i), static_cast<index_t>(c)) =
            rows[i][c];
      }
    }
  }
  for (std::size_t b = 0; b < batches; ++b) {
    for (std::size_t c = 0; c < classes; ++c) {
      for (std::size_t i = 0; i < n; ++i) {
        scores(static_cast<index_t>(b), static_cast<index_t>(c), static_cast<index_t>(i)) =
            cvk_fuzz::score<T>(in);
      }
    }
  }

  const bool valid = iou_threshold >= 0 && iou_threshold <= 1 &&
                     !(score_threshold && std::isnan(*score_threshold)) &&
                     (center_point_box == 0 || center_point_box == 1);
  cvk::tensor<std::int64_t, 2> selected;
  const bool threw = cvk_fuzz::throws_cvk_error([&] {
    selected = cvk::onnx::non_max_suppression(boxes, scores, max_output, iou_threshold,
                                              score_threshold, center_point_box, threads);
  });
  CVK_FUZZ_CHECK(threw == !valid, "onnx::non_max_suppression: valid arguments ", valid,
                 " but threw ", threw, " (iou_threshold ", iou_threshold, ", center_point_box ",
                 center_point_box, ")");
  if (threw) return;
  CVK_FUZZ_CHECK(selected.extent(1) == 3, "onnx::non_max_suppression: result is not K×3");
  // the rows, grouped by (batch, class)
  std::vector<std::vector<index_t>> groups(batches * classes);
  std::int64_t last_group = -1;
  for (index_t k = 0; k < selected.extent(0); ++k) {
    const std::int64_t b = selected(k, 0), c = selected(k, 1), i = selected(k, 2);
    CVK_FUZZ_CHECK(
        b >= 0 && static_cast<std::size_t>(b) < batches && c >= 0 &&
            static_cast<std::size_t>(c) < classes && i >= 0 && static_cast<std::size_t>(i) < n,
        "onnx::non_max_suppression: row ", k, " = (", b, ", ", c, ", ", i, ") out of range");
    const std::int64_t group = b * static_cast<std::int64_t>(classes) + c;
    CVK_FUZZ_CHECK(group >= last_group, "onnx::non_max_suppression: row ", k,
                   " breaks the (batch, class) order");
    last_group = group;
    groups[static_cast<std::size_t>(group)].push_back(static_cast<index_t>(i));
  }
  for (const auto& g : groups) {
    std::vector<index_t> sorted = g;
    std::sort(sorted.begin(), sorted.end());
    CVK_FUZZ_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(),
                   "onnx::non_max_suppression: a box selected twice in one group");
    CVK_FUZZ_CHECK(static_cast<std::int64_t>(g.size()) <= std::max<std::int64_t>(max_output, 0),
                   "onnx::non_max_suppression: ", g.size(), " rows in a group, max ", max_output);
  }
  if (center_point_box != 0) return;
  // the reference: each (batch, class) is greedy nms on the ordered corners, thresholds rounded
  // to the operator's types first
  cvk::nms_options options;
  if (score_threshold)
    options.score_threshold = static_cast<double>(static_cast<T>(*score_threshold));
  options.max_output =
      static_cast<index_t>(std::max<std::int64_t>(0, std::min<std::int64_t>(max_output, 1 << 20)));
  const double t = static_cast<double>(static_cast<T>(iou_threshold));
  for (std::size_t b = 0; b < batches; ++b) {
    std::vector<std::array<T, 4>> corners(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto at = [&](index_t c) {
        return boxes(static_cast<index_t>(b), static_cast<index_t>(i), c);
      };
      // [y1, x1, y2, x2] with any diagonal corners: each axis ordered (ORT's MaxMin)
      corners[i] = {std::min(at(1), at(3)), std::min(at(0), at(2)), std::max(at(1), at(3)),
                    std::max(at(0), at(2))};
      // a box with a NaN value takes no part (docs/nms.md), whatever min/max made of it
      if (std::isnan(at(0)) || std::isnan(at(1)) || std::isnan(at(2)) || std::isnan(at(3))) {
        corners[i].fill(std::numeric_limits<T>::quiet_NaN());
      }
    }
    for (std::size_t c = 0; c < classes; ++c) {
      std::vector<T> s(n);
      for (std::size_t i = 0; i < n; ++i) {
        s[i] = scores(static_cast<index_t>(b), static_cast<index_t>(c), static_cast<index_t>(i));
      }
      const std::vector<index_t> want = cvk_test::reference_nms(corners, s, t, options);
      CVK_FUZZ_CHECK(groups[b * classes + c] == want, "onnx::non_max_suppression: batch ", b,
                     " class ", c, " selects ", groups[b * classes + c].size(),
                     " boxes, the plain loop ", want.size());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  byte_reader in(data, size);
  if ((in.u8() & 16U) != 0) {
    fuzz_onnx<double>(in);
  } else {
    fuzz_onnx<float>(in);
  }
  return 0;
}
