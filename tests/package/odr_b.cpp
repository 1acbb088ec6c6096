#include "odr_all.hpp"

double odr_area_b() {
  const std::vector<std::array<double, 4>> boxes{{1.0, 1.0, 3.0, 4.0}};
  return cvk::box_area(boxes)(0);
}
