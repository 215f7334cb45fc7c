#include "tools/leuko/plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "tensor/check.h"
#include "tensor/safetensors.h"

namespace leuko::cli {

// ---- log.csv --------------------------------------------------------------------------------

const char* const kLogCsvHeader = "epoch,train_loss,train_acc,val_loss,val_acc,val_precision,val_recall,val_f1,lr,seconds";

namespace {

std::string num(double v) {
  if (std::isnan(v)) return "nan";  // never "-nan"
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.8g", v);
  return buf;
}

}  // namespace

std::string log_csv_text(const std::vector<EpochRow>& rows) {
  std::string s = std::string(kLogCsvHeader) + "\n";
  for (const EpochRow& r : rows) {
    s += std::to_string(r.epoch);
    for (double v : {r.train_loss, r.train_acc, r.val_loss, r.val_acc, r.val_precision, r.val_recall, r.val_f1, r.lr,
                     r.seconds}) {
      s += "," + num(v);
    }
    s += "\n";
  }
  return s;
}

void write_log_csv(const std::string& path, const std::vector<EpochRow>& rows) {
  write_file_atomic(path, log_csv_text(rows));
}

std::vector<EpochRow> read_log_csv(const std::string& path) {
  std::ifstream f(path);
  LEUKO_CHECK(f.good(), path, ": cannot open the training log");
  std::string line;
  std::getline(f, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  LEUKO_CHECK(line == kLogCsvHeader, path, ": not a leuko training log (its first line is not the header '",
              kLogCsvHeader, "')");
  std::vector<EpochRow> rows;
  for (int lineno = 2; std::getline(f, line); lineno++) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string field; std::getline(ss, field, ',');) fields.push_back(field);
    LEUKO_CHECK(fields.size() == 10, path, ":", lineno, ": ", fields.size(), " fields, the header has 10");
    double v[10];
    for (size_t i = 0; i < 10; i++) {
      char* end = nullptr;
      v[i] = std::strtod(fields[i].c_str(), &end);
      LEUKO_CHECK(!fields[i].empty() && *end == '\0', path, ":", lineno, ": field ", i + 1, " ('", fields[i],
                  "') is not a number");
    }
    EpochRow r;
    // Checked before the conversion: a double outside int64's range (or NaN) has no int64 value.
    LEUKO_CHECK(v[0] == std::floor(v[0]) && std::fabs(v[0]) < 9e18, path, ":", lineno, ": epoch '", fields[0],
                "' is not a whole number");
    r.epoch = int64_t(v[0]);
    r.train_loss = v[1];
    r.train_acc = v[2];
    r.val_loss = v[3];
    r.val_acc = v[4];
    r.val_precision = v[5];
    r.val_recall = v[6];
    r.val_f1 = v[7];
    r.lr = v[8];
    r.seconds = v[9];
    rows.push_back(r);
  }
  return rows;
}

// ---- The 5x7 bitmap font --------------------------------------------------------------------

namespace {

// Each glyph: its 7 rows, top to bottom, 5 pixels each, '#' lit. The letters with a descender
// (g, p, q, y) are drawn 2 rows lower (kDescenders): their x-height part (rows 0-4) lines up
// with the other small letters' (rows 2-6) and their tails hang below the line.
const std::pair<char, const char*> kGlyphs[] = {
    {'0', ".###. #...# #..## #.#.# ##..# #...# .###."},
    {'1', "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###."},
    {'2', ".###. #...# ....# ...#. ..#.. .#... #####"},
    {'3', "##### ...#. ..#.. ...#. ....# #...# .###."},
    {'4', "...#. ..##. .#.#. #..#. ##### ...#. ...#."},
    {'5', "##### #.... ####. ....# ....# #...# .###."},
    {'6', "..##. .#... #.... ####. #...# #...# .###."},
    {'7', "##### ....# ...#. ..#.. .#... .#... .#..."},
    {'8', ".###. #...# #...# .###. #...# #...# .###."},
    {'9', ".###. #...# #...# .#### ....# ...#. .##.."},
    {'A', ".###. #...# #...# ##### #...# #...# #...#"},
    {'B', "####. #...# #...# ####. #...# #...# ####."},
    {'C', ".###. #...# #.... #.... #.... #...# .###."},
    {'D', "###.. #..#. #...# #...# #...# #..#. ###.."},
    {'E', "##### #.... #.... ####. #.... #.... #####"},
    {'F', "##### #.... #.... ####. #.... #.... #...."},
    {'G', ".###. #...# #.... #.### #...# #...# .####"},
    {'H', "#...# #...# #...# ##### #...# #...# #...#"},
    {'I', ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###."},
    {'J', "..### ...#. ...#. ...#. ...#. #..#. .##.."},
    {'K', "#...# #..#. #.#.. ##... #.#.. #..#. #...#"},
    {'L', "#.... #.... #.... #.... #.... #.... #####"},
    {'M', "#...# ##.## #.#.# #.#.# #...# #...# #...#"},
    {'N', "#...# #...# ##..# #.#.# #..## #...# #...#"},
    {'O', ".###. #...# #...# #...# #...# #...# .###."},
    {'P', "####. #...# #...# ####. #.... #.... #...."},
    {'Q', ".###. #...# #...# #...# #.#.# #..#. .##.#"},
    {'R', "####. #...# #...# ####. #.#.. #..#. #...#"},
    {'S', ".#### #.... #.... .###. ....# ....# ####."},
    {'T', "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."},
    {'U', "#...# #...# #...# #...# #...# #...# .###."},
    {'V', "#...# #...# #...# #...# #...# .#.#. ..#.."},
    {'W', "#...# #...# #...# #.#.# #.#.# #.#.# .#.#."},
    {'X', "#...# #...# .#.#. ..#.. .#.#. #...# #...#"},
    {'Y', "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.."},
    {'Z', "##### ....# ...#. ..#.. .#... #.... #####"},
    {'a', "..... ..... .###. ....# .#### #...# .####"},
    {'b', "#.... #.... #.##. ##..# #...# #...# ####."},
    {'c', "..... ..... .###. #.... #.... #...# .###."},
    {'d', "....# ....# .##.# #..## #...# #...# .####"},
    {'e', "..... ..... .###. #...# ##### #.... .###."},
    {'f', "..##. .#..# .#... ###.. .#... .#... .#..."},
    {'g', ".#### #...# #...# #...# .#### ....# .###."},
    {'h', "#.... #.... #.##. ##..# #...# #...# #...#"},
    {'i', "..#.. ..... .##.. ..#.. ..#.. ..#.. .###."},
    {'j', "...#. ..... ..##. ...#. ...#. #..#. .##.."},
    {'k', "#.... #.... #..#. #.#.. ##... #.#.. #..#."},
    {'l', ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###."},
    {'m', "..... ..... ##.#. #.#.# #.#.# #...# #...#"},
    {'n', "..... ..... #.##. ##..# #...# #...# #...#"},
    {'o', "..... ..... .###. #...# #...# #...# .###."},
    {'p', "####. #...# #...# #...# ####. #.... #...."},
    {'q', ".#### #...# #...# #...# .#### ....# ....#"},
    {'r', "..... ..... #.##. ##..# #.... #.... #...."},
    {'s', "..... ..... .###. #.... .###. ....# ####."},
    {'t', ".#... .#... ###.. .#... .#... .#..# ..##."},
    {'u', "..... ..... #...# #...# #...# #..## .##.#"},
    {'v', "..... ..... #...# #...# #...# .#.#. ..#.."},
    {'w', "..... ..... #...# #...# #.#.# #.#.# .#.#."},
    {'x', "..... ..... #...# .#.#. ..#.. .#.#. #...#"},
    {'y', "#...# #...# #...# #...# .#### ....# .###."},
    {'z', "..... ..... ##### ...#. ..#.. .#... #####"},
    {'.', "..... ..... ..... ..... ..... .##.. .##.."},
    {'-', "..... ..... ..... ##### ..... ..... ....."},
    {':', "..... .##.. .##.. ..... .##.. .##.. ....."},
    {',', "..... ..... ..... ..... .##.. ..#.. .#..."},
    {'(', "...#. ..#.. .#... .#... .#... ..#.. ...#."},
    {')', ".#... ..#.. ...#. ...#. ...#. ..#.. .#..."},
    {'/', "..... ....# ...#. ..#.. .#... #.... ....."},
    {'%', "##... ##..# ...#. ..#.. .#... #..## ...##"},
    {'+', "..... ..#.. ..#.. ##### ..#.. ..#.. ....."},
    {'=', "..... ..... ##### ..... ##### ..... ....."},
    {'_', "..... ..... ..... ..... ..... ..... #####"},
    {' ', "..... ..... ..... ..... ..... ..... ....."},
};

// The glyphs as 7 row masks (bit 4 = the leftmost pixel), built once from the table above.
const std::map<char, std::array<uint8_t, 7>>& font() {
  static const std::map<char, std::array<uint8_t, 7>> table = [] {
    std::map<char, std::array<uint8_t, 7>> t;
    for (const auto& [c, rows] : kGlyphs) {
      std::array<uint8_t, 7> g{};
      int r = 0, col = 0;
      for (const char* p = rows; *p != '\0'; p++) {
        if (*p == ' ') continue;
        if (*p == '#') g[size_t(r)] = uint8_t(g[size_t(r)] | (0x10 >> col));
        if (++col == 5) {
          col = 0;
          r++;
        }
      }
      t[c] = g;
    }
    return t;
  }();
  return table;
}

constexpr const char* kDescenders = "gpqy";

// Unknown characters: a hollow box, so a missing glyph shows instead of vanishing.
constexpr std::array<uint8_t, 7> kBox{0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F};

void fill_rect(data::Image& img, int x, int y, int w, int h, const uint8_t rgb[3]) {
  for (int yy = std::max(0, y); yy < std::min(img.height, y + h); yy++) {
    for (int xx = std::max(0, x); xx < std::min(img.width, x + w); xx++) {
      uint8_t* p = img.at(yy, xx);
      p[0] = rgb[0];
      p[1] = rgb[1];
      p[2] = rgb[2];
    }
  }
}

}  // namespace

bool font_has(char c) { return font().count(c) > 0; }

int text_width(const std::string& text, int scale) {
  // 5 pixels and 1 of spacing per character, without the trailing space.
  return text.empty() ? 0 : (6 * int(text.size()) - 1) * scale;
}

void draw_text(data::Image& img, int x, int y, const std::string& text, int scale, const uint8_t rgb[3]) {
  for (char c : text) {
    auto it = font().find(c);
    const std::array<uint8_t, 7>& g = it == font().end() ? kBox : it->second;
    const int drop = c != '\0' && std::strchr(kDescenders, c) != nullptr ? 2 * scale : 0;
    for (int r = 0; r < 7; r++) {
      for (int col = 0; col < 5; col++) {
        if (g[size_t(r)] & (0x10 >> col)) fill_rect(img, x + col * scale, y + drop + r * scale, scale, scale, rgb);
      }
    }
    x += 6 * scale;
  }
}

// ---- The curves -----------------------------------------------------------------------------

namespace {

constexpr uint8_t kWhite[3] = {255, 255, 255}, kInk[3] = {40, 40, 40}, kAxis[3] = {110, 110, 110},
                  kGrid[3] = {230, 230, 230}, kLegendEdge[3] = {190, 190, 190};
// Line colours of matplotlib's default cycle, distinct in print and for most colour-blind eyes.
constexpr uint8_t kBlue[3] = {31, 119, 180}, kOrange[3] = {255, 127, 14}, kGreen[3] = {44, 160, 44},
                  kRed[3] = {214, 39, 40}, kPurple[3] = {148, 103, 189};

// One curve: a value per row (NaN: missing), its colour and its legend label.
struct Series {
  std::string label;
  const uint8_t* rgb;
  std::vector<double> y;  // (rows,)
};

// Where data land in the image: the plot area in pixels and the data range it shows.
struct Frame {
  int left = 0, top = 0, right = 0, bottom = 0;  // pixels, inclusive
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;        // data at the area's edges
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (right - left); }
  double py(double y) const { return bottom - (y - y0) / (y1 - y0) * (bottom - top); }
};

// A tick step of 1, 2, 2.5 or 5 times a power of ten giving at most about `target` intervals.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0}) {
    if (m * p >= raw * (1 - 1e-9)) return m * p;
  }
  return 10 * p;
}

// The same for whole numbers (epochs): 1, 2, 5, 10, 20, 50, ...
int64_t nice_int_step(double span, int target) {
  int64_t step = 1;
  for (int64_t p = 1;; p *= 10) {
    for (int64_t m : {1, 2, 5}) {
      step = m * p;
      if (double(step) * target >= span) return step;
    }
  }
}

// Tick labels with as many decimals as the step needs: 0.25 -> "0.50", 0.2 -> "0.4", 5 -> "10".
std::string tick_label(double v, double step) {
  int d = 0;
  while (d < 6 && std::fabs(step * std::pow(10.0, d) - std::round(step * std::pow(10.0, d))) > 1e-6) d++;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", d, std::fabs(v) < step * 1e-6 ? 0.0 : v);
  return buf;
}

// Paints `rgb` over the image with per-pixel opacity `cover` (the plot area of `f`).
void composite(data::Image& img, const Frame& f, const std::vector<float>& cover, const uint8_t rgb[3]) {
  const int W = f.right - f.left + 1;
  for (int y = f.top; y <= f.bottom; y++) {
    for (int x = f.left; x <= f.right; x++) {
      const float a = cover[size_t((y - f.top) * W + (x - f.left))];
      if (a <= 0) continue;
      uint8_t* p = img.at(y, x);
      for (int c = 0; c < 3; c++) p[c] = uint8_t(std::lround(p[c] * (1 - a) + rgb[c] * a));
    }
  }
}

// The coverage of a round-capped segment of half-width `half` from (ax, ay) to (bx, by), kept
// as the maximum with what `cover` holds: a pixel darkens once where segments overlap (the
// joints), and the edge is antialiased over one pixel.
void cover_segment(std::vector<float>& cover, const Frame& f, double ax, double ay, double bx, double by, double half) {
  const int W = f.right - f.left + 1;
  const int x_lo = std::max(f.left, int(std::floor(std::min(ax, bx) - half - 1)));
  const int x_hi = std::min(f.right, int(std::ceil(std::max(ax, bx) + half + 1)));
  const int y_lo = std::max(f.top, int(std::floor(std::min(ay, by) - half - 1)));
  const int y_hi = std::min(f.bottom, int(std::ceil(std::max(ay, by) + half + 1)));
  const double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  for (int y = y_lo; y <= y_hi; y++) {
    for (int x = x_lo; x <= x_hi; x++) {
      // Distance from the pixel centre to the nearest point of the segment.
      const double t = len2 > 0 ? std::clamp(((x - ax) * dx + (y - ay) * dy) / len2, 0.0, 1.0) : 0.0;
      const double d = std::hypot(x - (ax + t * dx), y - (ay + t * dy));
      const float c = float(std::clamp(half + 0.5 - d, 0.0, 1.0));
      float& v = cover[size_t((y - f.top) * W + (x - f.left))];
      v = std::max(v, c);
    }
  }
}

void draw_series(data::Image& img, const Frame& f, const std::vector<double>& xs, const Series& s, double half,
                 bool markers) {
  std::vector<float> cover(size_t((f.right - f.left + 1) * (f.bottom - f.top + 1)), 0.f);  // (H, W) of the area
  const size_t n = xs.size();
  auto ok = [&](size_t i) { return i < n && std::isfinite(s.y[i]); };
  for (size_t i = 0; i < n; i++) {
    if (!ok(i)) continue;
    const double x = f.px(xs[i]), y = f.py(s.y[i]);
    if (ok(i + 1)) cover_segment(cover, f, x, y, f.px(xs[i + 1]), f.py(s.y[i + 1]), half);
    // A dot on every point when they are few, and always on a point with no neighbour (else
    // it would not show at all).
    const bool alone = !(i > 0 && ok(i - 1)) && !ok(i + 1);
    if (markers || alone) cover_segment(cover, f, x, y, x, y, half + 1.5);
  }
  composite(img, f, cover, s.rgb);
}

void hline(data::Image& img, int x0, int x1, int y, const uint8_t rgb[3]) { fill_rect(img, x0, y, x1 - x0 + 1, 1, rgb); }
void vline(data::Image& img, int x, int y0, int y1, const uint8_t rgb[3]) { fill_rect(img, x, y0, 1, y1 - y0 + 1, rgb); }

// The legend box in a corner of the plot area (top-right or bottom-right).
void draw_legend(data::Image& img, const Frame& f, const std::vector<Series>& series, bool top, int s) {
  const int row_h = 11 * s, swatch = 12 * s, pad = 5 * s;
  int text_w = 0;
  for (const Series& e : series) text_w = std::max(text_w, text_width(e.label, s));
  const int w = pad + swatch + 4 * s + text_w + pad, h = pad + int(series.size()) * row_h - 4 * s + pad;
  const int x = f.right - 6 * s - w, y = top ? f.top + 6 * s : f.bottom - 6 * s - h;
  fill_rect(img, x, y, w, h, kLegendEdge);
  fill_rect(img, x + 1, y + 1, w - 2, h - 2, kWhite);
  for (size_t i = 0; i < series.size(); i++) {
    const int ry = y + pad + int(i) * row_h;  // top of the text row
    fill_rect(img, x + pad, ry + 3 * s - 1, swatch, 3, series[i].rgb);
    draw_text(img, x + pad + swatch + 4 * s, ry, series[i].label, s, kInk);
  }
}

// One panel: grid, axes, ticks and their labels, the curves, the legend and the title, in the
// part of the image from x = `x_off`, `w` pixels wide, below `top_band` pixels of title.
void draw_panel(data::Image& img, int x_off, int w, int top_band, const std::string& title,
                const std::vector<double>& xs, const std::vector<Series>& series, double y_lo, double y_hi,
                double y_step, bool legend_top, int s) {
  // Ticks: every y_step from y_lo to y_hi; whole epochs over the epochs logged.
  std::vector<double> y_ticks;
  for (int k = 0; y_lo + k * y_step <= y_hi + y_step * 1e-9; k++) y_ticks.push_back(y_lo + k * y_step);
  double e0 = 1, e1 = 2;
  if (!xs.empty()) {
    e0 = *std::min_element(xs.begin(), xs.end());
    e1 = *std::max_element(xs.begin(), xs.end());
  }
  if (e1 - e0 < 1) {  // one epoch: center it
    e0 -= 1;
    e1 += 1;
  }
  const int64_t x_step = nice_int_step(e1 - e0, 8);
  std::vector<double> x_ticks;
  for (int64_t t = int64_t(std::ceil(e0 / double(x_step))) * x_step; double(t) <= e1; t += x_step) {
    x_ticks.push_back(double(t));
  }

  int label_w = 0;
  for (double t : y_ticks) label_w = std::max(label_w, text_width(tick_label(t, y_step), s));
  Frame f;
  f.left = x_off + label_w + 14 * s;
  f.right = x_off + w - 12 * s;
  f.top = top_band + 18 * s;
  f.bottom = img.height - 28 * s;
  // A little room around the data, so the markers at the ends are not cut by the frame.
  const double xpad = (e1 - e0) * 0.03, ypad = (y_hi - y_lo) * 0.03;
  f.x0 = e0 - xpad;
  f.x1 = e1 + xpad;
  f.y0 = y_lo - ypad;
  f.y1 = y_hi + ypad;

  for (double t : y_ticks) {
    const int y = int(std::lround(f.py(t)));
    hline(img, f.left, f.right, y, kGrid);
    hline(img, f.left - 3 * s, f.left - 1, y, kAxis);
    const std::string label = tick_label(t, y_step);
    draw_text(img, f.left - 5 * s - text_width(label, s), y - 7 * s / 2, label, s, kInk);
  }
  for (double t : x_ticks) {
    const int x = int(std::lround(f.px(t)));
    vline(img, x, f.top, f.bottom, kGrid);
    vline(img, x, f.bottom + 1, f.bottom + 3 * s, kAxis);
    const std::string label = tick_label(t, 1);
    draw_text(img, x - text_width(label, s) / 2, f.bottom + 5 * s, label, s, kInk);
  }
  // The frame around the plot area.
  hline(img, f.left, f.right, f.top, kAxis);
  hline(img, f.left, f.right, f.bottom, kAxis);
  vline(img, f.left, f.top, f.bottom, kAxis);
  vline(img, f.right, f.top, f.bottom, kAxis);
  // Inside the frame only: one pixel in from each edge.
  Frame inner = f;
  inner.left += 1;
  inner.right -= 1;
  inner.top += 1;
  inner.bottom -= 1;
  const bool markers = xs.size() <= 40;
  for (const Series& e : series) draw_series(img, inner, xs, e, 0.6 * s + 0.2, markers);
  draw_legend(img, f, series, legend_top, s);

  const std::string x_label = "epoch";
  draw_text(img, (f.left + f.right - text_width(x_label, s)) / 2, f.bottom + 17 * s, x_label, s, kInk);
  draw_text(img, (f.left + f.right - text_width(title, s)) / 2, top_band + 6 * s, title, s, kInk);
}

}  // namespace

data::Image render_curves(const std::vector<EpochRow>& rows, const std::string& title, int width, int height) {
  LEUKO_CHECK(width >= 200 && height >= 150, "render_curves: ", width, "x", height, " is too small a picture");
  // Text scale: 2 (10x14-pixel letters) for the default size, 1 for small pictures.
  const int s = height >= 360 && width >= 720 ? 2 : 1;
  data::Image img(height, width);
  fill_rect(img, 0, 0, width, height, kWhite);

  std::vector<double> xs;
  Series train_loss{"train loss", kBlue, {}}, val_loss{"val loss", kOrange, {}};
  Series val_acc{"val accuracy", kGreen, {}}, val_f1{"val F1", kRed, {}}, train_acc{"train accuracy", kPurple, {}};
  bool any_train_acc = false;
  double loss_max = 0;
  for (const EpochRow& r : rows) {
    xs.push_back(double(r.epoch));
    train_loss.y.push_back(r.train_loss);
    val_loss.y.push_back(r.val_loss);
    val_acc.y.push_back(r.val_acc);
    val_f1.y.push_back(r.val_f1);
    train_acc.y.push_back(r.train_acc);
    any_train_acc = any_train_acc || std::isfinite(r.train_acc);
    for (double v : {r.train_loss, r.val_loss}) {
      if (std::isfinite(v)) loss_max = std::max(loss_max, v);
    }
  }

  int top_band = 0;
  if (!title.empty()) {
    const int ts = text_width(title, s) <= width - 20 ? s : 1;  // a long title in small letters
    draw_text(img, (width - text_width(title, ts)) / 2, 6 * s, title, ts, kInk);
    top_band = 7 * ts + 6 * s;
  }
  // Losses from 0 to a round number above the largest; accuracy and F1 on the fixed 0..1.
  if (!(loss_max > 0)) loss_max = 1;
  const double loss_step = nice_step(loss_max, 5);
  const double loss_top = std::ceil(loss_max / loss_step - 1e-9) * loss_step;
  const int half = width / 2;
  draw_panel(img, 0, half, top_band, "loss", xs, {train_loss, val_loss}, 0, loss_top, loss_step, true, s);
  std::vector<Series> right{val_acc, val_f1};
  if (any_train_acc) right.push_back(train_acc);
  draw_panel(img, half, width - half, top_band, "validation accuracy and F1", xs, right, 0, 1, 0.2, false, s);
  return img;
}

void write_curves_png(const std::string& path, const std::vector<EpochRow>& rows, const std::string& title, int width,
                      int height) {
  data::write_image(path, render_curves(rows, title, width, height));
}

}  // namespace leuko::cli
