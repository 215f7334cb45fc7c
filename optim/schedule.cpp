#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "tensor/check.h"

namespace leuko::optim {

double Schedule::lr_at(double base_lr, int64_t step, int64_t steps_per_epoch, int64_t epochs) const {
  const int64_t epoch = steps_per_epoch > 0 ? step / steps_per_epoch : 0;
  double lr = base_lr;
  if (kind == "step") {
    lr = base_lr * std::pow(gamma, double(epoch / std::max<int64_t>(1, step_size)));
  } else if (kind == "multistep") {
    const auto passed = std::count_if(milestones.begin(), milestones.end(), [&](int64_t m) { return m <= epoch; });
    lr = base_lr * std::pow(gamma, double(passed));
  } else if (kind == "cosine") {
    const double t = std::min<double>(double(epoch), double(std::max<int64_t>(1, epochs)));
    lr = eta_min + (base_lr - eta_min) * (1 + std::cos(M_PI * t / double(std::max<int64_t>(1, epochs)))) / 2;
  }
  if (warmup_steps > 0 && step < warmup_steps) {
    lr *= warmup_start + (1 - warmup_start) * double(step) / double(warmup_steps);
  }
  return lr;
}

namespace {
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) parts.push_back(item);
  return parts;
}

double number(const std::string& s, const std::string& text) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error("--schedule: '" + s + "' in '" + text + "' is not a number");
}
}  // namespace

Schedule Schedule::parse(const std::string& text) {
  Schedule s;
  std::vector<std::string> parts = split(text, ':');
  if (parts.empty()) throw Error("--schedule: empty");
  s.kind = parts[0];
  if (s.kind == "constant" && parts.size() == 1) return s;
  if (s.kind == "cosine" && parts.size() <= 2) {
    if (parts.size() == 2) s.eta_min = number(parts[1], text);
    return s;
  }
  if (s.kind == "step" && (parts.size() == 2 || parts.size() == 3)) {
    s.step_size = int64_t(number(parts[1], text));
    if (s.step_size < 1) throw Error("--schedule: step size must be at least 1 in '" + text + "'");
    if (parts.size() == 3) s.gamma = number(parts[2], text);
    return s;
  }
  if (s.kind == "multistep" && (parts.size() == 2 || parts.size() == 3)) {
    for (const auto& m : split(parts[1], ',')) s.milestones.push_back(int64_t(number(m, text)));
    if (parts.size() == 3) s.gamma = number(parts[2], text);
    return s;
  }
  throw Error("--schedule: '" + text +
              "' is not one of constant, step:SIZE[:GAMMA], multistep:M1,M2,...[:GAMMA], cosine[:ETA_MIN]");
}

std::string Schedule::str() const {
  std::ostringstream os;
  os << kind;
  if (kind == "step") os << ":" << step_size << ":" << gamma;
  if (kind == "multistep") {
    os << ":";
    for (size_t i = 0; i < milestones.size(); i++) os << (i ? "," : "") << milestones[i];
    os << ":" << gamma;
  }
  if (kind == "cosine" && eta_min != 0) os << ":" << eta_min;
  return os.str();
}

}  // namespace leuko::optim
