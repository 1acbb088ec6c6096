// cvk — computer-vision kernels, header-only C++20.
// Example support: a small RGB canvas (rectangles, lines, text, alpha blending) saved as PNG with
// stb_image_write. Examples only; cvk itself never writes images.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// Private copies of stb's functions in every translation unit that includes this header, so the
// helper needs no separately compiled library and never clashes with another copy of stb.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_easy_font.h>
#include <stb_image_write.h>

namespace png {

/// An 8-bit RGB colour.
struct rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(const rgb&, const rgb&) = default;
};

inline constexpr rgb white{255, 255, 255};
inline constexpr rgb black{0, 0, 0};
inline constexpr rgb grey{128, 128, 128};

/// A colour for series `i` that stays distinguishable from its neighbours (the "tab10"
/// palette of matplotlib, repeated).
[[nodiscard]] inline rgb palette(std::size_t i) noexcept {
  static constexpr std::array<rgb, 10> colours = {{{31, 119, 180},
                                                   {255, 127, 14},
                                                   {44, 160, 44},
                                                   {214, 39, 40},
                                                   {148, 103, 189},
                                                   {140, 86, 75},
                                                   {227, 119, 194},
                                                   {127, 127, 127},
                                                   {188, 189, 34},
                                                   {23, 190, 207}}};
  return colours[i % colours.size()];
}

/// A width×height RGB image, row-major, (0, 0) at the top left. Drawing is clipped to the image;
/// coordinates are pixels and may be fractional (they are rounded).
class image {
 public:
  image(int width, int height, rgb background = white)
      : width_(std::max(width, 0)),
        height_(std::max(height, 0)),
        pixels_(static_cast<std::size_t>(width_) * static_cast<std::size_t>(height_) * 3) {
    fill_rect(0, 0, width_, height_, background);
  }

  [[nodiscard]] int width() const noexcept { return width_; }
  [[nodiscard]] int height() const noexcept { return height_; }

  /// The colour at (x, y); black outside the image.
  [[nodiscard]] rgb at(int x, int y) const noexcept {
    if (!inside(x, y)) return black;
    const std::size_t i = offset(x, y);
    return {pixels_[i], pixels_[i + 1], pixels_[i + 2]};
  }

  /// Sets (x, y) to `colour`, or mixes it in with opacity `alpha` in [0, 1].
  void set(int x, int y, rgb colour, double alpha = 1.0) noexcept {
    if (!inside(x, y)) return;
    const std::size_t i = offset(x, y);
    if (alpha >= 1.0) {
      pixels_[i] = colour.r;
      pixels_[i + 1] = colour.g;
      pixels_[i + 2] = colour.b;
      return;
    }
    const double a = std::clamp(alpha, 0.0, 1.0);
    const auto mix = [a](std::uint8_t under, std::uint8_t over) {
      return static_cast<std::uint8_t>(std::lround((1.0 - a) * under + a * over));
    };
    pixels_[i] = mix(pixels_[i], colour.r);
    pixels_[i + 1] = mix(pixels_[i + 1], colour.g);
    pixels_[i + 2] = mix(pixels_[i + 2], colour.b);
  }

  /// Fills the pixels whose centres lie in [x1, x2) × [y1, y2) (an xyxy box).
  void fill_rect(double x1, double y1, double x2, double y2, rgb colour, double alpha = 1.0) {
    const int left = std::max(round(std::min(x1, x2)), 0);
    const int right = std::min(round(std::max(x1, x2)), width_);
    const int top = std::max(round(std::min(y1, y2)), 0);
    const int bottom = std::min(round(std::max(y1, y2)), height_);
    for (int y = top; y < bottom; ++y) {
      for (int x = left; x < right; ++x) set(x, y, colour, alpha);
    }
  }

  /// The outline of the xyxy box (x1, y1, x2, y2), `thickness` pixels wide, inside the box.
  void draw_rect(double x1, double y1, double x2, double y2, rgb colour, int thickness = 1) {
    const double t = std::max(thickness, 1);
    const double left = std::min(x1, x2), right = std::max(x1, x2);
    const double top = std::min(y1, y2), bottom = std::max(y1, y2);
    fill_rect(left, top, right, std::min(top + t, bottom), colour);
    fill_rect(left, std::max(bottom - t, top), right, bottom, colour);
    fill_rect(left, top, std::min(left + t, right), bottom, colour);
    fill_rect(std::max(right - t, left), top, right, bottom, colour);
  }

  /// A straight line from (x0, y0) to (x1, y1) (Bresenham), `thickness` pixels wide.
  void draw_line(double x0, double y0, double x1, double y1, rgb colour, int thickness = 1) {
    int x = round(x0), y = round(y0);
    const int x_end = round(x1), y_end = round(y1);
    const int dx = std::abs(x_end - x), dy = -std::abs(y_end - y);
    const int step_x = x < x_end ? 1 : -1, step_y = y < y_end ? 1 : -1;
    const int half = std::max(thickness, 1) / 2;
    for (int error = dx + dy;;) {
      fill_rect(x - half, y - half, x - half + std::max(thickness, 1),
                y - half + std::max(thickness, 1), colour);
      if (x == x_end && y == y_end) break;
      const int twice = 2 * error;
      if (twice >= dy) {
        error += dy;
        x += step_x;
      }
      if (twice <= dx) {
        error += dx;
        y += step_y;
      }
    }
  }

  /// ASCII `text` with its top-left corner at (x, y), in stb_easy_font's 7-pixel-high font
  /// magnified `scale` times. Returns the width drawn, in pixels.
  int draw_text(double x, double y, std::string_view text, rgb colour, int scale = 1) {
    std::string copy(text);                       // stb_easy_font takes a mutable char*
    std::vector<float> quads(copy.size() * 270);  // ~270 floats per character at most
    unsigned char no_colour[4] = {255, 255, 255, 255};
    const int count = stb_easy_font_print(0.0f, 0.0f, copy.data(), no_colour, quads.data(),
                                          static_cast<int>(quads.size() * sizeof(float)));
    const double s = std::max(scale, 1);
    // Each quad is 4 vertices of (x, y, z, packed colour): 16 floats; vertices 0 and 2 are
    // opposite corners of an axis-aligned rectangle.
    for (int q = 0; q < count; ++q) {
      const float* v = quads.data() + static_cast<std::size_t>(q) * 16;
      fill_rect(x + s * v[0], y + s * v[1], x + s * v[8], y + s * v[9], colour);
    }
    return static_cast<int>(s * stb_easy_font_width(copy.data()));
  }

  /// Writes the image as a PNG file; false when it cannot be written.
  [[nodiscard]] bool save(const std::string& path) const {
    if (width_ == 0 || height_ == 0) return false;
    return stbi_write_png(path.c_str(), width_, height_, 3, pixels_.data(), width_ * 3) != 0;
  }

 private:
  [[nodiscard]] bool inside(int x, int y) const noexcept {
    return x >= 0 && y >= 0 && x < width_ && y < height_;
  }
  [[nodiscard]] std::size_t offset(int x, int y) const noexcept {
    return (static_cast<std::size_t>(y) * static_cast<std::size_t>(width_) +
            static_cast<std::size_t>(x)) *
           3;
  }
  static int round(double v) noexcept {
    if (!(v > -1e9)) return -1'000'000'000;  // also NaN: far outside, so clipped away
    if (v > 1e9) return 1'000'000'000;
    return static_cast<int>(std::lround(v));
  }

  int width_;
  int height_;
  std::vector<std::uint8_t> pixels_;
};

}  // namespace png
