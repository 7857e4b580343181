// Value validators for CLI11 flags (flags.h): finite numbers, non-negative integers, (0, 1].
#include <cmath>
#include <string>

#include "flags.h"

namespace stic::app {

namespace {
bool parse_double(const std::string& s, double* v) {
  try {
    size_t n = 0;
    *v = std::stod(s, &n);
    return n == s.size();
  } catch (const std::exception&) {
    return false;
  }
}
}  // namespace

const CLI::Validator& finite_number() {
  static const CLI::Validator v(
      [](std::string& s) -> std::string {
        double x;
        if (!parse_double(s, &x)) return "'" + s + "' is not a number";
        return std::isfinite(x) ? std::string() : "'" + s + "' is not a finite number";
      },
      "FINITE");
  return v;
}

const CLI::Validator& non_negative_integer() {
  static const CLI::Validator v(
      [](std::string& s) -> std::string {
        if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos)
          return "'" + s + "' is not an integer >= 0";
        return std::string();
      },
      "UINT");
  return v;
}

const CLI::Validator& probability_mass() {
  static const CLI::Validator v(
      [](std::string& s) -> std::string {
        double x;
        if (!parse_double(s, &x) || !(x > 0 && x <= 1)) return "'" + s + "' is not in (0, 1]";
        return std::string();
      },
      "(0,1]");
  return v;
}

}  // namespace stic::app
