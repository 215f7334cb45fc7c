#include "tools/leuko/progress.h"

#include <unistd.h>

#include <cstdio>

namespace leuko::cli {

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const long s = long(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

Progress::Progress(int64_t total, std::string label, bool quiet)
    : total_(total), label_(std::move(label)), quiet_(quiet), tty_(isatty(fileno(stderr)) != 0) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, const std::string& text) {
  if (quiet_ || total_ <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double left = done > 0 ? elapsed * double(total_ - done) / double(done) : -1;
  if (tty_) {
    // Redraw at most 10 times a second: the terminal is slower than a fast GPU.
    if (done < total_ && std::chrono::duration<double>(now - last_draw_).count() < 0.1) return;
    last_draw_ = now;
    constexpr int kWidth = 24;
    const int filled = int(kWidth * done / total_);
    std::string bar(size_t(filled), '=');
    if (filled < kWidth) bar += '>' + std::string(size_t(kWidth - filled - 1), ' ');
    std::fprintf(stderr, "\r%s %5lld/%lld [%s] %s  %s left\x1b[K", label_.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), bar.c_str(), text.c_str(), format_duration(left).c_str());
    std::fflush(stderr);
    return;
  }
  const int64_t tenth = done * 10 / total_;
  if (tenth == last_tenth_ || done == total_) return;  // finish() prints the last line
  last_tenth_ = tenth;
  std::fprintf(stderr, "%s %lld/%lld %s  %s left\n", label_.c_str(), static_cast<long long>(done),
               static_cast<long long>(total_), text.c_str(), format_duration(left).c_str());
}

void Progress::finish(const std::string& text) {
  if (quiet_) return;
  // The time since the bar started: for an epoch, training, validation and checkpoints.
  std::fprintf(stderr, "%s%s %s  (%s in all)\n", tty_ ? "\r\x1b[K" : "", label_.c_str(), text.c_str(),
               format_duration(seconds()).c_str());
}

}  // namespace leuko::cli
