// Learning-rate schedules, as PyTorch's epoch-level schedulers in closed form, with an optional
// linear warm-up over the first iterations:
//   constant                     lr = base
//   step:S[:G]                   lr = base * G^floor(epoch / S)              (StepLR, G = 0.1)
//   multistep:M1,M2,...[:G]      lr = base * G^(number of milestones <= epoch) (MultiStepLR)
//   cosine[:ETA_MIN]             lr = eta_min + (base - eta_min) (1 + cos(pi epoch / epochs)) / 2
//                                                                            (CosineAnnealingLR)
// Warm-up multiplies by a factor rising linearly from `warmup_start` to 1 over `warmup_steps`
// iterations (LinearLR stepped per iteration).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace leuko::optim {

struct Schedule {
  std::string kind = "constant";  // constant, step, multistep, cosine
  int64_t step_size = 30;
  std::vector<int64_t> milestones;
  double gamma = 0.1;
  double eta_min = 0;
  int64_t warmup_steps = 0;
  double warmup_start = 0.1;

  // lr for iteration `step` (counted from 0) of a run of `epochs` epochs of `steps_per_epoch`.
  double lr_at(double base_lr, int64_t step, int64_t steps_per_epoch, int64_t epochs) const;
  // "cosine", "step:30:0.1", ...: parses the text of --schedule; throws naming the flag.
  static Schedule parse(const std::string& text);
  std::string str() const;
};

}  // namespace leuko::optim
