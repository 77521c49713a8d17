#include "engine/cli/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace dlm::cli {

namespace {

constexpr double kWidth = 760, kLeft = 80, kRight = 30;
constexpr double kPanelTop = 76, kPanelHeight = 200, kPanelGap = 48, kBottom = 64;
constexpr double kInset = 30;  // keeps the first and last points off the panel's frame
constexpr const char* kSeriesColor = "#1f77b4";
constexpr const char* kBaselineColor = "#d62728";

std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// 1, 2 or 5 times a power of ten, at least `raw`.
double round_step(double raw) {
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

class XScale {
 public:
  explicit XScale(const std::vector<double>& x) {
    if (x.empty()) return;
    const auto [low, high] = std::minmax_element(x.begin(), x.end());
    log_ = *low > 0 && *high / *low > 4;
    low_ = map(*low);
    high_ = map(*high);
  }
  bool log() const { return log_; }
  double pixel(double value) const {
    const double left = kLeft + kInset, right = kWidth - kRight - kInset;
    if (high_ == low_) return (left + right) / 2;
    return left + (map(value) - low_) / (high_ - low_) * (right - left);
  }

 private:
  double map(double value) const { return log_ ? std::log(value) : value; }
  bool log_ = false;
  double low_ = 0, high_ = 0;
};

struct YScale {
  double top = 1.0;  // the axis runs from 0 to top
  double step = 0.25;
  bool percent = false;

  static YScale for_panel(const ChartPanel& panel) {
    if (panel.fraction) return {1.0, 0.25, true};
    double high = panel.baseline.value_or(0.0);
    for (const std::optional<double>& value : panel.values) high = std::max(high, value.value_or(0.0));
    if (!(high > 0) || !std::isfinite(high)) return {1.0, 0.25, false};
    const double step = round_step(high / 4);
    return {std::ceil(high / step - 1e-9) * step, step, false};
  }
  std::string label(double value) const {
    return percent ? fmt::format("{:g}%", value * 100) : fmt::format("{:g}", value);
  }
};

void draw_legend(const LineChart& chart, std::string& svg) {
  const double y = 52, x = kLeft;
  svg += fmt::format(
      "<g class=\"legend\">\n"
      "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{3}\" stroke-width=\"2\"/>\n"
      "<circle cx=\"{4}\" cy=\"{1}\" r=\"4\" fill=\"{3}\"/>\n"
      "<text x=\"{5}\" y=\"{1}\" dominant-baseline=\"middle\">{6}</text>\n",
      x, y, x + 28, kSeriesColor, x + 14, x + 36, escape(chart.series_label));
  const double second = x + 60 + 7.0 * static_cast<double>(chart.series_label.size());
  svg += fmt::format(
      "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{3}\" stroke-width=\"2\" "
      "stroke-dasharray=\"6 4\"/>\n"
      "<text x=\"{4}\" y=\"{1}\" dominant-baseline=\"middle\">{5}</text>\n</g>\n",
      second, y, second + 28, kBaselineColor, second + 36, escape(chart.baseline_label));
}

void draw_panel(const LineChart& chart, const ChartPanel& panel, const XScale& xs, double top,
                std::string& svg) {
  const double bottom = top + kPanelHeight, right = kWidth - kRight;
  const YScale ys = YScale::for_panel(panel);
  auto y_pixel = [&](double value) { return bottom - std::clamp(value / ys.top, 0.0, 1.0) * kPanelHeight; };

  svg += fmt::format(
      "<g class=\"panel\">\n<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
      "stroke=\"#888\"/>\n",
      kLeft, top, right - kLeft, kPanelHeight);
  for (double tick = 0; tick <= ys.top + ys.step / 2; tick += ys.step) {
    const double y = y_pixel(tick);
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{3}\" y=\"{1:.1f}\" text-anchor=\"end\" dominant-baseline=\"middle\">{4}</text>\n",
        kLeft, y, right, kLeft - 6, ys.label(tick));
  }
  for (double x : chart.x) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#888\"/>\n"
        "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
        xs.pixel(x), bottom, bottom + 5, bottom + 18, x);
  }
  const double middle = top + kPanelHeight / 2;
  svg += fmt::format(
      "<text x=\"{0}\" y=\"{1}\" text-anchor=\"middle\" transform=\"rotate(-90 {0} {1})\">{2}</text>\n",
      kLeft - 52, middle, escape(panel.y_label));
  if (panel.baseline) {
    svg += fmt::format(
        "<line class=\"baseline\" x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\n",
        kLeft, y_pixel(*panel.baseline), right, kBaselineColor);
  }
  std::string points, circles;
  for (size_t i = 0; i < chart.x.size() && i < panel.values.size(); ++i) {
    if (!panel.values[i]) continue;
    const double x = xs.pixel(chart.x[i]), y = y_pixel(*panel.values[i]);
    points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", x, y);
    circles += fmt::format(
        "<circle class=\"point\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" fill=\"{}\" data-x=\"{:g}\" "
        "data-y=\"{:g}\"><title>{:g}: {}</title></circle>\n",
        x, y, kSeriesColor, chart.x[i], *panel.values[i], chart.x[i], ys.label(*panel.values[i]));
  }
  svg += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n", points,
                     kSeriesColor);
  svg += circles + "</g>\n";
}

}  // namespace

std::string render_svg(const LineChart& chart) {
  const double panels = static_cast<double>(chart.panels.size());
  const double height = kPanelTop + panels * kPanelHeight + std::max(0.0, panels - 1) * kPanelGap + kBottom;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<title>{2}</title>\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{3}\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">{2}</text>\n",
      kWidth, height, escape(chart.title), kWidth / 2);
  draw_legend(chart, svg);
  const XScale xs(chart.x);
  for (size_t i = 0; i < chart.panels.size(); ++i) {
    draw_panel(chart, chart.panels[i], xs, kPanelTop + static_cast<double>(i) * (kPanelHeight + kPanelGap),
               svg);
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}{}</text>\n</svg>\n",
                     (kLeft + kWidth - kRight) / 2, height - 16, escape(chart.x_label),
                     xs.log() ? " (log scale)" : "");
  return svg;
}

}  // namespace dlm::cli
