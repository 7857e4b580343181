// stic/util/svg_plot.cpp — see svg_plot.h.
#include "stic/util/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace stic {
namespace {
std::string fmt(const char* f, double x) {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}
std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}
}  // namespace

std::string line_plot_svg(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  const double W = o.width, H = o.height, L = 56, R = 16, T = 16, B = 40;
  double xmax = 1, ymin = 1e30, ymax = -1e30;
  for (auto& c : series)
    for (auto& [x, y] : c.pts) xmax = std::max(xmax, x), ymin = std::min(ymin, y), ymax = std::max(ymax, y);
  if (ymin > ymax) ymin = 0, ymax = 1;
  if (o.half_units_from_zero) {
    ymin = std::max(0.0, std::floor(ymin * 2) / 2), ymax = std::ceil(ymax * 2) / 2;
    if (ymax <= ymin) ymax = ymin + 1;
  } else {
    const double pad = std::max(1e-3, 0.05 * (ymax - ymin));
    ymin -= pad, ymax += pad;
  }
  auto X = [&](double x) { return L + (W - L - R) * x / xmax; };
  auto Y = [&](double y) { return T + (H - T - B) * (1 - (y - ymin) / (ymax - ymin)); };
  const char* yf = (ymax - ymin) < 0.5 ? "%.3f" : "%.2f";
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
    << " " << H << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (int i = 0; i <= 5; ++i) {
    const double y = ymin + (ymax - ymin) * i / 5;
    s << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << Y(y) << "\" y2=\"" << Y(y)
      << "\" stroke=\"#ddd\"/><text x=\"" << L - 6 << "\" y=\"" << Y(y) + 4 << "\" text-anchor=\"end\">" << fmt(yf, y)
      << "</text>\n";
    const double x = xmax * i / 5;
    s << "<text x=\"" << X(x) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">" << fmt("%.0f", x) << "</text>\n";
  }
  s << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 6 << "\" text-anchor=\"middle\">" << escape(o.x_label)
    << "</text>\n";
  s << "<text x=\"14\" y=\"" << (T + H - B) / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
    << (T + H - B) / 2 << ")\">" << escape(o.y_label) << "</text>\n";
  s << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"none\" stroke=\"#888\"/>\n";
  int li = 0;
  for (auto& c : series) {
    if (c.pts.empty()) continue;
    s << "<polyline fill=\"none\" stroke=\"" << c.colour << "\" stroke-width=\"1.5\" points=\"";
    for (auto& [x, y] : c.pts) s << fmt("%.1f", X(x)) << "," << fmt("%.1f", Y(y)) << " ";
    s << "\"/>\n<text x=\"" << W - R - 8 << "\" y=\"" << T + 16 + 14 * li << "\" text-anchor=\"end\" fill=\"" << c.colour
      << "\">" << escape(c.label) << "</text>\n";
    ++li;
  }
  s << "</svg>\n";
  return s.str();
}

std::string stack_svg(const std::vector<std::string>& panels, double width, double panel_height) {
  std::ostringstream s;
  const double h = panel_height * static_cast<double>(panels.size());
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << h << "\" viewBox=\"0 0 "
    << width << " " << h << "\">\n";
  for (size_t i = 0; i < panels.size(); ++i) {
    std::string p = panels[i];
    const size_t at = p.find("<svg ");  // place the panel: an x/y on its root element
    if (at != std::string::npos) p.insert(at + 5, "x=\"0\" y=\"" + fmt("%.0f", panel_height * static_cast<double>(i)) + "\" ");
    s << p;
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace stic
