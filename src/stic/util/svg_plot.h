// stic/util/svg_plot.h — plain SVG line plots (no plotting library): training curves in run
// folders and reports.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace stic {

struct PlotSeries {
  std::string label, colour;
  std::vector<std::pair<double, double>> pts;  // (x, y)
};
struct PlotOptions {
  std::string x_label = "optimizer step", y_label;
  double width = 640, height = 320;
  // y range: rounded out to multiples of 0.5 and never below 0 (losses), or the data's range
  // padded by 5% (margins, accuracies)
  bool half_units_from_zero = false;
};
// One plot: grid, axis labels, a polyline and a legend entry per series.
std::string line_plot_svg(const std::vector<PlotSeries>& series, const PlotOptions& o);
// Standalone SVG documents stacked top to bottom into one.
std::string stack_svg(const std::vector<std::string>& panels, double width, double panel_height);

}  // namespace stic
