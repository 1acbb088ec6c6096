// expect: cvk: channel_shuffle_view of a temporary tensor would dangle
// A zero-copy view of a temporary cvk::tensor: rejected at compile time instead of dangling.
#include <cvk/conv/channel_shuffle.hpp>

#include <array>

int main() {
  const auto v =
      cvk::channel_shuffle_view(cvk::tensor<float, 4>(std::array<cvk::index_t, 4>{1, 4, 2, 2}), 2);
  return static_cast<int>(v.extent(0));
}
