// The training log (log.csv) and its picture (curves.png).
//
// log.csv has one row per completed epoch, with this header:
//   epoch,train_loss,train_acc,val_loss,val_acc,val_precision,val_recall,val_f1,lr,seconds
// Numbers are written with 8 significant digits (%.8g), a missing value as "nan".
//
// curves.png is drawn here, pixel by pixel, without a plotting library: two panels side by side,
// the losses (train, validation) against the epoch on the left, the validation accuracy and F1
// (and the training accuracy, when known) on a fixed 0..1 scale on the right, with grid lines,
// tick labels, titles and legends written in a small built-in 5x7 bitmap font. Lines are
// antialiased (coverage from the distance to each segment), NaN values leave gaps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace leuko::cli {

struct EpochRow {
  int64_t epoch = 0;  // 1-based: the epoch just completed
  double train_loss = 0;
  double train_acc = 0;  // NaN when not measured
  double val_loss = 0;
  double val_acc = 0;
  double val_precision = 0, val_recall = 0, val_f1 = 0;  // malignant positive (binary), macro (subtype)
  double lr = 0;       // the learning rate at the end of the epoch
  double seconds = 0;  // training time of the epoch
};

// The header line of log.csv (without the newline).
extern const char* const kLogCsvHeader;

// The CSV text of `rows` (header first) and its atomic write (leuko::write_file_atomic).
std::string log_csv_text(const std::vector<EpochRow>& rows);
void write_log_csv(const std::string& path, const std::vector<EpochRow>& rows);
// Reads a log written by write_log_csv. Throws a one-line Error naming the file (and the line):
// missing, another header, a row with the wrong number of fields or a field that is not a number.
std::vector<EpochRow> read_log_csv(const std::string& path);

// The curves as an image of width x height (two panels of width / 2); `title`, when not empty,
// heads both panels ("resnet18 (binary): loss"). With no rows the axes are drawn empty.
data::Image render_curves(const std::vector<EpochRow>& rows, const std::string& title = "", int width = 960,
                          int height = 480);
// render_curves written as a PNG (atomically, data::write_image).
void write_curves_png(const std::string& path, const std::vector<EpochRow>& rows, const std::string& title = "",
                      int width = 960, int height = 480);

// The bitmap font, for tests and for anyone drawing text: the pixels of `text` at `scale`
// (each font pixel a scale x scale square), 6 * scale pixels per character (5 and a space),
// 7 * scale high above the baseline, and g, p, q, y 2 * scale below. Characters: digits, letters (upper and lower case), space and . - : , ( ) / % + = _
// Anything else is drawn as a hollow box.
int text_width(const std::string& text, int scale);
void draw_text(data::Image& img, int x, int y, const std::string& text, int scale, const uint8_t rgb[3]);
bool font_has(char c);

}  // namespace leuko::cli
