// cvk — computer-vision kernels, header-only C++20.
// The four box formats side by side: boxes written in xyxy, xywh, cxcywh and yxyx are converted
// to xyxy with cvk::box_convert, measured with cvk::box_area and drawn into box_formats.png
// (in the directory given as the first argument, else the current directory).
// SPDX-License-Identifier: MIT
#include <array>
#include <cstdio>
#include <cvk/cvk.hpp>
#include <string>
#include <vector>

#include "support/png.hpp"

namespace {

struct boxes_in_format {
  cvk::box_format format;
  std::vector<std::array<float, 4>> boxes;  // in `format`
};

/// "(360, 60, 120, 80)"
std::string coordinates(const std::array<float, 4>& box) {
  char text[96];
  std::snprintf(text, sizeof text, "(%g, %g, %g, %g)", static_cast<double>(box[0]),
                static_cast<double>(box[1]), static_cast<double>(box[2]),
                static_cast<double>(box[3]));
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string directory = argc > 1 ? argv[1] : ".";
  const std::string path = directory + "/box_formats.png";

  // One quadrant of the picture per format; the first box of each quadrant is the same
  // 120×80 rectangle, offset by the quadrant's origin, written in that format.
  const std::vector<boxes_in_format> groups = {
      {cvk::box_format::xyxy, {{40, 60, 160, 140}, {190, 90, 280, 200}}},
      {cvk::box_format::xywh, {{360, 60, 120, 80}, {510, 90, 90, 110}}},
      {cvk::box_format::cxcywh, {{100, 340, 120, 80}, {235, 385, 90, 110}}},
      {cvk::box_format::yxyx, {{300, 360, 380, 480}, {330, 510, 440, 600}}},
  };

  png::image picture(640, 480);
  picture.draw_line(320, 0, 320, 480, png::grey);
  picture.draw_line(0, 240, 640, 240, png::grey);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const auto& group = groups[g];
    const auto xyxy = cvk::box_convert(group.boxes, group.format, cvk::box_format::xyxy);
    const auto areas = cvk::box_area(group.boxes, group.format);
    const png::rgb colour = png::palette(g);
    const int quadrant_x = g % 2 == 0 ? 0 : 320;
    const int quadrant_y = g < 2 ? 0 : 240;
    picture.draw_text(quadrant_x + 10, quadrant_y + 10, cvk::to_string(group.format), colour, 3);
    for (std::size_t i = 0; i < group.boxes.size(); ++i) {
      const auto& in = group.boxes[i];
      std::printf("%-6s (%g, %g, %g, %g) -> xyxy (%g, %g, %g, %g), area %g\n",
                  cvk::to_string(group.format), in[0], in[1], in[2], in[3], xyxy(i, 0), xyxy(i, 1),
                  xyxy(i, 2), xyxy(i, 3), areas(i));
      picture.fill_rect(xyxy(i, 0), xyxy(i, 1), xyxy(i, 2), xyxy(i, 3), colour, 0.2);
      picture.draw_rect(xyxy(i, 0), xyxy(i, 1), xyxy(i, 2), xyxy(i, 3), colour, 3);
      // The box as written in its own format, under it; its area, inside it.
      picture.draw_text(xyxy(i, 0), xyxy(i, 3) + 5, coordinates(in), colour);
      char area[48];
      std::snprintf(area, sizeof area, "area %g", static_cast<double>(areas(i)));
      picture.draw_text(xyxy(i, 0) + 6, xyxy(i, 1) + 6, area, png::black);
    }
  }
  if (!picture.save(path)) {
    std::fprintf(stderr, "draw_boxes: cannot write %s\n", path.c_str());
    return 1;
  }
  std::printf("wrote %s\n", path.c_str());
  return 0;
}
