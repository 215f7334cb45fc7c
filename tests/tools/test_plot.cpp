// The training log and its picture (tools/leuko/plot.h): log.csv round trips and its errors,
// the bitmap font, and curves.png (written, decodable, the right size, each curve's colour in
// its panel, NaN values left out).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "data/data_helpers.h"
#include "data/image.h"
#include "tools/leuko/plot.h"

using namespace leuko;
using leuko::cli::EpochRow;

namespace {

std::vector<EpochRow> sample_rows(int n, bool train_acc = true) {
  std::vector<EpochRow> rows;
  for (int e = 1; e <= n; e++) {
    EpochRow r;
    r.epoch = e;
    r.train_loss = 0.7 * std::exp(-e / 4.0) + 0.05;
    r.val_loss = 0.6 * std::exp(-e / 5.0) + 0.15;
    r.train_acc = train_acc ? 1 - 0.5 * std::exp(-e / 3.0) : NAN;
    r.val_acc = 0.9 - 0.4 * std::exp(-e / 4.0);
    r.val_precision = 0.85 - 0.3 * std::exp(-e / 4.0);
    r.val_recall = 0.8 - 0.3 * std::exp(-e / 4.0);
    r.val_f1 = 0.82 - 0.45 * std::exp(-e / 4.0);
    r.lr = 1e-3 * std::cos(e / double(n));
    r.seconds = 12.5 * e;
    rows.push_back(r);
  }
  return rows;
}

// Pixels of exactly this colour in columns [x0, x1).
int64_t count_colour(const data::Image& img, int x0, int x1, uint8_t r, uint8_t g, uint8_t b) {
  int64_t n = 0;
  for (int y = 0; y < img.height; y++) {
    for (int x = x0; x < x1; x++) {
      const uint8_t* p = img.at(y, x);
      n += p[0] == r && p[1] == g && p[2] == b;
    }
  }
  return n;
}

// Both NaN, or equal to within `rel` relative.
bool same(double a, double b, double rel) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b));
}

}  // namespace

TEST_CASE("log.csv: header, round trip, atomic write") {
  test::TempDir dir;
  std::vector<EpochRow> rows = sample_rows(5);
  rows[0].train_acc = NAN;  // not measured
  rows[1].lr = 1.2345678912e-7;
  rows[2].seconds = 98765.4321;
  const std::string path = dir / "log.csv";
  cli::write_log_csv(path, rows);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));  // renamed into place
  const std::vector<uint8_t> bytes = test::read_bytes(path);
  const std::string text(bytes.begin(), bytes.end());
  CHECK(text.rfind("epoch,train_loss,train_acc,val_loss,val_acc,val_precision,val_recall,val_f1,lr,seconds\n", 0) == 0);
  CHECK(text.find("\n1,") != std::string::npos);
  CHECK(text.find(",nan,") != std::string::npos);  // train_acc of epoch 1
  CHECK(text == cli::log_csv_text(rows));

  const std::vector<EpochRow> back = cli::read_log_csv(path);
  REQUIRE(back.size() == rows.size());
  for (size_t i = 0; i < rows.size(); i++) {
    CAPTURE(i);
    const EpochRow &a = rows[i], &b = back[i];
    CHECK(a.epoch == b.epoch);
    // %.8g keeps 8 significant digits: a relative error of at most half a unit of the 8th,
    // 5e-8 (for a leading digit 1; less for larger ones).
    for (auto [x, y] : {std::pair{a.train_loss, b.train_loss}, {a.train_acc, b.train_acc}, {a.val_loss, b.val_loss},
                        {a.val_acc, b.val_acc}, {a.val_precision, b.val_precision}, {a.val_recall, b.val_recall},
                        {a.val_f1, b.val_f1}, {a.lr, b.lr}, {a.seconds, b.seconds}}) {
      CHECK(same(x, y, 5e-8));
    }
  }
  CHECK(std::isnan(back[0].train_acc));
  // Written again from what was read: the same text (a resumed run rewrites the log).
  CHECK(cli::log_csv_text(back) == text);
  // No rows: the header alone, read back as nothing.
  cli::write_log_csv(path, {});
  CHECK(cli::read_log_csv(path).empty());
}

TEST_CASE("log.csv: errors name the file and the line") {
  test::TempDir dir;
  const std::string path = dir / "log.csv";
  test::check_error([&] { cli::read_log_csv(dir / "missing.csv"); }, {"missing.csv", "cannot open"});
  auto write = [&](const std::string& s) { test::write_bytes(path, std::vector<uint8_t>(s.begin(), s.end())); };
  write("epoch,loss\n1,2\n");
  test::check_error([&] { cli::read_log_csv(path); }, {path, "not a leuko training log"});
  const std::string header = cli::kLogCsvHeader;
  write(header + "\n1,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.001,3\n2,0.5,0.5\n");
  test::check_error([&] { cli::read_log_csv(path); }, {path + ":3", "3 fields", "10"});
  write(header + "\n1,0.5,abc,0.5,0.5,0.5,0.5,0.5,0.001,3\n");
  test::check_error([&] { cli::read_log_csv(path); }, {path + ":2", "field 3", "'abc'", "not a number"});
  write(header + "\n1.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.001,3\n");
  test::check_error([&] { cli::read_log_csv(path); }, {path + ":2", "epoch", "whole number"});
  // Windows line ends and a trailing blank line are fine.
  write(header + "\r\n7,0.5,nan,0.25,0.5,0.5,0.5,0.5,0.001,3\r\n\r\n");
  const std::vector<EpochRow> rows = cli::read_log_csv(path);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].epoch == 7);
  CHECK(rows[0].val_loss == 0.25);
  CHECK(std::isnan(rows[0].train_acc));
}

TEST_CASE("plot: the bitmap font") {
  for (char c = '0'; c <= '9'; c++) CHECK(cli::font_has(c));
  for (char c = 'a'; c <= 'z'; c++) CHECK(cli::font_has(c));
  for (char c = 'A'; c <= 'Z'; c++) CHECK(cli::font_has(c));
  for (char c : std::string(" .-:,()/%+=_")) CHECK(cli::font_has(c));
  CHECK_FALSE(cli::font_has('#'));
  CHECK(cli::text_width("", 2) == 0);
  CHECK(cli::text_width("a", 1) == 5);
  CHECK(cli::text_width("abc", 2) == (3 * 6 - 1) * 2);

  // Which pixels light up, from the glyph definitions: '-' is the middle row (5 pixels), '.' a
  // 2x2 dot at the bottom, ':' two such dots; at scale 2 each pixel is a 2x2 square.
  const uint8_t ink[3] = {0, 0, 0};
  auto lit = [&](const std::string& s, int scale) {
    data::Image img = test::solid_image(20, 40, 255, 255, 255);
    cli::draw_text(img, 1, 1, s, scale, ink);
    std::vector<std::pair<int, int>> px;
    for (int y = 0; y < img.height; y++) {
      for (int x = 0; x < img.width; x++) {
        if (img.at(y, x)[0] == 0) px.emplace_back(y, x);
      }
    }
    return px;
  };
  CHECK(lit("-", 1) == std::vector<std::pair<int, int>>{{4, 1}, {4, 2}, {4, 3}, {4, 4}, {4, 5}});
  CHECK(lit(".", 1) == std::vector<std::pair<int, int>>{{6, 2}, {6, 3}, {7, 2}, {7, 3}});
  CHECK(lit(":", 1).size() == 8);
  CHECK(lit("-", 2).size() == 20);
  CHECK(lit("-.", 1).size() == 9);  // side by side, no overlap
  // '1': 10 pixels (the stem, its flag, the foot); an unknown character: a hollow 5x7 box (20).
  CHECK(lit("1", 1).size() == 10);
  CHECK(lit("#", 1).size() == 20);
  // 'p' hangs 2 rows below the others: its lowest pixel is row 1 + 6 + 2.
  CHECK(lit("p", 1).back().first == 9);
  CHECK(lit("o", 1).back().first == 7);
}

TEST_CASE("plot: curves.png is a decodable 960x480 PNG with every curve in its panel") {
  if (!data::have_image_codecs()) {
    MESSAGE("built without stb: the PNG part is not tested");
    return;
  }
  test::TempDir dir;
  const std::vector<EpochRow> rows = sample_rows(12);
  const std::string path = dir / "curves.png";
  cli::write_curves_png(path, rows, "resnet18 (binary)");
  REQUIRE(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  const data::Image img = data::decode_image(path);
  CHECK(img.width == 960);
  CHECK(img.height == 480);
  CHECK(img == cli::render_curves(rows, "resnet18 (binary)"));  // PNG is lossless

  // Non-trivial content: mostly white background, with text, grid and five curve colours.
  std::set<uint32_t> colours;
  int64_t white = 0;
  for (int y = 0; y < img.height; y++) {
    for (int x = 0; x < img.width; x++) {
      const uint8_t* p = img.at(y, x);
      colours.insert(uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2]);
      white += p[0] == 255 && p[1] == 255 && p[2] == 255;
    }
  }
  CHECK(colours.size() > 20);  // antialiased edges blend colours
  CHECK(white > int64_t(img.width) * img.height / 2);
  CHECK(white < int64_t(img.width) * img.height * 98 / 100);

  // Each series' exact colour (fully covered line centres and its legend swatch) in its own
  // panel and not in the other: left half losses, right half accuracy and F1.
  const int half = img.width / 2;
  struct C {
    uint8_t r, g, b;
    bool left;
  };
  for (const C& c : {C{31, 119, 180, true}, C{255, 127, 14, true}, C{44, 160, 44, false}, C{214, 39, 40, false},
                     C{148, 103, 189, false}}) {
    CAPTURE(int(c.r));
    CHECK(count_colour(img, c.left ? 0 : half, c.left ? half : img.width, c.r, c.g, c.b) > 200);
    CHECK(count_colour(img, c.left ? half : 0, c.left ? img.width : half, c.r, c.g, c.b) == 0);
  }
  // A higher loss is drawn higher: the train loss colour's topmost pixel in the plot (below the
  // legend's rows) falls as the loss falls; compare the first and the last epoch's columns.
  auto top_of = [&](int x0, int x1, uint8_t r, uint8_t g, uint8_t b) {
    for (int y = 0; y < img.height; y++) {
      for (int x = x0; x < x1; x++) {
        const uint8_t* p = img.at(y, x);
        if (p[0] == r && p[1] == g && p[2] == b) return y;
      }
    }
    return -1;
  };
  const int first = top_of(60, 130, 31, 119, 180), last = top_of(400, 470, 31, 119, 180);
  CHECK(first >= 0);
  CHECK(last > first);
}

TEST_CASE("plot: NaN values are left out, and small or empty logs still draw") {
  // No training accuracy at all: no purple series (nor its legend entry).
  const data::Image no_acc = cli::render_curves(sample_rows(6, false));
  CHECK(count_colour(no_acc, 0, no_acc.width, 148, 103, 189) == 0);
  CHECK(count_colour(no_acc, no_acc.width / 2, no_acc.width, 44, 160, 44) > 100);
  // A NaN loss in the middle: still drawn (the other points), no throw.
  std::vector<EpochRow> gap = sample_rows(6);
  gap[2].val_loss = NAN;
  gap[3].train_loss = INFINITY;
  const data::Image g = cli::render_curves(gap);
  CHECK(count_colour(g, 0, g.width / 2, 255, 127, 14) > 50);
  // One epoch, no epochs, a small picture.
  const data::Image one = cli::render_curves(sample_rows(1), "one");
  CHECK(count_colour(one, 0, one.width / 2, 31, 119, 180) > 10);  // the dot and the legend swatch
  const data::Image none = cli::render_curves({});
  CHECK(none.width == 960);
  const data::Image small = cli::render_curves(sample_rows(30), "", 480, 240);
  CHECK(small.width == 480);
  CHECK(small.height == 240);
  CHECK(count_colour(small, 0, 240, 31, 119, 180) > 50);
  test::check_error([] { cli::render_curves({}, "", 100, 100); }, {"render_curves", "100x100", "too small"});
}
