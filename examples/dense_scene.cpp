// cvk — computer-vision kernels, header-only C++20.
// A densely packed shelf (Goldman et al., CVPR 2019: ~150 products per image, heavy overlap)
// through every NMS variant of cvk: greedy, soft (Gaussian), matrix, cluster (weighted), box
// voting, variance voting (He et al., CVPR 2019) and the EM-merger. Each image has 150
// products; a detector's candidates are simulated as jittered copies of each product with a
// score, a predicted per-coordinate variance and a predicted IoU ("Soft-IoU"), plus candidates
// straddling two neighbours (the typical false positive of dense scenes). Prints COCO-style
// AP / AP50 / AP75 (cvk::detection_ap, up to 300 detections per image, as SKU-110K) and the
// time of each variant, and writes dense_scene.png: the candidates and what four variants keep,
// on one corner of the first shelf.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cvk/cvk.hpp>
#include <functional>
#include <string>
#include <vector>

#include "support/png.hpp"

namespace {

using box = std::array<double, 4>;  // xyxy

constexpr int images = 8;
constexpr int columns = 15;  // products per shelf row
constexpr int rows = 10;
constexpr int candidates_per_object = 24;

struct shelf {
  std::vector<box> truth;                        // 150 products
  std::vector<box> boxes;                        // candidates
  std::vector<double> scores;                    // detector confidence
  std::vector<std::array<double, 4>> variances;  // predicted σ² per coordinate
  std::vector<double> soft_iou;                  // predicted IoU with the object
};

double iou(const box& a, const box& b) {
  const double w = std::max(0.0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const double h = std::max(0.0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const double inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

/// Products in a 15 × 10 grid, about 60 × 90 pixels, packed so that neighbours touch or
/// overlap slightly; candidates jittered by ~8% of the size, scores and variances that
/// reflect each candidate's error (as a trained detector's would, with noise).
shelf make_shelf(cvk::rng& gen) {
  shelf s;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < columns; ++c) {
      const double w = 60.0 * std::exp(gen.normal(0.0, 0.08));
      const double h = 90.0 * std::exp(gen.normal(0.0, 0.08));
      const double cx = 40.0 + 58.0 * c + gen.normal(0.0, 2.0);
      const double cy = 55.0 + 88.0 * r + gen.normal(0.0, 2.0);
      s.truth.push_back({cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2});
    }
  }
  const auto add = [&](const box& b, double score, const std::array<double, 4>& error,
                       double soft) {
    s.boxes.push_back(b);
    s.scores.push_back(std::clamp(score, 0.0, 1.0));
    std::array<double, 4> variance{};
    for (int k = 0; k < 4; ++k) {
      const double sigma =
          0.5 + std::abs(error[static_cast<std::size_t>(k)]) * std::exp(gen.normal(0.0, 0.3));
      variance[static_cast<std::size_t>(k)] = sigma * sigma;
    }
    s.variances.push_back(variance);
    s.soft_iou.push_back(std::clamp(soft + gen.normal(0.0, 0.05), 0.0, 1.0));
  };
  for (const box& t : s.truth) {
    const double w = t[2] - t[0];
    const double h = t[3] - t[1];
    for (int k = 0; k < candidates_per_object; ++k) {
      const std::array<double, 4> error = {gen.normal(0.0, 0.08 * w), gen.normal(0.0, 0.08 * h),
                                           gen.normal(0.0, 0.08 * w), gen.normal(0.0, 0.08 * h)};
      const box b = {t[0] + error[0], t[1] + error[1], t[2] + error[2], t[3] + error[3]};
      const double quality = iou(b, t);
      add(b, 0.35 + 0.6 * quality + gen.normal(0.0, 0.08), error, quality);
    }
  }
  // Straddling false positives: a box over the boundary of two horizontal neighbours.
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c + 1 < columns; ++c) {
      if (!gen.bernoulli(0.5)) continue;
      const box& a = s.truth[static_cast<std::size_t>(r * columns + c)];
      const box& b = s.truth[static_cast<std::size_t>(r * columns + c + 1)];
      const box straddle = {(a[0] + a[2]) / 2, std::min(a[1], b[1]), (b[0] + b[2]) / 2,
                            std::max(a[3], b[3])};
      const double w = straddle[2] - straddle[0];
      add(straddle, 0.55 + 0.4 * gen.uniform(0.0, 1.0), {0.5 * w, 0.05 * w, 0.5 * w, 0.05 * w},
          std::max(iou(straddle, a), iou(straddle, b)));
    }
  }
  return s;
}

struct detections {
  std::vector<box> boxes;
  std::vector<double> scores;
};

struct method {
  std::string name;
  std::function<detections(const shelf&)> run;
};

/// Rows `indices` of the shelf's candidates with the given scores.
template <class Indices, class Scores>
detections pick(const shelf& s, const Indices& indices, const Scores& scores) {
  detections d;
  for (std::size_t k = 0; k < static_cast<std::size_t>(indices.size()); ++k) {
    d.boxes.push_back(s.boxes[static_cast<std::size_t>(indices(static_cast<cvk::index_t>(k)))]);
    d.scores.push_back(static_cast<double>(scores(static_cast<cvk::index_t>(k))));
  }
  return d;
}

template <class Boxes, class Scores>
detections take(const Boxes& boxes, const Scores& scores) {
  detections d;
  for (cvk::index_t k = 0; k < scores.size(); ++k) {
    d.boxes.push_back({static_cast<double>(boxes(k, 0)), static_cast<double>(boxes(k, 1)),
                       static_cast<double>(boxes(k, 2)), static_cast<double>(boxes(k, 3))});
    d.scores.push_back(static_cast<double>(scores(k)));
  }
  return d;
}

std::vector<method> methods() {
  return {
      {"candidates (no NMS)",
       [](const shelf& s) {
         return detections{s.boxes, s.scores};
       }},
      {"greedy nms 0.5",
       [](const shelf& s) {
         const auto keep = cvk::nms(s.boxes, s.scores, 0.5);
         detections d;
         for (const cvk::index_t i : keep) {
           d.boxes.push_back(s.boxes[static_cast<std::size_t>(i)]);
           d.scores.push_back(s.scores[static_cast<std::size_t>(i)]);
         }
         return d;
       }},
      {"soft_nms gaussian",
       [](const shelf& s) {
         const auto r = cvk::soft_nms(s.boxes, s.scores, 0.5,
                                      {.method = cvk::soft_nms_method::gaussian, .sigma = 0.5});
         return pick(s, r.indices, r.scores);
       }},
      {"matrix_nms gaussian",
       [](const shelf& s) {
         const auto r = cvk::matrix_nms(
             s.boxes, s.scores, {.post_threshold = 0.05, .decay = cvk::matrix_nms_decay::gaussian});
         return pick(s, r.indices, r.scores);
       }},
      {"cluster_nms weighted",
       [](const shelf& s) {
         const auto r = cvk::cluster_nms(s.boxes, s.scores, 0.5, {.weighted = true});
         return take(r.boxes, r.scores);
       }},
      {"nms + box_voting 0.8",
       [](const shelf& s) {
         const auto keep = cvk::nms(s.boxes, s.scores, 0.5);
         std::vector<box> kept_boxes;
         std::vector<double> kept_scores;
         for (const cvk::index_t i : keep) {
           kept_boxes.push_back(s.boxes[static_cast<std::size_t>(i)]);
           kept_scores.push_back(s.scores[static_cast<std::size_t>(i)]);
         }
         const auto r = cvk::box_voting(kept_boxes, kept_scores, s.boxes, s.scores);
         return take(r.boxes, r.scores);
       }},
      {"var_voting",
       [](const shelf& s) {
         const auto r = cvk::var_voting(s.boxes, s.scores, s.variances);
         return take(r.boxes, r.scores);
       }},
      {"em_merge (soft-IoU)",
       [](const shelf& s) {
         // heat_threshold 0.1 instead of the reference's 4.5/255: with ~24 candidates per
         // product the reference threshold joins neighbours into one region (docs/nms.md).
         const auto r = cvk::em_merge(s.boxes, s.scores, s.soft_iou, {.heat_threshold = 0.1});
         return take(r.boxes, r.scores);
       }},
  };
}

void draw_panel(png::image& picture, int ox, int oy, int size, const shelf& s, const detections& d,
                const std::string& title, bool thin) {
  // the top-left 5 × 3 products of the shelf, scaled ×1.6
  const double scale = 1.6;
  const auto in_crop = [&](const box& b) { return b[0] < 300 && b[1] < 270; };
  const auto draw = [&](const box& b, png::rgb colour, int thickness, double alpha) {
    if (!in_crop(b)) return;
    const double x1 = ox + scale * b[0], y1 = oy + 30 + scale * b[1];
    const double x2 = std::min<double>(ox + size, ox + scale * b[2]);
    const double y2 = std::min<double>(oy + size, oy + 30 + scale * b[3]);
    if (alpha < 1.0) {
      picture.fill_rect(x1, y1, x2, y2, colour, alpha);
    } else {
      picture.draw_rect(x1, y1, x2, y2, colour, thickness);
    }
  };
  for (const box& t : s.truth) draw(t, png::rgb{200, 200, 200}, 3, 1.0);
  for (std::size_t k = 0; k < d.boxes.size(); ++k) {
    if (thin) {
      draw(d.boxes[k], png::rgb{31, 119, 180}, 1, 0.04);
    } else {
      draw(d.boxes[k], d.scores[k] > 0.3 ? png::rgb{214, 39, 40} : png::rgb{255, 170, 150}, 2, 1.0);
    }
  }
  picture.draw_text(ox + 8, oy + 6, title, png::black, 2);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string directory = argc > 1 ? argv[1] : ".";
  cvk::rng gen(110, 2019);  // SKU-110K, CVPR 2019
  std::vector<shelf> shelves;
  for (int i = 0; i < images; ++i) shelves.push_back(make_shelf(gen));
  std::printf("dense scene: %d shelves x %d products, %zu candidates per shelf\n\n", images,
              rows * columns, shelves[0].boxes.size());

  // ground truth for detection_ap: one class, image ids 0..images-1
  std::vector<box> gt_boxes;
  std::vector<int> gt_images;
  for (int i = 0; i < images; ++i) {
    for (const box& t : shelves[static_cast<std::size_t>(i)].truth) {
      gt_boxes.push_back(t);
      gt_images.push_back(i);
    }
  }
  const std::vector<int> gt_classes(gt_boxes.size(), 0);
  cvk::detection_ap_options ap_options;
  ap_options.max_detections = {1, 10, 300};

  std::printf("%-22s %7s %7s %7s %9s %10s\n", "method", "AP", "AP50", "AP75", "kept/img", "ms/img");
  std::vector<detections> first_image;
  for (const method& m : methods()) {
    std::vector<box> det_boxes;
    std::vector<double> det_scores;
    std::vector<int> det_images;
    double milliseconds = 0.0;
    for (int i = 0; i < images; ++i) {
      const auto start = std::chrono::steady_clock::now();
      const detections d = m.run(shelves[static_cast<std::size_t>(i)]);
      milliseconds +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      if (i == 0) first_image.push_back(d);
      det_boxes.insert(det_boxes.end(), d.boxes.begin(), d.boxes.end());
      det_scores.insert(det_scores.end(), d.scores.begin(), d.scores.end());
      det_images.insert(det_images.end(), d.boxes.size(), i);
    }
    const std::vector<int> det_classes(det_boxes.size(), 0);
    const auto ap = cvk::detection_ap(det_boxes, det_scores, det_classes, det_images, gt_boxes,
                                      gt_classes, gt_images, ap_options);
    std::printf("%-22s %7.3f %7.3f %7.3f %9.1f %10.2f\n", m.name.c_str(), ap.ap, ap.ap50, ap.ap75,
                static_cast<double>(det_boxes.size()) / images, milliseconds / images);
  }
  std::printf(
      "\n(AP over IoU .50:.95, 101-point interpolation, up to 300 detections per image;\n"
      " timings are wall-clock of one call per image, one thread, this build's flags)\n");

  // Panels: candidates, greedy, var voting, EM-merger (methods 0, 1, 6, 7).
  constexpr int panel = 480;
  png::image picture(4 * panel, panel);
  const std::array<std::size_t, 4> shown = {0, 1, 6, 7};
  const std::array<const char*, 4> titles = {"candidates", "greedy NMS", "var voting", "EM-merger"};
  for (std::size_t p = 0; p < shown.size(); ++p) {
    draw_panel(picture, static_cast<int>(p) * panel, 0, panel, shelves[0], first_image[shown[p]],
               titles[p], p == 0);
    const double x = static_cast<double>(p) * panel;
    if (p > 0) picture.draw_line(x, 0, x, panel, png::grey, 1);
  }
  const std::string path = directory + "/dense_scene.png";
  if (!picture.save(path)) {
    std::fprintf(stderr, "could not write %s\n", path.c_str());
    return 1;
  }
  std::printf("wrote %s\n", path.c_str());
  return 0;
}
