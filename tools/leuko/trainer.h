// The training loop behind `leuko train`: data, split, model, optimizer, schedule, the epochs
// with validation, checkpoints, the log and the plot, and the final test of the best model.
//
// Every file of the run folder is written atomically (tools/leuko/run_config.h), after each
// epoch. Ctrl-C (SIGINT or SIGTERM) lets the current step finish, saves last.safetensors with
// the position inside the epoch and stops; `--resume RUN` continues exactly where it stopped.
// A NaN or infinite loss stops the run at once with the step that produced it, keeping the
// last good checkpoint (that of the previous epoch).
#pragma once

#include <string>

#include "tools/leuko/run_config.h"

namespace leuko::cli {

struct TrainOptions {
  RunConfig config;         // the settings (ignored on resume, except epochs, which may extend the run)
  std::string run_dir;      // where to write; empty: runs/<model>-<date>-<time>
  std::string resume;       // a run folder to continue
  std::string init;         // a weights file to start from (e.g. exported by tools/torch_export.py)
  bool force = false;       // allow a run folder that already holds a run
  bool skip_bad = false;    // skip (and count) images that fail to decode instead of stopping
  bool quiet = false;       // no progress output
  bool extend = false;      // on resume, take config.epochs as the new total
  int64_t stop_after = 0;   // stop as Ctrl-C would after this many optimizer steps (0: never)
  bool test_at_end = true;  // evaluate the best checkpoint on the test split at the end
};

struct TrainResult {
  std::string run_dir;
  TrainState state;
  bool interrupted = false;  // stopped by a signal or stop_after; resumable
  double test_metric = 0;    // the best checkpoint's test metric (config.best_metric), when tested
  std::string summary;       // the final report that was printed
};

TrainResult train(const TrainOptions& options);

// Asks a running train() to stop after its current step (what SIGINT does).
void request_stop();

}  // namespace leuko::cli
