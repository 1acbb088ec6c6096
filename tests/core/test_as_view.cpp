// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/core/as_view.hpp: lookup order (member, view_traits, ADL), the poison pill and
// the concepts built on as_view.
// SPDX-License-Identifier: MIT
#include <cvk/core/strided_view.hpp>

#include <array>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// An unconstrained as_view in the global namespace, declared before cvk/core/as_view.hpp so that
// ordinary lookup from cvk's templates could see it. It returns a valid view, so if cvk::as_view
// ever reached it every type would become a tensor; the poison pill must stop that lookup.
template <class T>
cvk::strided_view<const float, 1> as_view(T&&) {
  return {};
}

#include <cvk/core/as_view.hpp>

#include <catch2/catch.hpp>

#include <cvk/core/std_adaptors.hpp>
#include <cvk/core/tensor.hpp>

using cvk::index_t;

namespace user {

// Each route returns a view of a different extent so the tests can tell which one was taken:
// member 1, view_traits 2, ADL 3.
inline float storage[4] = {10.0f, 20.0f, 30.0f, 40.0f};
inline cvk::strided_view<const float, 1> marked(index_t which) { return {storage, {which}}; }

/// Member, traits and ADL: the member wins.
struct member_traits_adl {
  [[nodiscard]] cvk::strided_view<const float, 1> as_cvk_view() const { return marked(1); }
};
inline cvk::strided_view<const float, 1> as_view(const member_traits_adl&) { return marked(3); }

/// Traits and ADL: the traits win.
struct traits_adl {};
inline cvk::strided_view<const float, 1> as_view(const traits_adl&) { return marked(3); }

/// ADL only, taking const& (must serve non-const lvalues and rvalues too).
struct adl_only {};
inline cvk::strided_view<const float, 1> as_view(const adl_only&) { return marked(3); }

/// Member and ADL, no traits: the member wins.
struct member_adl {
  [[nodiscard]] cvk::strided_view<const float, 1> as_cvk_view() const { return marked(1); }
};
inline cvk::strided_view<const float, 1> as_view(const member_adl&) { return marked(3); }

/// ADL overloads for both constnesses: mutable views from non-const lvalues only.
struct adl_mutable {
  float values[2] = {1.0f, 2.0f};
};
inline cvk::strided_view<float, 1> as_view(adl_mutable& x) { return {x.values, {2}}; }
inline cvk::strided_view<const float, 1> as_view(const adl_mutable& x) { return {x.values, {2}}; }

/// A runtime-rank tensor (like xt::xarray).
struct runtime_rank {
  std::array<double, 6> values{};
  std::size_t rank = 2;
  [[nodiscard]] cvk::dynamic_view<const double> as_cvk_view() const {
    cvk::dynamic_view<const double>::extents_type extents{};
    cvk::dynamic_view<const double>::extents_type strides{};
    extents[0] = 2;
    extents[1] = 3;
    strides[0] = 3;
    strides[1] = 1;
    return {values.data(), rank, extents, strides};
  }
};

/// A member that does not return a view does not make a tensor.
struct not_a_view_member {
  [[nodiscard]] int as_cvk_view() const { return 0; }
};

}  // namespace user

namespace other {
/// No as_view anywhere: only the global unconstrained template above could match it.
struct plain {
  float values[4];
};
}  // namespace other

template <>
struct cvk::view_traits<user::member_traits_adl> {
  static cvk::strided_view<const float, 1> view(const user::member_traits_adl&) {
    return user::marked(2);
  }
};
template <>
struct cvk::view_traits<user::traits_adl> {
  static cvk::strided_view<const float, 1> view(const user::traits_adl&) { return user::marked(2); }
};

// ---- concepts -------------------------------------------------------------------------------

static_assert(cvk::tensor_like<user::member_traits_adl>);
static_assert(cvk::tensor_like<user::traits_adl&>);
static_assert(cvk::tensor_like<user::adl_only>);
static_assert(cvk::tensor_like<user::adl_only&>);
static_assert(cvk::tensor_like<const user::adl_only&>);
static_assert(cvk::tensor_like<user::runtime_rank>);
static_assert(!cvk::tensor_like<user::not_a_view_member>);

// Poison pill: the global template is never reached.
static_assert(!cvk::tensor_like<other::plain>);
static_assert(!cvk::tensor_like<other::plain&>);
static_assert(!cvk::tensor_like<const other::plain&>);
static_assert(!cvk::tensor_like<int>);
static_assert(!cvk::tensor_like<std::string>);
static_assert(!cvk::tensor_like<float*>);
static_assert(!cvk::tensor_like<std::vector<std::string>>);

static_assert(cvk::tensor_of_rank<std::vector<float>, 1>);
static_assert(!cvk::tensor_of_rank<std::vector<float>, 2>);
static_assert(cvk::tensor_of_rank<std::vector<std::array<double, 4>>&, 2>);
static_assert(cvk::tensor_of_rank<cvk::strided_view<int, 3>, 3>);
static_assert(!cvk::tensor_of_rank<other::plain, 1>);
// A runtime-rank tensor has every rank as far as overloads are concerned (checked when used) ...
static_assert(cvk::tensor_of_rank<user::runtime_rank, 1>);
static_assert(cvk::tensor_of_rank<user::runtime_rank, 2>);
static_assert(cvk::tensor_of_rank<user::runtime_rank, 3>);
// ... but no static rank, so single-box overloads (rank 1) never take it.
static_assert(!cvk::tensor_of_static_rank<user::runtime_rank, 1>);
static_assert(!cvk::tensor_of_static_rank<user::runtime_rank, 2>);
static_assert(cvk::tensor_of_static_rank<std::array<float, 4>, 1>);
static_assert(!cvk::tensor_of_static_rank<std::array<float, 4>, 2>);
static_assert(cvk::tensor_of_static_rank<cvk::tensor<double, 2>, 2>);

static_assert(cvk::mutable_tensor<std::vector<float>&>);
static_assert(!cvk::mutable_tensor<const std::vector<float>&>);
static_assert(!cvk::mutable_tensor<std::vector<float>>);  // an rvalue container
static_assert(!cvk::mutable_tensor<std::vector<float>&&>);
static_assert(cvk::mutable_tensor<cvk::strided_view<float, 2>>);  // a view of mutable memory
static_assert(!cvk::mutable_tensor<cvk::strided_view<const float, 2>>);
static_assert(cvk::mutable_tensor<cvk::tensor<float, 2>&>);
static_assert(!cvk::mutable_tensor<cvk::tensor<float, 2>>);
static_assert(!cvk::mutable_tensor<const cvk::tensor<float, 2>&>);
static_assert(cvk::mutable_tensor<user::adl_mutable&>);
static_assert(!cvk::mutable_tensor<const user::adl_mutable&>);
static_assert(!cvk::mutable_tensor<user::adl_only&>);

static_assert(std::is_same_v<cvk::tensor_value_t<const std::vector<int>&>, int>);
static_assert(std::is_same_v<cvk::tensor_value_t<cvk::strided_view<const double, 2>>, double>);
static_assert(std::is_same_v<cvk::view_t<std::vector<float>&>, cvk::strided_view<float, 1>>);
static_assert(
    std::is_same_v<cvk::view_t<const std::vector<float>&>, cvk::strided_view<const float, 1>>);
static_assert(std::is_same_v<cvk::view_t<user::runtime_rank>, cvk::dynamic_view<const double>>);

// ---- run-time behaviour ---------------------------------------------------------------------

TEST_CASE("as_view: member beats view_traits beats ADL", "[core][as_view]") {
  user::member_traits_adl a;
  user::traits_adl b;
  user::adl_only c;
  CHECK(cvk::as_view(a).extent(0) == 1);
  CHECK(cvk::as_view(b).extent(0) == 2);
  CHECK(cvk::as_view(c).extent(0) == 3);
  // Same order for const lvalues and rvalues.
  CHECK(cvk::as_view(std::as_const(a)).extent(0) == 1);
  CHECK(cvk::as_view(std::as_const(b)).extent(0) == 2);
  CHECK(cvk::as_view(std::as_const(c)).extent(0) == 3);
  CHECK(cvk::as_view(user::member_traits_adl{}).extent(0) == 1);
  CHECK(cvk::as_view(user::traits_adl{}).extent(0) == 2);
  CHECK(cvk::as_view(user::adl_only{}).extent(0) == 3);
  CHECK(cvk::as_view(c).data() == user::storage);
}

TEST_CASE("as_view: member and ADL, the member wins", "[core][as_view]") {
  user::member_adl x;
  CHECK(cvk::as_view(x).extent(0) == 1);
  CHECK(cvk::as_view(std::as_const(x)).extent(0) == 1);
  CHECK(cvk::as_view(user::member_adl{}).extent(0) == 1);
}

TEST_CASE("as_view: const and rvalue inputs give const views", "[core][as_view]") {
  std::vector<float> v{1.0f, 2.0f, 3.0f};
  static_assert(std::is_same_v<decltype(cvk::as_view(v)), cvk::strided_view<float, 1>>);
  static_assert(
      std::is_same_v<decltype(cvk::as_view(std::as_const(v))), cvk::strided_view<const float, 1>>);
  static_assert(
      std::is_same_v<decltype(cvk::as_view(std::move(v))), cvk::strided_view<const float, 1>>);
  cvk::as_view(v)(1) = 20.0f;
  CHECK(v[1] == 20.0f);
  CHECK(cvk::as_view(std::as_const(v))(1) == 20.0f);

  cvk::tensor<double, 2> t(2, 3);
  static_assert(std::is_same_v<decltype(cvk::as_view(t)), cvk::strided_view<double, 2>>);
  static_assert(
      std::is_same_v<decltype(cvk::as_view(std::as_const(t))), cvk::strided_view<const double, 2>>);
  static_assert(
      std::is_same_v<decltype(cvk::as_view(std::move(t))), cvk::strided_view<const double, 2>>);
  cvk::as_view(t)(1, 2) = 7.0;
  CHECK(t(1, 2) == 7.0);

  user::adl_mutable m;
  static_assert(std::is_same_v<decltype(cvk::as_view(m)), cvk::strided_view<float, 1>>);
  static_assert(
      std::is_same_v<decltype(cvk::as_view(std::as_const(m))), cvk::strided_view<const float, 1>>);
  static_assert(std::is_same_v<decltype(cvk::as_view(user::adl_mutable{})),
                               cvk::strided_view<const float, 1>>);
  cvk::as_view(m)(0) = 5.0f;
  CHECK(m.values[0] == 5.0f);
}

TEST_CASE("as_view: views are tensors of themselves", "[core][as_view]") {
  int values[6] = {0, 1, 2, 3, 4, 5};
  const auto v = cvk::view(values, {3, 2}, {1, 3});
  const auto w = cvk::as_view(v);
  static_assert(std::is_same_v<decltype(w), const cvk::strided_view<int, 2>>);
  CHECK(w.data() == values);
  CHECK(w.strides() == v.strides());
  CHECK(w(2, 1) == 5);
}

TEST_CASE("as_view: runtime-rank tensors", "[core][as_view]") {
  user::runtime_rank r;
  r.values = {1, 2, 3, 4, 5, 6};
  const auto dyn = cvk::as_view(r);
  CHECK(dyn.rank() == 2);
  CHECK(dyn.to_rank<2>()(1, 0) == 4.0);
  r.rank = 3;
  CHECK_THROWS_AS(cvk::as_view(r).to_rank<2>(), cvk::shape_error);
}
