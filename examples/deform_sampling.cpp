// cvk — computer-vision kernels, header-only C++20.
// Where a deformable 3×3 kernel samples (Dai et al., ICCV 2017; torchvision's deform_conv2d
// layout): an offset field that turns and widens the kernel across the image, the bilinear
// samples cvk::deform_conv2d reads there — checked against a plain bilinear lookup through a
// weight that picks one tap per output channel — and deform_sampling.png: the image, the regular
// 3×3 grid of a few output pixels (grey) and the points the offsets move it to (coloured).
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <string>
#include <vector>

#include <cvk/conv.hpp>

#include "support/png.hpp"

namespace {

using cvk::index_t;

constexpr index_t size = 48;  // image H = W; padding 1 and stride 1 keep Ho = Wo = size
constexpr index_t taps = 9;

/// The offset of tap (ky, kx) at output pixel (oy, ox): the regular offsets (ky − 1, kx − 1)
/// turned by an angle that grows along the diagonal and scaled from 1 (left) to 3 (right), minus
/// the regular offsets — so the kernel samples a rotated, wider 3×3 pattern.
std::array<double, 2> tap_offset(index_t oy, index_t ox, index_t ky, index_t kx) {
  const double angle = std::numbers::pi / 2 * static_cast<double>(oy + ox) / (2.0 * size);
  const double scale = 1.0 + 2.0 * static_cast<double>(ox) / static_cast<double>(size - 1);
  const double dy = static_cast<double>(ky - 1), dx = static_cast<double>(kx - 1);
  const double ry = scale * (std::cos(angle) * dy + std::sin(angle) * dx);
  const double rx = scale * (-std::sin(angle) * dy + std::cos(angle) * dx);
  return {ry - dy, rx - dx};
}

/// Bilinear sample of the image at (y, x), zero outside (torchvision's deform_conv2d rule).
double bilinear(const std::vector<double>& image, double y, double x) {
  if (!(y > -1.0 && x > -1.0 && y < static_cast<double>(size) && x < static_cast<double>(size))) {
    return 0.0;
  }
  const double y0 = std::floor(y), x0 = std::floor(x);
  const double fy = y - y0, fx = x - x0;
  const auto at = [&](double yy, double xx) {
    if (yy < 0 || xx < 0 || yy >= static_cast<double>(size) || xx >= static_cast<double>(size)) {
      return 0.0;
    }
    return image[static_cast<std::size_t>(yy) * static_cast<std::size_t>(size) +
                 static_cast<std::size_t>(xx)];
  };
  return (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) +
         fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
}

}  // namespace

int main(int argc, char** argv) {
  const std::string directory = argc > 1 ? argv[1] : ".";

  // A test image: rings around the centre on a soft horizontal ramp, in [0, 1].
  std::vector<double> image(static_cast<std::size_t>(size * size));
  for (index_t y = 0; y < size; ++y) {
    for (index_t x = 0; x < size; ++x) {
      const double r =
          std::hypot(static_cast<double>(y) - size / 2.0, static_cast<double>(x) - size / 2.0);
      image[static_cast<std::size_t>(y * size + x)] =
          0.35 + 0.35 * std::cos(r * 0.6) + 0.3 * static_cast<double>(x) / size;
    }
  }

  // Offsets N×(2·9)×Ho×Wo, (dy, dx) interleaved per tap (row-major taps), NCHW.
  cvk::tensor<double, 4> offset(std::array<index_t, 4>{1, 2 * taps, size, size});
  for (index_t oy = 0; oy < size; ++oy) {
    for (index_t ox = 0; ox < size; ++ox) {
      for (index_t t = 0; t < taps; ++t) {
        const auto o = tap_offset(oy, ox, t / 3, t % 3);
        offset(0, 2 * t, oy, ox) = o[0];
        offset(0, 2 * t + 1, oy, ox) = o[1];
      }
    }
  }
  // Weight 9×1×3×3: output channel t keeps tap t only, so y[t] is the sample of tap t.
  cvk::tensor<double, 4> weight(std::array<index_t, 4>{taps, 1, 3, 3});
  for (index_t t = 0; t < taps; ++t) weight(t, 0, t / 3, t % 3) = 1.0;
  const cvk::strided_view<const double, 4> input(image.data(), {1, 1, size, size});
  const auto samples = cvk::deform_conv2d(input, offset, weight, {.padding = {1, 1, 1, 1}});

  // Every sample against the plain bilinear lookup at the moved point.
  double worst = 0.0;
  for (index_t oy = 0; oy < size; ++oy) {
    for (index_t ox = 0; ox < size; ++ox) {
      for (index_t t = 0; t < taps; ++t) {
        const auto o = tap_offset(oy, ox, t / 3, t % 3);
        const double py = static_cast<double>(oy - 1 + t / 3) + o[0];
        const double px = static_cast<double>(ox - 1 + t % 3) + o[1];
        worst = std::max(worst, std::fabs(samples(0, t, oy, ox) - bilinear(image, py, px)));
      }
    }
  }
  std::printf("deform_conv2d samples %lld points of a %lldx%lld image (3x3 kernel, padding 1)\n",
              static_cast<long long>(size * size * taps), static_cast<long long>(size),
              static_cast<long long>(size));
  std::printf("largest difference from a plain bilinear lookup: %.3g\n", worst);

  // The picture: the image 10× enlarged, and for a 4×4 grid of output pixels the regular 3×3
  // grid (grey) and where the offsets move it (coloured, joined to the centre tap).
  constexpr int zoom = 10;
  png::image picture(static_cast<int>(size) * zoom, static_cast<int>(size) * zoom + 24);
  for (index_t y = 0; y < size; ++y) {
    for (index_t x = 0; x < size; ++x) {
      const auto v = static_cast<std::uint8_t>(
          std::clamp(image[static_cast<std::size_t>(y * size + x)], 0.0, 1.0) * 200.0 + 40.0);
      picture.fill_rect(static_cast<double>(x * zoom), static_cast<double>(y * zoom + 24),
                        static_cast<double>((x + 1) * zoom),
                        static_cast<double>((y + 1) * zoom + 24), png::rgb{v, v, v});
    }
  }
  picture.draw_text(6, 4, "deformable 3x3 sampling: grey = regular grid, colour = with offsets",
                    png::black, 1);
  const auto to_pixel = [&](double y, double x) {
    return std::array<double, 2>{(y + 0.5) * zoom + 24, (x + 0.5) * zoom};
  };
  std::size_t colour = 0;
  for (index_t gy = 0; gy < 4; ++gy) {
    for (index_t gx = 0; gx < 4; ++gx) {
      const index_t oy = 6 + gy * 12, ox = 6 + gx * 12;
      constexpr std::array<std::size_t, 9> not_grey{0, 1, 2, 3, 4, 5, 6, 8, 9};
      const png::rgb c = png::palette(not_grey[colour++ % not_grey.size()]);
      const auto centre = to_pixel(static_cast<double>(oy), static_cast<double>(ox));
      for (index_t t = 0; t < taps; ++t) {
        const auto o = tap_offset(oy, ox, t / 3, t % 3);
        const auto regular =
            to_pixel(static_cast<double>(oy - 1 + t / 3), static_cast<double>(ox - 1 + t % 3));
        const auto moved = to_pixel(static_cast<double>(oy - 1 + t / 3) + o[0],
                                    static_cast<double>(ox - 1 + t % 3) + o[1]);
        picture.fill_rect(regular[1] - 2, regular[0] - 2, regular[1] + 2, regular[0] + 2,
                          png::grey);
        picture.draw_line(centre[1], centre[0], moved[1], moved[0], c, 1);
        picture.fill_rect(moved[1] - 3, moved[0] - 3, moved[1] + 3, moved[0] + 3, c);
      }
    }
  }
  const std::string path = directory + "/deform_sampling.png";
  if (!picture.save(path)) {
    std::fprintf(stderr, "could not write %s\n", path.c_str());
    return 1;
  }
  std::printf("wrote %s\n", path.c_str());
  return worst < 1e-12 ? 0 : 1;
}
