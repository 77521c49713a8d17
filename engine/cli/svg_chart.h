#pragma once
// A line chart as a standalone SVG document, written by hand so the command needs no plotting library:
// panels stacked over one shared x axis, each a series of points with an optional dashed baseline.
#include <optional>
#include <string>
#include <vector>

namespace dlm::cli {

struct ChartPanel {
  std::string y_label;
  std::vector<std::optional<double>> values;  // one per x value; nullopt: no point there
  std::optional<double> baseline;             // drawn dashed across the panel
  bool fraction = false;                      // y from 0 to 1, ticks in percent; else from 0 to a round max
};

struct LineChart {
  std::string title;
  std::string x_label;
  std::string series_label;    // the legend's name of the points
  std::string baseline_label;  // the legend's name of the dashed lines
  std::vector<double> x;       // increasing; a log scale when all are positive and span more than 4x
  std::vector<ChartPanel> panels;
};

// The SVG document. Each point is a <circle class="point"> carrying its x value in data-x, and each panel a
// <g class="panel">, so tools and tests can read the chart back.
std::string render_svg(const LineChart& chart);

}  // namespace dlm::cli
