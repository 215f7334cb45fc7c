// A progress line for long work: "epoch 3/30  45/81 [=========>         ]  loss 0.3412
// 412 img/s  0:35 left". On a terminal it redraws one line; into a file or pipe it prints a
// line at every tenth of the way, so logs stay readable.
#pragma once

#include <chrono>
#include <string>

namespace leuko::cli {

class Progress {
 public:
  // `total` units of work (steps), described by `label` ("epoch 3/30").
  Progress(int64_t total, std::string label, bool quiet = false);
  // `done` units so far; `text` goes after the bar ("loss 0.3412  412 img/s").
  void update(int64_t done, const std::string& text);
  // Ends the line with `text` and the time since the start, "(0:06 in all)" (the next output
  // starts on a fresh one).
  void finish(const std::string& text);
  double seconds() const;

 private:
  int64_t total_;
  std::string label_;
  bool quiet_, tty_;
  int64_t last_tenth_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1:02:03" or "4:05".
std::string format_duration(double seconds);

}  // namespace leuko::cli
