// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/adapt/dlpack.hpp: from_dlpack on DLTensors with null and explicit strides and
// byte offsets, every rejected case with its message, and box operators through DLPack views,
// compared with the std::vector adaptor.
// SPDX-License-Identifier: MIT
#if defined(CVK_TEST_HAS_DLPACK)

#  include <cvk/adapt/dlpack.hpp>

#  include <array>
#  include <cstddef>
#  include <cstdint>
#  include <string>
#  include <type_traits>
#  include <utility>
#  include <vector>

#  include <catch2/catch.hpp>

#  include "adapt_test_support.hpp"

namespace {

using cvk::dynamic_view;
using cvk::index_t;
using cvk::strided_view;

template <class T>
DLDataType float_dtype() {
  return {static_cast<std::uint8_t>(kDLFloat), static_cast<std::uint8_t>(8 * sizeof(T)), 1};
}

template <class T>
std::string float_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

/// A CPU DLTensor over `data` (shape and strides must outlive it).
inline DLTensor cpu_tensor(void* data, int ndim, std::int64_t* shape, std::int64_t* strides,
                           DLDataType dtype, std::uint64_t byte_offset = 0) {
  DLTensor tensor{};
  tensor.data = data;
  tensor.device = DLDevice{kDLCPU, 0};
  tensor.ndim = ndim;
  tensor.dtype = dtype;
  tensor.shape = shape;
  tensor.strides = strides;
  tensor.byte_offset = byte_offset;
  return tensor;
}

/// 0, 1, 2, ... n-1.
template <class T>
std::vector<T> iota(std::size_t n) {
  std::vector<T> values(n);
  for (std::size_t i = 0; i < n; ++i) values[i] = static_cast<T>(i);
  return values;
}

}  // namespace

TEMPLATE_TEST_CASE("dlpack: view types", "[adapt][dlpack]", float, double) {
  using T = TestType;
  STATIC_REQUIRE(std::is_same_v<decltype(cvk::from_dlpack<T, 2>(std::declval<const DLTensor&>())),
                                strided_view<T, 2>>);
  STATIC_REQUIRE(
      std::is_same_v<decltype(cvk::from_dlpack<const T, 2>(std::declval<const DLTensor&>())),
                     strided_view<const T, 2>>);
  STATIC_REQUIRE(std::is_same_v<decltype(cvk::from_dlpack<T>(std::declval<const DLTensor&>())),
                                dynamic_view<T>>);
  STATIC_REQUIRE(
      std::is_same_v<decltype(cvk::from_dlpack<const T>(std::declval<const DLTensor&>())),
                     dynamic_view<const T>>);
}

TEMPLATE_TEST_CASE("dlpack: null strides mean compact row-major", "[adapt][dlpack]", float,
                   double) {
  using T = TestType;
  auto values = iota<T>(24);
  std::int64_t shape[3] = {2, 3, 4};
  const DLTensor tensor = cpu_tensor(values.data(), 3, shape, nullptr, float_dtype<T>());
  const auto v = cvk::from_dlpack<T, 3>(tensor);
  CHECK(v.data() == values.data());
  CHECK(v.extent(0) == 2);
  CHECK(v.extent(1) == 3);
  CHECK(v.extent(2) == 4);
  CHECK(v.stride(0) == 12);
  CHECK(v.stride(1) == 4);
  CHECK(v.stride(2) == 1);
  CHECK(v(1, 2, 3) == T(23));
  CHECK(v(1, 0, 2) == T(14));
  v(0, 1, 1) = T(-1);
  CHECK(values[5] == T(-1));

  const auto d = cvk::from_dlpack<const T>(tensor);
  REQUIRE(d.rank() == 3);
  CHECK(d.stride(0) == 12);
  CHECK(d.template to_rank<3>()(1, 2, 3) == T(23));

  SECTION("rank 0 is a scalar") {
    const DLTensor scalar = cpu_tensor(values.data() + 7, 0, nullptr, nullptr, float_dtype<T>());
    CHECK(cvk::from_dlpack<const T, 0>(scalar)() == T(7));
    CHECK(cvk::from_dlpack<const T>(scalar).rank() == 0);
  }
  SECTION("an empty tensor may have null data") {
    std::int64_t empty_shape[2] = {0, 4};
    const DLTensor empty = cpu_tensor(nullptr, 2, empty_shape, nullptr, float_dtype<T>());
    const auto e = cvk::from_dlpack<T, 2>(empty);
    CHECK(e.empty());
    CHECK(e.extent(1) == 4);
    CHECK(cvk::box_area(e).size() == 0);
  }
}

TEMPLATE_TEST_CASE("dlpack: explicit strides and byte_offset", "[adapt][dlpack]", float, double) {
  using T = TestType;
  auto values = iota<T>(30);
  SECTION("column-major strides") {
    std::int64_t shape[2] = {3, 4};
    std::int64_t strides[2] = {1, 3};
    const auto v =
        cvk::from_dlpack<T, 2>(cpu_tensor(values.data(), 2, shape, strides, float_dtype<T>()));
    CHECK(v.stride(0) == 1);
    CHECK(v.stride(1) == 3);
    for (index_t i = 0; i < 3; ++i) {
      for (index_t j = 0; j < 4; ++j) CHECK(v(i, j) == static_cast<T>(i + 3 * j));
    }
  }
  SECTION("padded rows") {
    std::int64_t shape[2] = {4, 4};
    std::int64_t strides[2] = {7, 1};
    const auto v =
        cvk::from_dlpack<T, 2>(cpu_tensor(values.data(), 2, shape, strides, float_dtype<T>()));
    CHECK(v.stride(0) == 7);
    CHECK(v(3, 2) == T(23));
  }
  SECTION("byte_offset is counted in bytes") {
    std::int64_t shape[2] = {2, 4};
    const auto v = cvk::from_dlpack<const T, 2>(
        cpu_tensor(values.data(), 2, shape, nullptr, float_dtype<T>(), 5 * sizeof(T)));
    CHECK(v.data() == values.data() + 5);
    CHECK(v(0, 0) == T(5));
    CHECK(v(1, 3) == T(12));
  }
  SECTION("byte_offset with a negative stride (rows reversed)") {
    std::int64_t shape[2] = {3, 4};
    std::int64_t strides[2] = {-4, 1};
    const auto v = cvk::from_dlpack<T, 2>(
        cpu_tensor(values.data(), 2, shape, strides, float_dtype<T>(), 8 * sizeof(T)));
    CHECK(v(0, 0) == T(8));
    CHECK(v(2, 0) == T(0));
    CHECK(v(1, 3) == T(7));
  }
  SECTION("DLManagedTensor") {
    std::int64_t shape[1] = {6};
    DLManagedTensor managed{};
    managed.dl_tensor = cpu_tensor(values.data(), 1, shape, nullptr, float_dtype<T>());
    CHECK(cvk::from_dlpack<T, 1>(managed)(5) == T(5));
    CHECK(cvk::from_dlpack<T>(managed).rank() == 1);
  }
  SECTION("pinned host memory is readable") {
    std::int64_t shape[1] = {6};
    DLTensor pinned = cpu_tensor(values.data(), 1, shape, nullptr, float_dtype<T>());
    pinned.device.device_type = kDLCUDAHost;
    CHECK(cvk::from_dlpack<T, 1>(pinned)(4) == T(4));
  }
}

TEST_CASE("dlpack: integer dtypes", "[adapt][dlpack]") {
  std::vector<std::int32_t> ints{1, -2, 3, -4};
  std::vector<std::uint8_t> bytes{1, 2, 250, 4};
  std::vector<std::int64_t> longs{7, 8, 9, 10};
  std::int64_t shape[1] = {4};
  const DLTensor int32 = cpu_tensor(ints.data(), 1, shape, nullptr, {kDLInt, 32, 1});
  const DLTensor uint8 = cpu_tensor(bytes.data(), 1, shape, nullptr, {kDLUInt, 8, 1});
  const DLTensor int64 = cpu_tensor(longs.data(), 1, shape, nullptr, {kDLInt, 64, 1});
  CHECK(cvk::from_dlpack<std::int32_t, 1>(int32)(3) == -4);
  CHECK(cvk::from_dlpack<const std::uint8_t, 1>(uint8)(2) == 250);
  CHECK(cvk::from_dlpack<std::int64_t>(int64).to_rank<1>()(0) == 7);
  CHECK_THROWS_WITH(static_cast<void>(cvk::from_dlpack<std::uint32_t, 1>(int32)),
                    "from_dlpack: tensor has dtype int32, expected uint32");
  CHECK_THROWS_WITH(static_cast<void>(cvk::from_dlpack<std::int8_t, 1>(uint8)),
                    "from_dlpack: tensor has dtype uint8, expected int8");
}

TEMPLATE_TEST_CASE("dlpack: rejected tensors raise typed errors with messages", "[adapt][dlpack]",
                   float, double) {
  using T = TestType;
  auto values = iota<T>(24);
  std::int64_t shape[3] = {2, 3, 4};
  const DLTensor good = cpu_tensor(values.data(), 3, shape, nullptr, float_dtype<T>());
  SECTION("a device the CPU cannot read") {
    DLTensor cuda = good;
    cuda.device = DLDevice{kDLCUDA, 1};
    CHECK_THROWS_AS(static_cast<void>(cvk::from_dlpack<T, 3>(cuda)), cvk::device_error);
    CHECK_THROWS_WITH(static_cast<void>(cvk::from_dlpack<T, 3>(cuda)),
                      "from_dlpack: tensor is on device cuda:1; cvk reads CPU memory only (kDLCPU "
                      "or pinned host memory)");
    CHECK_THROWS_AS(static_cast<void>(cvk::from_dlpack<T>(cuda)), cvk::device_error);
    DLTensor managed = good;
    managed.device.device_type = kDLCUDAManaged;
    CHECK_THROWS_AS(static_cast<void>(cvk::from_dlpack<T, 3>(managed)), cvk::device_error);
  }
  SECTION("another dtype") {
    DLTensor int32 = good;
    int32.dtype = DLDataType{kDLInt, 32, 1};
    CHECK_THROWS_AS(static_cast<void>(cvk::from_dlpack<T, 3>(int32)), cvk::dtype_error);
    CHECK_THROWS_WITH(static_cast<void>(cvk::from_dlpack<T, 3>(int32)),
                      "from_dlpack: tensor has dtype int32, expected " + float_name<T>());
    DLTensor other_width = good;
    other_width.dtype = float_dtype<std::conditional_t<sizeof(T) == 4, double, float>>();
    CHECK_THROWS_AS(static_cast<void>(cvk::from_dlpack<T>(other_width)), cvk::dtype_error);
    DLTensor lanes = good;
    lanes.dtype.lanes = 4;
    CHECK_THROWS_WITH(
        static_cast<void>(cvk::from_dlpack<const T, 3>(lanes)),
        "from_dlpack: tensor has dtype " + float_name<T>() + "x4, expected " + float_name<T>());
  }
  SECTION("another rank") {
    CHECK_THROWS_AS(static_cast<void>(cvk::from_dlpack<T, 2>(good)), cvk::shape_error);
    CHECK_THROWS_WITH(static_cast<void>(cvk::from_dlpack<T, 2>(good)),
                      "from_dlpack: tensor must have rank 2, got rank 3 (2×3×4)");
    // A runtime-rank view is checked by the operator that uses it.
    CHECK_THROWS_WITH(static_cast<void>(cvk::box_area(cvk::from_dlpack<const T>(good))),
                      "box_area: boxes must have rank 2, got rank 3 (2×3×4)");
  }
  SECTION("a rank beyond max_dynamic_rank") {
    std::int64_t ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const DLTensor rank9 = cpu_tensor(values.data(), 9, ones, nullptr, float_dtype<T>());
    CHECK_THROWS_WITH(static_cast<void>(cvk::from_dlpack<T>(rank9)),
                      "from_dlpack: tensor must have rank at most 8 (cvk::max_dynamic_rank), got "
                      "rank 9 (1×1×1×1×1×1×1×1×1)");
    CHECK(cvk::from_dlpack<T, 9>(rank9).size() == 1);
  }
  SECTION("a negative ndim or extent, a null shape") {
    DLTensor negative = good;
    negative.ndim = -1;
    CHECK_THROWS_AS(static_cast<void>(cvk::from_dlpack<T>(negative)), cvk::shape_error);
    CHECK_THROWS_WITH(static_cast<void>(cvk::from_dlpack<T, 3>(negative)),
                      "from_dlpack: tensor has a negative ndim, got -1");
    std::int64_t bad_shape[2] = {2, -4};
    const DLTensor negative_extent =
        cpu_tensor(values.data(), 2, bad_shape, nullptr, float_dtype<T>());
    CHECK_THROWS_WITH(static_cast<void>(cvk::from_dlpack<T, 2>(negative_extent)),
                      "from_dlpack: tensor has a negative extent, got 2×-4");
    DLTensor no_shape = good;
    no_shape.shape = nullptr;
    CHECK_THROWS_WITH(static_cast<void>(cvk::from_dlpack<T, 3>(no_shape)),
                      "from_dlpack: tensor has ndim 3 but a null shape");
  }
  SECTION("a byte_offset that is not a whole number of elements") {
    DLTensor offset = good;
    offset.byte_offset = 2;
    CHECK_THROWS_AS(static_cast<void>(cvk::from_dlpack<T, 3>(offset)), cvk::invalid_argument);
    CHECK_THROWS_WITH(static_cast<void>(cvk::from_dlpack<T, 3>(offset)),
                      "from_dlpack: tensor byte_offset 2 is not a multiple of the " +
                          float_name<T>() + " element size (" + std::to_string(sizeof(T)) +
                          " bytes)");
  }
  SECTION("null data for a non-empty tensor") {
    DLTensor null = good;
    null.data = nullptr;
    CHECK_THROWS_AS(static_cast<void>(cvk::from_dlpack<T, 3>(null)), cvk::invalid_argument);
    CHECK_THROWS_WITH(static_cast<void>(cvk::from_dlpack<T, 3>(null)),
                      "from_dlpack: tensor has null data with shape 2×3×4");
  }
  SECTION("data misaligned for the element type") {
    alignas(8) unsigned char raw[64] = {};
    std::int64_t four[1] = {4};
    const DLTensor misaligned = cpu_tensor(raw + 1, 1, four, nullptr, float_dtype<T>());
    CHECK_THROWS_AS(static_cast<void>(cvk::from_dlpack<T, 1>(misaligned)), cvk::invalid_argument);
    CHECK_THROWS_WITH(static_cast<void>(cvk::from_dlpack<T, 1>(misaligned)),
                      "from_dlpack: tensor data + byte_offset is not aligned for " +
                          float_name<T>() + " (" + std::to_string(alignof(T)) + " bytes)");
  }
  SECTION("every error is a cvk::error and a std::invalid_argument") {
    DLTensor cuda = good;
    cuda.device.device_type = kDLCUDA;
    CHECK_THROWS_AS(static_cast<void>(cvk::from_dlpack<T, 3>(cuda)), cvk::error);
    CHECK_THROWS_AS(static_cast<void>(cvk::from_dlpack<T, 3>(cuda)), std::invalid_argument);
  }
}

TEMPLATE_TEST_CASE("dlpack: box_area and box_convert match the std::vector adaptor",
                   "[adapt][dlpack]", float, double) {
  using T = TestType;
  auto boxes = cvk_test::random_boxes_with_degenerate<T>(29, 20191103);
  const auto n = static_cast<std::int64_t>(boxes.size());
  std::int64_t shape[2] = {n, 4};
  const DLTensor tensor = cpu_tensor(boxes.front().data(), 2, shape, nullptr, float_dtype<T>());
  const auto expected_areas = cvk_test::reference_areas(boxes);

  SECTION("box_area through static and runtime-rank views") {
    CHECK(cvk_test::to_vector(cvk::box_area(cvk::from_dlpack<const T, 2>(tensor)).view()) ==
          expected_areas);
    CHECK(cvk_test::to_vector(cvk::box_area(cvk::from_dlpack<T>(tensor)).view()) == expected_areas);
    for (const auto format : cvk_test::all_formats) {
      CAPTURE(cvk::to_string(format));
      CHECK(
          cvk_test::to_vector(cvk::box_area(cvk::from_dlpack<const T, 2>(tensor), format).view()) ==
          cvk_test::reference_areas(boxes, format));
    }
  }
  SECTION("transposed storage: 4×N column-major boxes") {
    std::vector<T> columns(boxes.size() * 4);
    for (std::size_t i = 0; i < boxes.size(); ++i) {
      for (std::size_t k = 0; k < 4; ++k) columns[k * boxes.size() + i] = boxes[i][k];
    }
    std::int64_t strides[2] = {1, n};
    const DLTensor transposed = cpu_tensor(columns.data(), 2, shape, strides, float_dtype<T>());
    CHECK(cvk_test::to_vector(cvk::box_area(cvk::from_dlpack<const T, 2>(transposed)).view()) ==
          expected_areas);
  }
  SECTION("outputs written through DLPack views") {
    std::vector<T> areas(boxes.size(), T(0));
    std::int64_t area_shape[1] = {n};
    const DLTensor area_tensor = cpu_tensor(areas.data(), 1, area_shape, nullptr, float_dtype<T>());
    cvk::box_area(cvk::from_dlpack<const T, 2>(tensor), cvk::from_dlpack<T, 1>(area_tensor));
    CHECK(areas == expected_areas);

    std::vector<T> converted(boxes.size() * 4, T(0));
    const DLTensor converted_tensor =
        cpu_tensor(converted.data(), 2, shape, nullptr, float_dtype<T>());
    cvk::box_convert(cvk::from_dlpack<const T>(tensor), cvk::box_format::xyxy,
                     cvk::box_format::cxcywh, cvk::from_dlpack<T>(converted_tensor));
    const auto expected =
        cvk_test::reference_convert(boxes, cvk::box_format::xyxy, cvk::box_format::cxcywh);
    CHECK(cvk_test::to_rows(cvk::from_dlpack<const T, 2>(converted_tensor)) == expected);
  }
  SECTION("wrong column count") {
    std::int64_t three[2] = {7, 3};
    const DLTensor seven_by_three =
        cpu_tensor(boxes.front().data(), 2, three, nullptr, float_dtype<T>());
    CHECK_THROWS_AS(static_cast<void>(cvk::box_area(cvk::from_dlpack<const T>(seven_by_three))),
                    cvk::shape_error);
    CHECK_THROWS_WITH(static_cast<void>(cvk::box_area(cvk::from_dlpack<const T>(seven_by_three))),
                      "box_area: boxes must be N×4, got 7×3");
  }
}

#endif  // CVK_TEST_HAS_DLPACK
