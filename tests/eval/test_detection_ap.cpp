// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/eval/detection_ap.hpp: against fixtures from a numpy re-implementation of
// pycocotools' COCOeval (tests/gen_detection_ap_fixtures.py), against pycocotools' data flow
// written plainly below (dictionaries per image and class, concatenate, stable sort, summarize)
// on random scenes, on hand-computed cases, on every input type and layout, and the errors.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <cvk/core.hpp>
#include <cvk/eval/detection_ap.hpp>

#include "support/error_inputs.hpp"
#include "support/fixtures.hpp"
#include "support/layouts.hpp"

namespace {

using cvk::index_t;
template <class T>
using boxes_t = std::vector<std::array<T, 4>>;

constexpr double eps = std::numeric_limits<double>::epsilon();  // np.spacing(1)
/// pycocotools' precision after a single true positive: 1 / (1 + 2^-52) = 1 - 2^-52.
const double one_tp = 1.0 / (1.0 + eps);

/// Hand-computed values agree up to the rounding of the means (101 recall points, T, C).
bool near(double got, double want) {
  const bool ok = std::fabs(got - want) <= 1e-14;
  if (!ok) UNSCOPED_INFO("got " << got << ", want " << want);
  return ok;
}

/// A flat scene: detections and ground truths of several images and classes.
template <class T = double>
struct scene {
  boxes_t<T> det_boxes;
  std::vector<T> det_scores;
  std::vector<int> det_classes;
  std::vector<int> det_images;
  boxes_t<T> gt_boxes;
  std::vector<int> gt_classes;
  std::vector<int> gt_images;
  std::vector<int> gt_crowd;

  void det(std::array<T, 4> box, T score, int cls = 1, int image = 0) {
    det_boxes.push_back(box);
    det_scores.push_back(score);
    det_classes.push_back(cls);
    det_images.push_back(image);
  }
  void gt(std::array<T, 4> box, int cls = 1, int image = 0, int crowd = 0) {
    gt_boxes.push_back(box);
    gt_classes.push_back(cls);
    gt_images.push_back(image);
    gt_crowd.push_back(crowd);
  }
  [[nodiscard]] cvk::detection_ap_result run(const cvk::detection_ap_options& options = {}) const {
    return cvk::detection_ap(det_boxes, det_scores, det_classes, det_images, gt_boxes, gt_classes,
                             gt_images, gt_crowd, options);
  }
};

// ---------------------------------------------------------------------------------------------
// The reference: pycocotools' COCOeval ('bbox') data flow written plainly — evaluateImg per
// (image, class, area range) into dictionaries, accumulate by concatenating the images and a
// stable sort on -score, summarize as the mean of the valid entries of the T×R×K slices.
struct reference_result {
  std::array<double, 12> stats{};
  std::vector<std::int64_t> classes;
  std::vector<std::vector<double>> ap;  // C×T
  std::vector<std::vector<double>> ar;  // C×T
};

struct ref_box {
  double x, y, w, h;
};

ref_box ref_xywh(const std::array<double, 4>& b, cvk::box_format format) {
  switch (format) {
    case cvk::box_format::xyxy:
      return {b[0], b[1], b[2] - b[0], b[3] - b[1]};
    case cvk::box_format::xywh:
      return {b[0], b[1], b[2], b[3]};
    case cvk::box_format::cxcywh:
      return {b[0] - b[2] / 2, b[1] - b[3] / 2, b[2], b[3]};
    case cvk::box_format::yxyx:
      return {b[1], b[0], b[3] - b[1], b[2] - b[0]};
  }
  return {};
}

CVK_KERNEL_BEGIN
double ref_iou(const ref_box& d, const ref_box& g, bool crowd) {
  // maskApi.c bbIou
  const double da = d.w * d.h;
  const double ga = g.w * g.h;
  const double w = std::fmin(d.w + d.x, g.w + g.x) - std::fmax(d.x, g.x);
  if (w <= 0) return 0;
  const double h = std::fmin(d.h + d.y, g.h + g.y) - std::fmax(d.y, g.y);
  if (h <= 0) return 0;
  const double i = w * h;
  const double s = da + ga;
  const double u = crowd ? da : s - i;
  return i / u;
}

struct eval_img {
  std::vector<double> scores;                    // D, score order
  std::vector<std::vector<unsigned char>> dtm;   // T×D matched
  std::vector<std::vector<unsigned char>> dtig;  // T×D ignored
  std::vector<unsigned char> gtig;               // G
};

template <class T>
reference_result reference_detection_ap(const scene<T>& s, const cvk::detection_ap_options& o) {
  const std::size_t n_thr = o.iou_thresholds.size();
  std::vector<index_t> max_dets = o.max_detections;
  std::sort(max_dets.begin(), max_dets.end());
  const std::array<std::array<double, 2>, 4> area_rng{
      {{0, 1e10}, {0, 32.0 * 32.0}, {32.0 * 32.0, 96.0 * 96.0}, {96.0 * 96.0, 1e10}}};
  std::vector<double> rec_thrs(101);
  for (std::size_t i = 0; i < 101; ++i) rec_thrs[i] = static_cast<double>(i) * (1.0 / 100.0);
  rec_thrs[100] = 1.0;

  struct ann {
    ref_box box;
    double area;
    double score;
    bool crowd;
  };
  std::map<std::pair<long long, long long>, std::vector<ann>> dts, gts;
  std::set<long long> image_set, class_set;
  const auto widen = [](const std::array<T, 4>& b) {
    return std::array<double, 4>{static_cast<double>(b[0]), static_cast<double>(b[1]),
                                 static_cast<double>(b[2]), static_cast<double>(b[3])};
  };
  for (std::size_t i = 0; i < s.det_boxes.size(); ++i) {
    const ref_box b = ref_xywh(widen(s.det_boxes[i]), o.format);
    dts[{s.det_images[i], s.det_classes[i]}].push_back(
        {b, b.w * b.h, static_cast<double>(s.det_scores[i]), false});
    image_set.insert(s.det_images[i]);
    class_set.insert(s.det_classes[i]);
  }
  for (std::size_t i = 0; i < s.gt_boxes.size(); ++i) {
    const ref_box b = ref_xywh(widen(s.gt_boxes[i]), o.format);
    gts[{s.gt_images[i], s.gt_classes[i]}].push_back(
        {b, b.w * b.h, 0.0, i < s.gt_crowd.size() && s.gt_crowd[i] != 0});
    image_set.insert(s.gt_images[i]);
    class_set.insert(s.gt_classes[i]);
  }
  const std::vector<long long> images(image_set.begin(), image_set.end());
  const std::vector<long long> classes(class_set.begin(), class_set.end());
  const std::size_t n_cls = classes.size();
  const std::size_t n_areas = 4;
  const std::size_t n_max = 3;
  const std::size_t n_rec = 101;
  // precision[t][r][k][a][m], recall[t][k][a][m]
  const auto pidx = [&](std::size_t t, std::size_t r, std::size_t k, std::size_t a, std::size_t m) {
    return (((t * n_rec + r) * n_cls + k) * n_areas + a) * n_max + m;
  };
  const auto ridx = [&](std::size_t t, std::size_t k, std::size_t a, std::size_t m) {
    return ((t * n_cls + k) * n_areas + a) * n_max + m;
  };
  std::vector<double> precision(n_thr * n_rec * n_cls * n_areas * n_max, -1.0);
  std::vector<double> recall(n_thr * n_cls * n_areas * n_max, -1.0);

  for (std::size_t k = 0; k < n_cls; ++k) {
    for (std::size_t a = 0; a < n_areas; ++a) {
      std::vector<eval_img> images_eval;
      for (const long long im : images) {
        const std::pair<long long, long long> key{im, classes[k]};
        std::vector<ann> dt = dts.count(key) != 0 ? dts[key] : std::vector<ann>{};
        std::vector<ann> gt = gts.count(key) != 0 ? gts[key] : std::vector<ann>{};
        if (dt.empty() && gt.empty()) continue;
        std::vector<unsigned char> ig(gt.size());
        for (std::size_t g = 0; g < gt.size(); ++g) {
          ig[g] = gt[g].crowd || gt[g].area < area_rng[a][0] || gt[g].area > area_rng[a][1];
        }
        std::vector<std::size_t> gind(gt.size());
        for (std::size_t g = 0; g < gt.size(); ++g) gind[g] = g;
        std::stable_sort(gind.begin(), gind.end(),
                         [&](std::size_t x, std::size_t y) { return ig[x] < ig[y]; });
        std::stable_sort(dt.begin(), dt.end(),
                         [](const ann& x, const ann& y) { return -x.score < -y.score; });
        if (dt.size() > static_cast<std::size_t>(max_dets.back())) {
          dt.resize(static_cast<std::size_t>(max_dets.back()));
        }
        eval_img e;
        for (const auto& d : dt) e.scores.push_back(d.score);
        for (const std::size_t g : gind) e.gtig.push_back(ig[g]);
        e.dtm.assign(n_thr, std::vector<unsigned char>(dt.size(), 0));
        e.dtig.assign(n_thr, std::vector<unsigned char>(dt.size(), 0));
        for (std::size_t t = 0; t < n_thr && !gt.empty(); ++t) {
          std::vector<unsigned char> gtm(gt.size(), 0);
          for (std::size_t d = 0; d < dt.size(); ++d) {
            double iou = std::min(o.iou_thresholds[t], 1 - 1e-10);
            long m = -1;
            for (std::size_t gi = 0; gi < gt.size(); ++gi) {
              const ann& g = gt[gind[gi]];
              if (gtm[gi] != 0 && !g.crowd) continue;
              if (m > -1 && e.gtig[static_cast<std::size_t>(m)] == 0 && e.gtig[gi] == 1) break;
              const double v = ref_iou(dt[d].box, g.box, g.crowd);
              if (v < iou) continue;
              iou = v;
              m = static_cast<long>(gi);
            }
            if (m == -1) continue;
            e.dtig[t][d] = e.gtig[static_cast<std::size_t>(m)];
            e.dtm[t][d] = 1;
            gtm[static_cast<std::size_t>(m)] = 1;
          }
        }
        for (std::size_t t = 0; t < n_thr; ++t) {
          for (std::size_t d = 0; d < dt.size(); ++d) {
            const bool outside = dt[d].area < area_rng[a][0] || dt[d].area > area_rng[a][1];
            if (e.dtm[t][d] == 0 && outside) e.dtig[t][d] = 1;
          }
        }
        images_eval.push_back(std::move(e));
      }
      if (images_eval.empty()) continue;
      for (std::size_t m = 0; m < n_max; ++m) {
        const auto md = static_cast<std::size_t>(max_dets[m]);
        std::vector<double> sc;
        std::vector<std::vector<unsigned char>> dtm(n_thr), dtig(n_thr);
        std::size_t npig = 0;
        for (const auto& e : images_eval) {
          const std::size_t n = std::min(md, e.scores.size());
          sc.insert(sc.end(), e.scores.begin(), e.scores.begin() + static_cast<long>(n));
          for (std::size_t t = 0; t < n_thr; ++t) {
            dtm[t].insert(dtm[t].end(), e.dtm[t].begin(), e.dtm[t].begin() + static_cast<long>(n));
            dtig[t].insert(dtig[t].end(), e.dtig[t].begin(),
                           e.dtig[t].begin() + static_cast<long>(n));
          }
          for (const auto g : e.gtig) npig += g == 0 ? 1 : 0;
        }
        if (npig == 0) continue;
        std::vector<std::size_t> inds(sc.size());
        for (std::size_t i = 0; i < inds.size(); ++i) inds[i] = i;
        std::stable_sort(inds.begin(), inds.end(),
                         [&](std::size_t x, std::size_t y) { return -sc[x] < -sc[y]; });
        for (std::size_t t = 0; t < n_thr; ++t) {
          const std::size_t nd = inds.size();
          std::vector<double> rc(nd), pr(nd);
          double tp = 0, fp = 0;
          for (std::size_t i = 0; i < nd; ++i) {
            const bool is_matched = dtm[t][inds[i]] != 0;
            const bool is_ignored = dtig[t][inds[i]] != 0;
            tp += (is_matched && !is_ignored) ? 1 : 0;
            fp += (!is_matched && !is_ignored) ? 1 : 0;
            rc[i] = tp / static_cast<double>(npig);
            const double sum = fp + tp;
            pr[i] = tp / (sum + eps);
          }
          recall[ridx(t, k, a, m)] = nd != 0 ? rc[nd - 1] : 0;
          for (std::size_t i = nd - 1; nd != 0 && i > 0; --i) {
            if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
          }
          for (std::size_t r = 0; r < n_rec; ++r) {
            const auto pos = static_cast<std::size_t>(
                std::lower_bound(rc.begin(), rc.end(), rec_thrs[r]) - rc.begin());
            precision[pidx(t, r, k, a, m)] = pos < nd ? pr[pos] : 0.0;
          }
        }
      }
    }
  }
  const auto summarize = [&](bool ap, double iou_thr, std::size_t a, std::size_t m) {
    double sum = 0;
    std::size_t count = 0;
    for (std::size_t t = 0; t < n_thr; ++t) {
      if (!std::isnan(iou_thr) && !(o.iou_thresholds[t] == iou_thr)) continue;
      for (std::size_t k = 0; k < n_cls; ++k) {
        if (ap) {
          for (std::size_t r = 0; r < n_rec; ++r) {
            const double v = precision[pidx(t, r, k, a, m)];
            if (v > -1) {
              sum += v;
              ++count;
            }
          }
        } else {
          const double v = recall[ridx(t, k, a, m)];
          if (v > -1) {
            sum += v;
            ++count;
          }
        }
      }
    }
    return count == 0 ? -1.0 : sum / static_cast<double>(count);
  };
  const double all = std::nan("");
  reference_result out;
  out.stats = {
      summarize(true, all, 0, 2),  summarize(true, 0.5, 0, 2),  summarize(true, 0.75, 0, 2),
      summarize(true, all, 1, 2),  summarize(true, all, 2, 2),  summarize(true, all, 3, 2),
      summarize(false, all, 0, 0), summarize(false, all, 0, 1), summarize(false, all, 0, 2),
      summarize(false, all, 1, 2), summarize(false, all, 2, 2), summarize(false, all, 3, 2)};
  for (std::size_t k = 0; k < n_cls; ++k) {
    out.classes.push_back(classes[k]);
    std::vector<double> ap_row(n_thr), ar_row(n_thr);
    for (std::size_t t = 0; t < n_thr; ++t) {
      double sum = 0;
      for (std::size_t r = 0; r < n_rec; ++r) sum += precision[pidx(t, r, k, 0, 2)];
      ap_row[t] = precision[pidx(t, 0, k, 0, 2)] > -1 ? sum / static_cast<double>(n_rec) : -1.0;
      ar_row[t] = recall[ridx(t, k, 0, 2)];
    }
    out.ap.push_back(ap_row);
    out.ar.push_back(ar_row);
  }
  return out;
}
CVK_KERNEL_END

/// Checks a result against expected values within `tolerance` (-1 and NaN matched exactly).
void check_close(double got, double want, double tolerance, const std::string& what) {
  INFO(what << ": got " << got << ", want " << want);
  if (std::isnan(want)) {
    CHECK(std::isnan(got));
  } else {
    CHECK(std::fabs(got - want) <= tolerance);
  }
}

void check_result(const cvk::detection_ap_result& got, const reference_result& want,
                  double tolerance = 1e-12) {
  const auto stats = got.stats();
  for (std::size_t i = 0; i < 12; ++i) {
    check_close(stats[i], want.stats[i], tolerance, "stats[" + std::to_string(i) + "]");
  }
  REQUIRE(got.classes == want.classes);
  const auto n_rows = static_cast<index_t>(want.classes.size());
  REQUIRE(got.ap_per_class_and_threshold.extent(0) == n_rows);
  REQUIRE(got.ar_per_class_and_threshold.extent(0) == n_rows);
  for (index_t k = 0; k < n_rows; ++k) {
    const auto& ap_row = want.ap[static_cast<std::size_t>(k)];
    const auto& ar_row = want.ar[static_cast<std::size_t>(k)];
    REQUIRE(got.ap_per_class_and_threshold.extent(1) == static_cast<index_t>(ap_row.size()));
    for (std::size_t t = 0; t < ap_row.size(); ++t) {
      const auto j = static_cast<index_t>(t);
      check_close(got.ap_per_class_and_threshold(k, j), ap_row[t], tolerance,
                  "ap class " + std::to_string(k) + " threshold " + std::to_string(t));
      check_close(got.ar_per_class_and_threshold(k, j), ar_row[t], tolerance,
                  "ar class " + std::to_string(k) + " threshold " + std::to_string(t));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Random scenes: objects over every area range, jittered detections, duplicates, wrong
// classes, false positives, crowds, score ties, images without detections or without ground
// truth, and some images with more detections than the largest max_detections.
template <class T>
scene<T> random_scene(cvk::rng& gen, std::size_t images, std::size_t classes, bool ties) {
  scene<T> s;
  const auto score = [&]() {
    return ties ? static_cast<T>(static_cast<double>(gen.below(8)) / 8.0)
                : static_cast<T>(gen.uniform());
  };
  for (std::size_t n = 0; n < images; ++n) {
    const int image = static_cast<int>(gen.below(1000)) - 100;
    const auto objects = gen.below(9);
    const bool no_dets = gen.bernoulli(0.1);
    for (std::uint64_t o = 0; o < objects; ++o) {
      const double w = std::pow(10.0, gen.uniform(0.5, 2.5));
      const double h = std::pow(10.0, gen.uniform(0.5, 2.5));
      const double x = gen.uniform(0.0, 600.0);
      const double y = gen.uniform(0.0, 600.0);
      const int cls = static_cast<int>(gen.below(classes));
      const std::array<T, 4> box{static_cast<T>(x), static_cast<T>(y), static_cast<T>(x + w),
                                 static_cast<T>(y + h)};
      s.gt(box, cls, image, gen.bernoulli(0.07) ? 1 : 0);
      if (no_dets) continue;
      const auto copies = gen.below(4);
      for (std::uint64_t c = 0; c < copies; ++c) {
        const double j = 0.15 * gen.uniform();
        const std::array<T, 4> jittered{static_cast<T>(x + j * w * (gen.uniform() - 0.5)),
                                        static_cast<T>(y + j * h * (gen.uniform() - 0.5)),
                                        static_cast<T>(x + w + j * w * (gen.uniform() - 0.5)),
                                        static_cast<T>(y + h + j * h * (gen.uniform() - 0.5))};
        const int dcls = gen.bernoulli(0.1) ? static_cast<int>(gen.below(classes + 1)) : cls;
        const T sc = score();
        s.det(jittered, sc, dcls, image);
      }
    }
    if (no_dets) continue;
    const auto extra = gen.bernoulli(0.1) ? 40 + gen.below(30) : gen.below(5);
    for (std::uint64_t e = 0; e < extra; ++e) {
      const double x = gen.uniform(0.0, 600.0);
      const double y = gen.uniform(0.0, 600.0);
      const double w = std::pow(10.0, gen.uniform(0.5, 2.5));
      const T sc = score();
      const int cls = static_cast<int>(gen.below(classes));
      s.det({static_cast<T>(x), static_cast<T>(y), static_cast<T>(x + w), static_cast<T>(y + w)},
            sc, cls, image);
    }
  }
  // shuffle the detections: input order matters only between equal scores
  for (std::size_t i = s.det_boxes.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(gen.below(i));
    std::swap(s.det_boxes[i - 1], s.det_boxes[j]);
    std::swap(s.det_scores[i - 1], s.det_scores[j]);
    std::swap(s.det_classes[i - 1], s.det_classes[j]);
    std::swap(s.det_images[i - 1], s.det_images[j]);
  }
  return s;
}

/// A fixture scene read back.
struct fixture_scene {
  scene<double> s;
  cvk::detection_ap_options options;
  reference_result expected;
};

fixture_scene load_fixture_scene(const cvk_test::fixture_file& file, const std::string& name) {
  const auto t = [&](const std::string& table) -> const cvk_test::fixture_table& {
    return file.table(name + "/" + table);
  };
  fixture_scene f;
  f.s.det_boxes = t("det_boxes").rows_of<double, 4>();
  f.s.det_scores = t("det_scores").values<double>();
  f.s.det_classes = t("det_classes").values<int>();
  f.s.det_images = t("det_images").values<int>();
  f.s.gt_boxes = t("gt_boxes").rows_of<double, 4>();
  f.s.gt_classes = t("gt_classes").values<int>();
  f.s.gt_images = t("gt_images").values<int>();
  f.s.gt_crowd = t("gt_iscrowd").values<int>();
  f.options.iou_thresholds = t("iou_thresholds").values<double>();
  f.options.max_detections.clear();
  for (const auto m : t("max_detections").values<long long>()) {
    f.options.max_detections.push_back(static_cast<index_t>(m));
  }
  const auto stats = t("stats").values<double>();
  REQUIRE(stats.size() == 12);
  std::copy(stats.begin(), stats.end(), f.expected.stats.begin());
  for (const auto c : t("classes").values<long long>()) f.expected.classes.push_back(c);
  const auto& ap = t("ap_per_class_and_threshold");
  const auto& ar = t("ar_per_class_and_threshold");
  const auto ap_values = ap.values<double>();
  const auto ar_values = ar.values<double>();
  for (std::size_t k = 0; k < ap.rows; ++k) {
    f.expected.ap.emplace_back(ap_values.begin() + static_cast<long>(k * ap.cols),
                               ap_values.begin() + static_cast<long>((k + 1) * ap.cols));
    f.expected.ar.emplace_back(ar_values.begin() + static_cast<long>(k * ar.cols),
                               ar_values.begin() + static_cast<long>((k + 1) * ar.cols));
  }
  return f;
}

std::vector<std::string> fixture_scene_names(const cvk_test::fixture_file& file) {
  std::vector<std::string> names;
  std::string word;
  for (const char ch : file.meta("scenes") + " ") {
    if (ch == ' ') {
      if (!word.empty()) names.push_back(word);
      word.clear();
    } else {
      word += ch;
    }
  }
  return names;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Fixtures

TEST_CASE("detection_ap: COCOeval constants equal numpy's linspace bit for bit", "[detection_ap]") {
  const cvk_test::fixture_file file(cvk_test::test_data_path("detection_ap_coco.txt"));
  const auto recall = file.table("recall_thresholds").values<double>();
  const auto ours = cvk::detail::coco_recall_thresholds();
  REQUIRE(recall.size() == ours.size());
  for (std::size_t i = 0; i < ours.size(); ++i) CHECK(ours[i] == recall[i]);
  const auto iou = file.table("coco_iou_thresholds").values<double>();
  CHECK(cvk::detection_ap_options{}.iou_thresholds == iou);
  // and linspace's own formula: i·((.95 - .5)/9) + .5
  const double step = (0.95 - 0.5) / 9.0;
  for (std::size_t i = 0; i + 1 < iou.size(); ++i) {
    const double product = static_cast<double>(i) * step;
    CHECK(product + 0.5 == iou[i]);
  }
  CHECK(iou[5] == 0.75);
}

TEST_CASE("detection_ap: equals COCOeval on the fixture scenes", "[detection_ap]") {
  const cvk_test::fixture_file file(cvk_test::test_data_path("detection_ap_coco.txt"));
  const auto names = fixture_scene_names(file);
  REQUIRE(names.size() == 3);
  for (const auto& name : names) {
    INFO("scene " << name);
    const fixture_scene f = load_fixture_scene(file, name);
    const auto got = f.s.run(f.options);
    check_result(got, f.expected);
    // the C++ reference agrees with the numpy one
    check_result(got, reference_detection_ap(f.s, f.options));
    // one thread gives the same numbers
    cvk::detection_ap_options one = f.options;
    one.threads = 1;
    const auto single = f.s.run(one);
    CHECK(single.stats() == got.stats());
    CHECK(single.ap_per_class_and_threshold == got.ap_per_class_and_threshold);
    // without area ranges: the same overall numbers, NaN for the sized ones
    cvk::detection_ap_options no_areas = f.options;
    no_areas.area_ranges = false;
    const auto plain = f.s.run(no_areas);
    const auto a = plain.stats();
    const auto b = got.stats();
    for (const std::size_t i : {0u, 1u, 2u, 6u, 7u, 8u}) CHECK(a[i] == b[i]);
    for (const std::size_t i : {3u, 4u, 5u, 9u, 10u, 11u}) CHECK(std::isnan(a[i]));
    CHECK(plain.ap_per_class_and_threshold == got.ap_per_class_and_threshold);
  }
}

TEST_CASE("detection_ap: fixture scenes in xywh and in strided layouts", "[detection_ap]") {
  const cvk_test::fixture_file file(cvk_test::test_data_path("detection_ap_coco.txt"));
  const fixture_scene f = load_fixture_scene(file, "mixed");
  const auto expected = f.s.run(f.options);
  check_result(expected, f.expected);
  // xywh rows (w = x2 - x1 in double, as the generator converts)
  const auto to_xywh = [](const boxes_t<double>& boxes) {
    boxes_t<double> out;
    for (const auto& b : boxes) out.push_back({b[0], b[1], b[2] - b[0], b[3] - b[1]});
    return out;
  };
  cvk::detection_ap_options xywh = f.options;
  xywh.format = cvk::box_format::xywh;
  const auto got =
      cvk::detection_ap(to_xywh(f.s.det_boxes), f.s.det_scores, f.s.det_classes, f.s.det_images,
                        to_xywh(f.s.gt_boxes), f.s.gt_classes, f.s.gt_images, f.s.gt_crowd, xywh);
  CHECK(got.stats() == expected.stats());
  CHECK(got.ap_per_class_and_threshold == expected.ap_per_class_and_threshold);
  for (const auto l : cvk_test::all_layouts) {
    INFO(cvk_test::to_string(l));
    const auto db = cvk_test::with_layout(f.s.det_boxes, l, std::nan(""));
    const auto gb = cvk_test::with_layout(f.s.gt_boxes, l, std::nan(""));
    const auto r =
        cvk::detection_ap(db.view, f.s.det_scores, f.s.det_classes, f.s.det_images, gb.view,
                          f.s.gt_classes, f.s.gt_images, f.s.gt_crowd, f.options);
    CHECK(r.stats() == expected.stats());
    CHECK(r.ar_per_class_and_threshold == expected.ar_per_class_and_threshold);
  }
}

// ---------------------------------------------------------------------------------------------
// Random scenes against the plain reference

TEMPLATE_TEST_CASE("detection_ap: equals the plain COCOeval data flow on random scenes",
                   "[detection_ap]", float, double) {
  cvk::rng gen(811);
  for (int round = 0; round < 40; ++round) {
    INFO("round " << round);
    const bool ties = round % 2 == 0;
    const std::size_t images = 1 + gen.below(12);
    const std::size_t classes = 1 + gen.below(4);
    const auto s = random_scene<TestType>(gen, images, classes, ties);
    cvk::detection_ap_options o;
    if (round % 5 == 3) o.max_detections = {3, 1, 7};
    if (round % 7 == 2) o.iou_thresholds = {0.0, 0.3, 0.5, 0.75, 1.0};
    check_result(s.run(o), reference_detection_ap(s, o));
  }
}

TEST_CASE("detection_ap: integer boxes, small id types and other containers", "[detection_ap]") {
  cvk::rng gen(4242);
  const auto s = random_scene<double>(gen, 10, 3, true);
  const auto expected = s.run();
  // integer-valued boxes as int (computed in double): compare with the same boxes as double
  scene<double> rounded = s;
  boxes_t<int> int_det, int_gt;
  for (auto& b : rounded.det_boxes) {
    for (auto& v : b) v = std::round(v);
    int_det.push_back({static_cast<int>(b[0]), static_cast<int>(b[1]), static_cast<int>(b[2]),
                       static_cast<int>(b[3])});
  }
  for (auto& b : rounded.gt_boxes) {
    for (auto& v : b) v = std::round(v);
    int_gt.push_back({static_cast<int>(b[0]), static_cast<int>(b[1]), static_cast<int>(b[2]),
                      static_cast<int>(b[3])});
  }
  const auto want = rounded.run();
  std::vector<std::uint8_t> det_classes(s.det_classes.begin(), s.det_classes.end());
  std::vector<std::int64_t> det_images(s.det_images.begin(), s.det_images.end());
  std::vector<short> gt_classes(s.gt_classes.begin(), s.gt_classes.end());
  std::vector<long long> gt_images(s.gt_images.begin(), s.gt_images.end());
  std::vector<std::uint8_t> crowd(s.gt_crowd.begin(), s.gt_crowd.end());
  const auto got = cvk::detection_ap(int_det, rounded.det_scores, det_classes, det_images, int_gt,
                                     gt_classes, gt_images, crowd);
  CHECK(got.stats() == want.stats());
  CHECK(got.classes == want.classes);
  // cvk::tensor inputs and a bool crowd flag array through std::span
  cvk::tensor<double, 2> det_tensor(static_cast<index_t>(s.det_boxes.size()), index_t{4});
  for (std::size_t i = 0; i < s.det_boxes.size(); ++i) {
    for (std::size_t k = 0; k < 4; ++k) {
      det_tensor(static_cast<index_t>(i), static_cast<index_t>(k)) = s.det_boxes[i][k];
    }
  }
  const std::unique_ptr<bool[]> flags(new bool[s.gt_crowd.size() + 1]);
  for (std::size_t i = 0; i < s.gt_crowd.size(); ++i) flags[i] = s.gt_crowd[i] != 0;
  const std::span<const bool> crowd_span(flags.get(), s.gt_crowd.size());
  const auto from_tensor = cvk::detection_ap(det_tensor, s.det_scores, s.det_classes, s.det_images,
                                             s.gt_boxes, s.gt_classes, s.gt_images, crowd_span);
  CHECK(from_tensor.stats() == expected.stats());
  // scores with stride 2, walked backwards
  std::vector<double> spread(2 * s.det_scores.size(), -5.0);
  const std::size_t n = s.det_scores.size();
  for (std::size_t i = 0; i < n; ++i) spread[2 * (n - 1 - i)] = s.det_scores[i];
  const auto backwards =
      cvk::view(spread.data() + 2 * (n - 1), {static_cast<index_t>(n)}, {index_t{-2}});
  const auto from_view = cvk::detection_ap(s.det_boxes, backwards, s.det_classes, s.det_images,
                                           s.gt_boxes, s.gt_classes, s.gt_images, s.gt_crowd);
  CHECK(from_view.stats() == expected.stats());
}

TEST_CASE("detection_ap: every box format gives the same result", "[detection_ap]") {
  // dyadic coordinates: every conversion is exact
  cvk::rng gen(77);
  scene<double> s;
  for (int i = 0; i < 60; ++i) {
    const auto x = static_cast<double>(gen.below(400));
    const auto y = static_cast<double>(gen.below(400));
    const double w = 2.0 * static_cast<double>(1 + gen.below(100));
    const double h = 2.0 * static_cast<double>(1 + gen.below(100));
    const int cls = static_cast<int>(gen.below(2));
    const int image = static_cast<int>(gen.below(5));
    s.gt({x, y, x + w, y + h}, cls, image);
    const double dx = static_cast<double>(gen.below(9)) - 4.0;
    s.det({x + dx, y, x + w, y + h - 2 * dx}, static_cast<double>(gen.below(16)) / 16.0,
          s.gt_classes.back(), s.gt_images.back());
  }
  const auto expected = s.run();
  for (const auto format :
       {cvk::box_format::xywh, cvk::box_format::cxcywh, cvk::box_format::yxyx}) {
    INFO(cvk::to_string(format));
    const auto convert = [format](const boxes_t<double>& boxes) {
      boxes_t<double> out;
      for (const auto& b : boxes) {
        const double w = b[2] - b[0];
        const double h = b[3] - b[1];
        switch (format) {
          case cvk::box_format::xywh:
            out.push_back({b[0], b[1], w, h});
            break;
          case cvk::box_format::cxcywh:
            out.push_back({b[0] + w / 2, b[1] + h / 2, w, h});
            break;
          default:
            out.push_back({b[1], b[0], b[3], b[2]});
            break;
        }
      }
      return out;
    };
    cvk::detection_ap_options o;
    o.format = format;
    const auto got =
        cvk::detection_ap(convert(s.det_boxes), s.det_scores, s.det_classes, s.det_images,
                          convert(s.gt_boxes), s.gt_classes, s.gt_images, s.gt_crowd, o);
    CHECK(got.stats() == expected.stats());
    CHECK(got.ap_per_class_and_threshold == expected.ap_per_class_and_threshold);
  }
}

// ---------------------------------------------------------------------------------------------
// Hand-computed cases (1 image, 1 class unless said otherwise)

TEST_CASE("detection_ap: perfect detections", "[detection_ap]") {
  scene<double> s;
  s.gt({0, 0, 10, 10});
  s.gt({20, 20, 60, 60});
  s.gt({100, 100, 300, 300});
  s.det({100, 100, 300, 300}, 0.7);
  s.det({0, 0, 10, 10}, 0.9);
  s.det({20, 20, 60, 60}, 0.8);
  const auto r = s.run();
  // precision 1/(1 + 2^-52), then 2/(2 + 2^-52) = 1: the envelope is 1 everywhere
  CHECK(r.ap == 1.0);
  CHECK(r.ap50 == 1.0);
  CHECK(r.ap75 == 1.0);
  CHECK(r.ar10 == 1.0);
  CHECK(r.ar100 == 1.0);
  CHECK(near(r.ar1, 1.0 / 3.0));  // one detection per image: the top-scored one
  // one object per area range: a single true positive has precision 1 - 2^-52 (pycocotools'
  // tp / (tp + fp + np.spacing(1)))
  CHECK(near(r.ap_small, one_tp));
  CHECK(near(r.ap_medium, one_tp));
  CHECK(near(r.ap_large, one_tp));
  CHECK(r.ar_small == 1.0);
  CHECK(r.ar_medium == 1.0);
  CHECK(r.ar_large == 1.0);
  REQUIRE(r.classes == std::vector<std::int64_t>{1});
  REQUIRE(r.ap_per_class_and_threshold.extent(0) == 1);
  REQUIRE(r.ap_per_class_and_threshold.extent(1) == 10);
  for (index_t t = 0; t < 10; ++t) CHECK(r.ap_per_class_and_threshold(0, t) == 1.0);
  CHECK(r.ap_per_class == std::vector<double>{1.0});
  CHECK(r.iou_thresholds == cvk::detection_ap_options{}.iou_thresholds);
}

TEST_CASE("detection_ap: a false positive ranked above true positives", "[detection_ap]") {
  scene<double> s;
  s.gt({0, 0, 50, 50});
  s.gt({100, 0, 150, 50});
  s.det({0, 0, 50, 50}, 0.9);        // TP: recall 1/2, precision 1/(1 + eps)
  s.det({300, 300, 350, 350}, 0.8);  // FP: recall 1/2, precision 1/2
  s.det({100, 0, 150, 50}, 0.7);     // TP: recall 1, precision 2/3
  const auto r = s.run();
  // envelope: [1 - 2^-52, 2/3, 2/3]; recall thresholds 0, .01, ..., .50 (51 of them) read the
  // first position, .51 ... 1 (50) the third
  const double expected = (51.0 * one_tp + 50.0 * (2.0 / 3.0)) / 101.0;
  CHECK(near(r.ap, expected));
  CHECK(near(r.ap50, expected));
  CHECK(r.ar100 == 1.0);
  CHECK(r.ar1 == 0.5);
  // the false positive first: precision 0, 1/2, 2/3 → envelope 2/3 everywhere
  scene<double> first = s;
  first.det_scores = {0.8, 0.9, 0.7};
  CHECK(near(first.run().ap, 2.0 / 3.0));
  // one object, the false positive above it: precision 1/2 at recall 1
  scene<double> single;
  single.gt({0, 0, 50, 50});
  single.det({200, 200, 250, 250}, 0.9);
  single.det({0, 0, 50, 50}, 0.1);
  CHECK(single.run().ap == 0.5);
}

TEST_CASE("detection_ap: duplicate detections are false positives", "[detection_ap]") {
  scene<double> s;
  s.gt({0, 0, 50, 50});
  s.gt({100, 0, 150, 50});
  s.det({0, 0, 50, 50}, 0.9);
  s.det({0, 0, 50, 50}, 0.8);  // duplicate of the first: its object is taken
  s.det({100, 0, 150, 50}, 0.7);
  const double expected = (51.0 * one_tp + 50.0 * (2.0 / 3.0)) / 101.0;
  CHECK(near(s.run().ap, expected));
  // a duplicate below every true positive costs nothing
  scene<double> late = s;
  late.det_scores = {0.9, 0.1, 0.7};
  CHECK(late.run().ap == 1.0);
}

TEST_CASE("detection_ap: IoU exactly at the thresholds", "[detection_ap]") {
  // a detection [0, 0, w, 10] inside the ground truth [0, 0, 20, 10] has IoU w/20 exactly
  // (correctly rounded), the same double as the threshold literal
  for (int w = 9; w <= 20; ++w) {
    INFO("w = " << w);
    scene<double> s;
    s.gt({0, 0, 20, 10});
    s.det({0, 0, static_cast<double>(w), 10}, 0.5);
    const auto r = s.run();
    // thresholds .5, .55, ..., .85, .8999999999999999, .95: matched while w/20 >= t
    const auto& thresholds = cvk::detection_ap_options{}.iou_thresholds;
    const double iou = static_cast<double>(w) / 20.0;
    int matched = 0;
    for (index_t t = 0; t < 10; ++t) {
      const bool hit = iou >= thresholds[static_cast<std::size_t>(t)];
      matched += hit ? 1 : 0;
      CHECK(near(r.ap_per_class_and_threshold(0, t), (hit ? one_tp : 0.0)));
      CHECK(near(r.ar_per_class_and_threshold(0, t), (hit ? 1.0 : 0.0)));
    }
    CHECK(matched == std::max(0, std::min(10, w - 9)));  // w = 10 → IoU .5: one threshold
    CHECK(near(r.ap50, (w >= 10 ? one_tp : 0.0)));
    CHECK(near(r.ap75, (w >= 15 ? one_tp : 0.0)));
  }
  // threshold 1: identical boxes match (IoU 1 >= 1 - 1e-10), a box one ulp off does not
  scene<double> s;
  s.gt({0, 0, 20, 10});
  s.gt({40, 0, 60, 10});
  s.det({0, 0, 20, 10}, 0.9);
  s.det({40, 0, std::nextafter(60.0, 0.0), 10}, 0.8);
  cvk::detection_ap_options o;
  o.iou_thresholds = {1.0};
  const auto r = s.run(o);
  CHECK(r.ar100 == 1.0);  // IoU 1 - 2^-53·3 ≥ 1 - 1e-10 as well
  s.det_boxes[1] = {40, 0, 59.999, 10};
  CHECK(s.run(o).ar100 == 0.5);
  CHECK(r.ap50 == -1);  // no threshold equals 0.5
  CHECK(r.ap75 == -1);
}

TEST_CASE("detection_ap: crowd ground truths", "[detection_ap]") {
  scene<double> s;
  s.gt({0, 0, 100, 100}, 1, 0, 1);      // crowd
  s.gt({200, 200, 240, 240}, 1, 0, 0);  // regular
  s.det({10, 10, 30, 30}, 0.95);        // inside the crowd: IoU 400/400 = 1 → ignored
  s.det({50, 50, 70, 70}, 0.9);         // inside too: a crowd matches any number of times
  s.det({200, 200, 240, 240}, 0.8);     // TP
  const auto r = s.run();
  CHECK(near(r.ap, one_tp));  // without the crowd rule: two false positives above the TP
  CHECK(r.ar100 == 1.0);
  // crowd IoU divides by the detection's area: 50·50 / 100·100 = 1/4, not 2500/17500
  scene<double> partial = s;
  partial.det_boxes[1] = {50, 50, 150, 150};
  cvk::detection_ap_options low;
  low.iou_thresholds = {0.25, 0.26};
  const auto rp = partial.run(low);
  CHECK(near(rp.ap_per_class_and_threshold(0, 0), one_tp));  // IoU 1/4 >= .25: ignored
  const double fp_first = (101.0 * 0.5) / 101.0;             // .26: a false positive above the TP
  CHECK(near(rp.ap_per_class_and_threshold(0, 1), fp_first));
  // a regular ground truth is preferred to a crowd with a better IoU
  scene<double> both;
  both.gt({0, 0, 100, 100}, 1, 0, 1);
  both.gt({0, 0, 40, 40}, 1, 0, 0);
  both.det({0, 0, 30, 40}, 0.9);  // IoU 1 with the crowd, 3/4 with the regular one
  const auto rb = both.run();
  CHECK(near(rb.ap50, one_tp));
  CHECK(rb.ar_per_class_and_threshold(0, 5) == 1.0);  // matched at .75
  CHECK(rb.ar_per_class_and_threshold(0, 6) == 0.0);  // not at .8: then it takes the crowd
  CHECK(rb.ap_per_class_and_threshold(0, 6) == 0.0);  // ignored, not a false positive
  // only crowds: nothing to measure
  scene<double> crowds;
  crowds.gt({0, 0, 100, 100}, 1, 0, 1);
  crowds.det({0, 0, 100, 100}, 0.9);
  const auto rc = crowds.run();
  CHECK(rc.ap == -1);
  CHECK(rc.ar100 == -1);
  CHECK(rc.ap_per_class == std::vector<double>{-1.0});
  // the overload without gt_iscrowd treats every ground truth as regular
  const auto plain = cvk::detection_ap(s.det_boxes, s.det_scores, s.det_classes, s.det_images,
                                       s.gt_boxes, s.gt_classes, s.gt_images);
  CHECK(plain.ar100 == 0.5);  // the big box is a regular object nobody found
  CHECK(plain.ap50 < 0.5);
}

TEST_CASE("detection_ap: area ranges", "[detection_ap]") {
  scene<double> s;
  s.gt({0, 0, 10, 10});               // small (100)
  s.gt({200, 200, 300, 300});         // large (10000)
  s.det({400, 400, 450, 450}, 0.95);  // medium false positive (2500)
  s.det({200, 200, 300, 300}, 0.9);
  s.det({0, 0, 10, 10}, 0.8);
  const auto r = s.run();
  // all: precision 0, 1/2, 2/3 → envelope 2/3
  CHECK(near(r.ap, 2.0 / 3.0));
  // small: the medium false positive lies outside the range and is ignored; the large
  // detection matches an ignored ground truth and is ignored: one TP
  CHECK(near(r.ap_small, one_tp));
  CHECK(near(r.ap_large, one_tp));
  CHECK(r.ap_medium == -1);  // no medium ground truth
  CHECK(r.ar_small == 1.0);
  CHECK(r.ar_medium == -1);
  CHECK(r.ar_large == 1.0);
  // boundaries: area exactly 32² is small and medium, 96² medium and large
  scene<double> edges;
  edges.gt({0, 0, 32, 32});
  edges.gt({100, 0, 196, 96});
  edges.det({0, 0, 32, 32}, 0.9);
  edges.det({100, 0, 196, 96}, 0.8);
  const auto e = edges.run();
  CHECK(e.ar_small == 1.0);
  CHECK(e.ar_medium == 1.0);
  CHECK(e.ar_large == 1.0);
  CHECK(e.ap_medium == 1.0);
}

TEST_CASE("detection_ap: max_detections keeps the top-scored detections per image",
          "[detection_ap]") {
  scene<double> s;
  s.gt({0, 0, 10, 10});
  s.gt({20, 0, 30, 10});
  s.gt({40, 0, 50, 10});
  s.det({40, 0, 50, 10}, 0.7);  // lowest score first in the input
  s.det({0, 0, 10, 10}, 0.9);
  s.det({20, 0, 30, 10}, 0.8);
  cvk::detection_ap_options o;
  o.max_detections = {2, 1, 2};  // sorted: 1, 2, 2
  const auto r = s.run(o);
  CHECK(near(r.ar1, 1.0 / 3.0));
  CHECK(near(r.ar10, 2.0 / 3.0));
  CHECK(near(r.ar100, 2.0 / 3.0));
  // AP at 2 detections: recall 1/3, 2/3 with envelope 1; recall thresholds up to .66: 67 points
  CHECK(near(r.ap, 67.0 / 101.0));
  // the limit applies per image and class: a second image brings its own top detections
  s.gt({0, 0, 10, 10}, 1, 5);
  s.det({0, 0, 10, 10}, 0.1, 1, 5);
  CHECK(s.run(o).ar1 == 0.5);
  // max_detections 0: nothing is kept
  o.max_detections = {0, 0, 0};
  CHECK(s.run(o).ap == 0.0);
  CHECK(s.run(o).ar100 == 0.0);
}

TEST_CASE("detection_ap: images without detections count; ties follow COCOeval's order",
          "[detection_ap]") {
  scene<double> s;
  s.gt({0, 0, 10, 10}, 1, 0);
  s.gt({0, 0, 10, 10}, 1, 1);  // image 1: no detection
  s.det({0, 0, 10, 10}, 0.9, 1, 0);
  const auto r = s.run();
  CHECK(r.ar100 == 0.5);
  CHECK(near(r.ap, 51.0 * one_tp / 101.0));
  // equal scores in one image: input order decides (the false positive first, then second)
  scene<double> tie;
  tie.gt({0, 0, 10, 10});
  tie.det({50, 50, 60, 60}, 0.5);
  tie.det({0, 0, 10, 10}, 0.5);
  CHECK(tie.run().ap == 0.5);
  std::swap(tie.det_boxes[0], tie.det_boxes[1]);
  CHECK(near(tie.run().ap, one_tp));
  // equal scores in two images: the lower image id first, whatever the input order
  scene<double> across;
  across.gt({0, 0, 10, 10}, 1, 7);
  across.det({0, 0, 10, 10}, 0.5, 1, 7);    // TP in image 7
  across.det({50, 50, 60, 60}, 0.5, 1, 3);  // FP in image 3: ranked first
  CHECK(across.run().ap == 0.5);
  across.det_images[1] = 9;  // FP in image 9: ranked after the TP
  CHECK(near(across.run().ap, one_tp));
}

TEST_CASE("detection_ap: several classes average over the classes with ground truth",
          "[detection_ap]") {
  scene<double> s;
  s.gt({0, 0, 10, 10}, 4);
  s.det({0, 0, 10, 10}, 0.9, 4);  // class 4: AP 1 - 2^-52
  s.gt({0, 0, 10, 10}, -2);
  s.det({50, 50, 60, 60}, 0.9, -2);  // class -2: AP 0
  s.det({0, 0, 10, 10}, 0.9, 9);     // class 9: no ground truth, -1 and left out
  const auto r = s.run();
  CHECK(r.classes == std::vector<std::int64_t>{-2, 4, 9});
  CHECK(near(r.ap, one_tp / 2.0));
  CHECK(r.ap_per_class == std::vector<double>{0.0, one_tp, -1.0});
  CHECK(r.ar_per_class_and_threshold(2, 0) == -1);
}

TEST_CASE("detection_ap: empty inputs", "[detection_ap]") {
  const boxes_t<float> no_boxes;
  const std::vector<float> no_scores;
  const std::vector<int> no_ids;
  const auto r = cvk::detection_ap(no_boxes, no_scores, no_ids, no_ids, no_boxes, no_ids, no_ids);
  for (const double v : r.stats()) CHECK(v == -1);
  CHECK(r.classes.empty());
  CHECK(r.ap_per_class_and_threshold.extent(0) == 0);
  CHECK(r.ap_per_class_and_threshold.extent(1) == 10);
  // ground truth only: AP 0 and AR 0
  scene<double> gts;
  gts.gt({0, 0, 10, 10});
  const auto g = gts.run();
  CHECK(g.ap == 0.0);
  CHECK(g.ar100 == 0.0);
  CHECK(g.ap_medium == -1);
  // detections only: nothing to measure
  scene<double> dets;
  dets.det({0, 0, 10, 10}, 0.5);
  const auto d = dets.run();
  for (const double v : d.stats()) CHECK(v == -1);
  CHECK(d.classes == std::vector<std::int64_t>{1});
}

TEST_CASE(
    "detection_ap: an image with ground truth and no detection, first in its class (issue 9 #2)",
    "[detection_ap][regression]") {
  // The first image of class 1 and the only image of class 2 have ground truth and no
  // detection: the evaluator's flags are still empty there. The old code formed
  // flags.data() + offset on the empty vector (undefined behaviour, reported by clang's
  // -fsanitize=pointer-overflow as "applying non-zero offset to null pointer").
  scene<double> s;
  s.gt({0, 0, 10, 10}, 1, 0);  // image 0: no detection
  s.gt({0, 0, 10, 10}, 1, 1);
  s.det({0, 0, 10, 10}, 0.9, 1, 1);  // image 1: a true positive
  s.gt({20, 20, 60, 60}, 2, 0);      // class 2: ground truth only
  const auto r = s.run();
  REQUIRE(r.classes == std::vector<std::int64_t>{1, 2});
  // class 1: recall 1/2 at precision 1 - 2^-52, so 51 of the 101 recall thresholds; class 2: 0
  CHECK(near(r.ap_per_class[0], 51.0 * one_tp / 101.0));
  CHECK(r.ap_per_class[1] == 0.0);
  CHECK(near(r.ap, 51.0 * one_tp / 202.0));
  CHECK(r.ar100 == 0.25);
  CHECK(r.ar_per_class_and_threshold(0, 0) == 0.5);
  CHECK(r.ar_per_class_and_threshold(1, 0) == 0.0);
  CHECK(r.ap_small == r.ap_per_class[0]);  // only class 1 has small objects
  CHECK(r.ap_medium == 0.0);               // only class 2 has a medium one
  CHECK(r.ar_large == -1);
  // the same on random scenes in which many images and classes have no detection at all
  cvk::rng gen(9002);
  for (int round = 0; round < 30; ++round) {
    INFO("round " << round);
    auto random = random_scene<double>(gen, 1 + gen.below(8), 1 + gen.below(4), round % 2 == 0);
    for (std::size_t i = random.det_boxes.size(); i-- > 0;) {
      if (random.det_images[i] % 3 != 0) continue;  // drop every detection of a third of images
      random.det_boxes.erase(random.det_boxes.begin() + static_cast<std::ptrdiff_t>(i));
      random.det_scores.erase(random.det_scores.begin() + static_cast<std::ptrdiff_t>(i));
      random.det_classes.erase(random.det_classes.begin() + static_cast<std::ptrdiff_t>(i));
      random.det_images.erase(random.det_images.begin() + static_cast<std::ptrdiff_t>(i));
    }
    const cvk::detection_ap_options o;
    check_result(random.run(o), reference_detection_ap(random, o));
  }
}

TEST_CASE(
    "detection_ap: a box_format outside the enum and 2^40 broadcast detections are cvk "
    "errors (issue 9 #8)",
    "[detection_ap][regression]") {
  scene<double> s;
  s.gt({0, 0, 10, 10});
  s.det({0, 0, 10, 10}, 0.9);
  cvk::detection_ap_options o;
  o.format = static_cast<cvk::box_format>(6);
  CHECK_THROWS_MATCHES(
      s.run(o), cvk::invalid_argument,
      Catch::Message(
          "detection_ap: options.format must be xyxy, xywh, cxcywh or yxyx, got box_format(6)"));
  // one detection broadcast to 2^40 rows: the old code ended in std::bad_alloc
  const index_t n = index_t{1} << 40;
  const auto boxes = cvk::view(s.det_boxes[0].data(), {n, index_t{4}}, {index_t{0}, index_t{1}});
  const auto scores = cvk::view(s.det_scores.data(), {n}, {index_t{0}});
  const auto ids = cvk::view(s.det_classes.data(), {n}, {index_t{0}});
  CHECK_THROWS_AS(cvk::detection_ap(boxes, scores, ids, ids, s.gt_boxes, s.gt_classes, s.gt_images),
                  cvk::out_of_range);
  CHECK_THROWS_WITH(
      cvk::detection_ap(boxes, scores, ids, ids, s.gt_boxes, s.gt_classes, s.gt_images),
      Catch::Contains("detection_ap: det_boxes (1099511627776×4) needs "
                      "1099511627776 elements") &&
          Catch::Contains("more than can be allocated"));
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST_CASE("detection_ap: errors name the function, the argument and the shapes", "[detection_ap]") {
  const boxes_t<double> three(3, std::array<double, 4>{0, 0, 1, 1});
  const std::vector<double> scores(3, 0.5);
  const std::vector<double> two_scores(2, 0.5);
  const std::vector<int> ids(3, 0);
  const std::vector<int> two_ids(2, 0);
  const boxes_t<double> gts(2, std::array<double, 4>{0, 0, 1, 1});
  const std::vector<int> gt_ids(2, 0);
  const std::vector<int> one_id(1, 0);
  std::vector<double> flat(9, 0.0);
  const auto three_by_three = cvk::view(flat.data(), 3, 3);
  CHECK_THROWS_MATCHES(cvk::detection_ap(three_by_three, scores, ids, ids, gts, gt_ids, gt_ids),
                       cvk::shape_error,
                       Catch::Message("detection_ap: det_boxes must be D×4, got 3×3"));
  CHECK_THROWS_MATCHES(cvk::detection_ap(three, scores, ids, ids, three_by_three, ids, ids),
                       cvk::shape_error,
                       Catch::Message("detection_ap: gt_boxes must be G×4, got 3×3"));
  CHECK_THROWS_MATCHES(
      cvk::detection_ap(three, two_scores, ids, ids, gts, gt_ids, gt_ids), cvk::shape_error,
      Catch::Message("detection_ap: det_scores must have 3 elements (one per detection), got 2"));
  CHECK_THROWS_MATCHES(
      cvk::detection_ap(three, scores, two_ids, ids, gts, gt_ids, gt_ids), cvk::shape_error,
      Catch::Message("detection_ap: det_classes must have 3 elements (one per detection), got 2"));
  CHECK_THROWS_MATCHES(
      cvk::detection_ap(three, scores, ids, two_ids, gts, gt_ids, gt_ids), cvk::shape_error,
      Catch::Message("detection_ap: det_images must have 3 elements (one per detection), got 2"));
  CHECK_THROWS_MATCHES(
      cvk::detection_ap(three, scores, ids, ids, gts, one_id, gt_ids), cvk::shape_error,
      Catch::Message(
          "detection_ap: gt_classes must have 2 elements (one per ground truth), got 1"));
  CHECK_THROWS_MATCHES(
      cvk::detection_ap(three, scores, ids, ids, gts, gt_ids, one_id), cvk::shape_error,
      Catch::Message("detection_ap: gt_images must have 2 elements (one per ground truth), got 1"));
  CHECK_THROWS_MATCHES(
      cvk::detection_ap(three, scores, ids, ids, gts, gt_ids, gt_ids, one_id), cvk::shape_error,
      Catch::Message(
          "detection_ap: gt_iscrowd must have 2 elements (one per ground truth), got 1"));
  // NaN scores and coordinates
  std::vector<double> nan_scores = scores;
  nan_scores[1] = std::nan("");
  CHECK_THROWS_MATCHES(cvk::detection_ap(three, nan_scores, ids, ids, gts, gt_ids, gt_ids),
                       cvk::invalid_argument, Catch::Message("detection_ap: det_scores[1] is NaN"));
  boxes_t<double> nan_boxes = gts;
  nan_boxes[1][2] = std::nan("");
  CHECK_THROWS_MATCHES(cvk::detection_ap(three, scores, ids, ids, nan_boxes, gt_ids, gt_ids),
                       cvk::invalid_argument,
                       Catch::Message("detection_ap: gt_boxes row 1 has a NaN coordinate"));
  // options
  const auto with = [&](const cvk::detection_ap_options& o) {
    return cvk::detection_ap(three, scores, ids, ids, gts, gt_ids, gt_ids, o);
  };
  cvk::detection_ap_options o;
  o.iou_thresholds = {};
  CHECK_THROWS_MATCHES(with(o), cvk::invalid_argument,
                       Catch::Message("detection_ap: iou_thresholds must not be empty"));
  for (const double bad : {-0.1, 1.5, std::nan("")}) {
    o.iou_thresholds = {0.5, bad};
    CHECK_THROWS_AS(with(o), cvk::invalid_argument);
  }
  o.iou_thresholds = {1.5};
  CHECK_THROWS_MATCHES(with(o), cvk::invalid_argument,
                       Catch::Message("detection_ap: iou_thresholds must be in [0, 1], got 1.5"));
  o = {};
  o.max_detections = {1, 10};
  CHECK_THROWS_MATCHES(with(o), cvk::invalid_argument,
                       Catch::Message("detection_ap: max_detections must hold 3 values, got 2"));
  o.max_detections = {1, -10, 100};
  CHECK_THROWS_MATCHES(with(o), cvk::invalid_argument,
                       Catch::Message("detection_ap: max_detections must be >= 0, got -10"));
  // ids that do not fit in int64
  const std::vector<std::uint64_t> huge(3, std::uint64_t{1} << 63);
  CHECK_THROWS_MATCHES(cvk::detection_ap(three, scores, huge, ids, gts, gt_ids, gt_ids),
                       cvk::invalid_argument,
                       Catch::Message("detection_ap: det_classes holds an id that does not fit in "
                                      "int64: 9223372036854775808"));
  // every cvk error is a std exception too
  CHECK_THROWS_AS(cvk::detection_ap(three, two_scores, ids, ids, gts, gt_ids, gt_ids),
                  std::invalid_argument);
}

// Found by tests/fuzz/fuzz_detection_ap.cpp (issue 9 defect 8): the format was not validated when
// there are no boxes; it is checked with the other options, before any box is read.
TEST_CASE("detection_ap: a box_format outside the enum with no boxes",
          "[detection_ap][fuzz-finding]") {
  const std::vector<std::array<float, 4>> none;
  const std::vector<float> no_scores;
  const std::vector<int> no_ids;
  cvk::detection_ap_options options;
  options.format = static_cast<cvk::box_format>(4);
  CHECK_THROWS_AS(cvk::detection_ap(none, no_scores, no_ids, no_ids, none, no_ids, no_ids, options),
                  cvk::invalid_argument);
}

TEST_CASE("errors table: detection_ap (docs/errors.md)", "[detection_ap][errors]") {
  const std::vector<double> buffer(8, 1.0);
  const std::vector<int> flags(8, 0);
  const auto rank3 = cvk_test::rank3_view(buffer);
  const boxes_t<double> one(1, std::array<double, 4>{0, 0, 10, 10});
  const std::vector<double> scores(1, 0.5);
  const std::vector<int> ids(1, 0);
  CHECK_THROWS_MATCHES(
      cvk::detection_ap(rank3, scores, ids, ids, one, ids, ids), cvk::shape_error,
      Catch::Message("detection_ap: det_boxes must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_MATCHES(
      cvk::detection_ap(one, scores, ids, ids, one, ids, ids, cvk_test::rank3_view(flags)),
      cvk::shape_error,
      Catch::Message("detection_ap: gt_iscrowd must have rank 1, got rank 3 (2×2×2)"));
  // an infinite coordinate is not NaN: accepted, and that box matches nothing (IoU NaN or 0)
  boxes_t<double> far = one;
  far[0][2] = std::numeric_limits<double>::infinity();
  const auto r = cvk::detection_ap(far, scores, ids, ids, one, ids, ids);
  CHECK(r.ap == 0.0);
  // 2^40 broadcast crowd flags cannot be allocated
  const int flag = 0;
  CHECK_THROWS_AS(cvk::detection_ap(one, scores, ids, ids, one, ids, ids,
                                    cvk_test::broadcast_values(&flag, cvk_test::huge_rows)),
                  cvk::out_of_range);
}

TEST_CASE("detection_ap: named argument groups equal the positional form", "[detection_ap]") {
  using Catch::Matchers::Contains;
  cvk::rng gen(12012);
  for (int round = 0; round < 6; ++round) {
    INFO("round " << round);
    const auto s = random_scene<float>(gen, 1 + gen.below(6), 1 + gen.below(3), round % 2 == 0);
    const cvk::detection_ap_options o{.format = cvk::box_format::xyxy};
    const auto positional =
        cvk::detection_ap(s.det_boxes, s.det_scores, s.det_classes, s.det_images, s.gt_boxes,
                          s.gt_classes, s.gt_images, s.gt_crowd, o);
    const std::vector<std::int64_t> det_images(s.det_images.begin(), s.det_images.end());
    const auto grouped = cvk::detection_ap({.boxes = s.det_boxes,
                                            .scores = s.det_scores,
                                            .classes = s.det_classes,
                                            .images = det_images},
                                           {.boxes = s.gt_boxes,
                                            .classes = s.gt_classes,
                                            .images = s.gt_images,
                                            .iscrowd = s.gt_crowd},
                                           o);
    CHECK(grouped.stats() == positional.stats());
    CHECK(grouped.classes == positional.classes);
    // Without .iscrowd: no crowd, as the positional form without gt_iscrowd.
    const auto no_crowd =
        cvk::detection_ap({.boxes = s.det_boxes,
                           .scores = s.det_scores,
                           .classes = s.det_classes,
                           .images = s.det_images},
                          {.boxes = s.gt_boxes, .classes = s.gt_classes, .images = s.gt_images});
    CHECK(no_crowd.stats() == cvk::detection_ap(s.det_boxes, s.det_scores, s.det_classes,
                                                s.det_images, s.gt_boxes, s.gt_classes, s.gt_images)
                                  .stats());
  }
  // Errors name the member.
  const boxes_t<double> one{{0, 0, 1, 1}};
  const std::vector<double> score{0.5};
  const std::vector<std::uint64_t> huge{std::uint64_t{1} << 63};
  const std::vector<int> id{0};
  CHECK_THROWS_WITH(
      cvk::detection_ap({.boxes = one, .scores = score, .classes = huge, .images = id},
                        {.boxes = one, .classes = id, .images = id}),
      Contains("detection_ap: detections.classes holds an id that does not fit in int64"));
  CHECK_THROWS_WITH(cvk::detection_ap({.boxes = one, .scores = score, .classes = id, .images = id},
                                      {.boxes = one, .classes = id, .images = huge}),
                    Contains("detection_ap: ground_truths.images holds an id"));
  const std::vector<int> two_ids{0, 1};
  CHECK_THROWS_AS(
      cvk::detection_ap({.boxes = one, .scores = score, .classes = two_ids, .images = id},
                        {.boxes = one, .classes = id, .images = id}),
      cvk::shape_error);
}
