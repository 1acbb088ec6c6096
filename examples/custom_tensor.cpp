// cvk example: handing your own data to cvk operators, five ways.
//   1. a member as_cvk_view() on a type you own
//   2. a cvk::view_traits<X> specialization for a type you cannot change
//   3. an as_view(x) free function found by argument-dependent lookup
//   4. cvk::view(ptr, extents, strides) over a raw pointer
//   5. CVK_REGISTER_BOX for an array of your own box structs
// Each section computes cvk::box_area and prints it; the program returns 1 if a result is wrong.
// docs/tensors.md walks through this file section by section.
// SPDX-License-Identifier: MIT

#include <array>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <type_traits>
#include <utility>
#include <vector>

#include <cvk/cvk.hpp>

namespace {

int failures = 0;

// Prints `areas` (any rank-1 tensor) and counts a failure when it differs from `expected`.
template <class Areas>
void check(const char* what, const Areas& areas, std::initializer_list<double> expected) {
  const auto v = cvk::as_view(areas);  // strided_view<const T, 1>
  std::printf("%-34s", what);
  bool ok = v.extent(0) == static_cast<cvk::index_t>(expected.size());
  cvk::index_t i = 0;
  for (const double e : expected) {
    if (i >= v.extent(0)) break;
    const auto got = static_cast<double>(v(i));
    std::printf(" %g", got);
    ok = ok && got == e;
    ++i;
  }
  std::printf("%s\n", ok ? "" : "   <-- wrong");
  if (!ok) ++failures;
}

}  // namespace

// ---- 1. A type you own: a member as_cvk_view() --------------------------------------------------
namespace app {

// N boxes stored row-major as x1, y1, x2, y2, x1, y1, ...
class box_buffer {
 public:
  explicit box_buffer(std::vector<float> coords) : coords_(std::move(coords)) {}

  [[nodiscard]] cvk::index_t size() const { return static_cast<cvk::index_t>(coords_.size() / 4); }

  // Non-const lvalues give a mutable view, so a box_buffer can receive results. Const objects
  // and temporaries bind to the const& overload and give a const view.
  cvk::strided_view<float, 2> as_cvk_view() & { return {coords_.data(), {size(), 4}}; }
  cvk::strided_view<const float, 2> as_cvk_view() const& { return {coords_.data(), {size(), 4}}; }

 private:
  std::vector<float> coords_;
};

}  // namespace app

// ---- 2. A type you cannot change: specialize cvk::view_traits -----------------------------------
namespace vendor {

// A third-party detection list stored as planes: all x1, then all y1, all x2, all y2.
struct detection_planes {
  std::vector<double> coords;  // 4 * count values
  std::size_t count = 0;
};

}  // namespace vendor

// As an N×4 tensor, box i coordinate k is coords[k * count + i]: strides {1, count}.
namespace cvk {
template <>
struct view_traits<vendor::detection_planes> {
  static strided_view<double, 2> view(vendor::detection_planes& d) {
    const auto n = static_cast<index_t>(d.count);
    return {d.coords.data(), {n, 4}, {1, n}};
  }
  static strided_view<const double, 2> view(const vendor::detection_planes& d) {
    const auto n = static_cast<index_t>(d.count);
    return {d.coords.data(), {n, 4}, {1, n}};
  }
};
}  // namespace cvk

// ---- 3. A free function as_view(x), found by argument-dependent lookup --------------------------
namespace geo {

// Regions of interest in integer pixels, x, y, w, h each.
struct pixel_rois {
  std::vector<int> xywh;
};

// Found by argument-dependent lookup (it lives in pixel_rois's namespace). One const overload
// serves const objects, non-const lvalues and temporaries alike; pixel_rois is only an input.
inline cvk::strided_view<const int, 2> as_view(const pixel_rois& rois) {
  return {rois.xywh.data(), {static_cast<cvk::index_t>(rois.xywh.size() / 4), 4}};
}

}  // namespace geo

// ---- 5. Your own box struct: CVK_REGISTER_BOX ---------------------------------------------------
namespace app {

struct detection {
  float x1, y1, x2, y2;  // the four coordinates: one type, declared in order
  float score;
  int label;
};

}  // namespace app

CVK_REGISTER_BOX(app::detection, x1, y1, x2, y2);  // at global scope

int main() try {
  // ---- 1. member as_cvk_view()
  {
    const app::box_buffer boxes({0, 0, 4, 3, 1, 1, 2, 5});
    const cvk::tensor<float, 1> areas = cvk::box_area(boxes);
    check("1. member as_cvk_view()", areas, {12, 4});

    // A box_buffer is also a valid output: box_convert writes into it (same N×4 shape).
    app::box_buffer as_xywh(std::vector<float>(8));
    cvk::box_convert(boxes, cvk::box_format::xyxy, cvk::box_format::xywh, as_xywh);
    check("1. ... converted to xywh", cvk::box_area(as_xywh, cvk::box_format::xywh), {12, 4});
  }

  // ---- 2. view_traits specialization
  {
    const vendor::detection_planes planes{{0, 5, 0, 5, 10, 7, 10, 8}, 2};
    const cvk::tensor<double, 1> areas = cvk::box_area(planes);
    check("2. view_traits<detection_planes>", areas, {100, 6});
  }

  // ---- 3. ADL as_view(x)
  {
    const geo::pixel_rois rois{{0, 0, 3, 4, 2, 2, 5, 5}};
    const auto areas = cvk::box_area(rois, cvk::box_format::xywh);
    static_assert(std::is_same_v<decltype(areas), const cvk::tensor<double, 1>>,
                  "integer boxes give double areas");
    check("3. ADL as_view(pixel_rois)", areas, {12, 25});
  }

  // ---- 4. a raw pointer
  {
    // Rows of six floats (x1, y1, x2, y2, score, class), as a C API might hand them over.
    const std::vector<float> rows{0, 0, 2, 2, 0.9f, 1,  //
                                  1, 1, 4, 3, 0.8f, 2};
    const cvk::index_t n = 2;
    const auto boxes = cvk::view(rows.data(), {n, 4}, {6, 1});  // strided_view<const float, 2>
    std::vector<float> areas(2);
    cvk::box_area(boxes, areas);  // writes into any mutable rank-1 tensor of 2 values
    check("4. cvk::view(ptr, {n, 4}, {6, 1})", areas, {4, 6});
  }

  // ---- 5. CVK_REGISTER_BOX
  {
    const std::vector<app::detection> detections{{0, 0, 2, 3, 0.9f, 1}, {1, 2, 6, 4, 0.7f, 3}};
    check("5. std::vector<detection>", cvk::box_area(detections), {6, 10});
    const float one = cvk::box_area(detections[1]);  // a single registered box is a 4-vector
    check("5. one detection", std::array<float, 1>{one}, {10});
  }

  return failures == 0 ? 0 : 1;
} catch (const std::exception& error) {  // a cvk::error (shape_error, ...) or std::bad_alloc
  std::fprintf(stderr, "custom_tensor: %s\n", error.what());
  return 1;
}
