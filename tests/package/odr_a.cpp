// Two translation units that include every public header must link into one program.
#include "odr_all.hpp"

double odr_area_b();

int main() {
  const std::vector<std::array<double, 4>> boxes{{0.0, 0.0, 2.0, 3.0}};
  const double a = cvk::box_area(boxes)(0);
  return (a == 6.0 && odr_area_b() == 6.0) ? 0 : 1;
}
