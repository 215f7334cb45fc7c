// The training loop behind `leuko train`: data, split, model, optimizer, schedule, the epochs
// with validation, checkpoints, the log and the plot, and the final test of the best model.
//
// Every file of the run folder is written atomically (tools/leuko/run_config.h), after each
// epoch, last.safetensors last: it is the commit point, so a run killed at any moment (SIGKILL
// included) resumes from a checkpoint whose log.csv rows and best.safetensors are all there
// (rows of a later epoch are dropped and redone; a redone epoch gives the same bits). Temporary
// files a killed write left behind ("*.tmp") are removed, and named, when the folder is used
// again. Ctrl-C (SIGINT or SIGTERM) lets the current step finish, saves last.safetensors with
// the position inside the epoch and stops; `--resume RUN` continues exactly where it stopped.
// A second signal before then kills the process at once, as SIGKILL would.
// A NaN or infinite loss stops the run, naming the step that produced it, and keeps the last
// good checkpoint (that of the previous epoch). On a GPU the loss is read one step late
// (StepReadback: no step waits for the host), so one more step has run in memory by then;
// nothing of it is saved.
//
// Out of memory: the first step of a run (or of a resumed run) is where a batch that does not
// fit shows itself. Then the trainer restores the model and optimizer as they were before it,
// finds the largest batch that fits by trying real steps (largest_fitting_batch), and stops
// with one line (out_of_memory_message), writing nothing.
//
// Determinism: config.deterministic sets tensor/device.h's set_deterministic for the run; the
// CPU gives the same bits on every run with the same seed anyway (tests/tools/test_reliability.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
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
  int64_t nan_at_step = 0;  // tests: this optimizer step's loss (1-based, counted over the run) becomes NaN
  bool graph = false;       // GPU: replay the step recorded as a CUDA graph (tools/leuko/graph_step.h)
};

struct TrainResult {
  std::string run_dir;
  TrainState state;
  bool interrupted = false;  // stopped by a signal or stop_after; resumable
  double test_metric = 0;    // the best checkpoint's test metric (config.best_metric), when tested
  std::string summary;       // the final report that was printed
  int64_t graph_steps = 0;   // with --graph: the steps this process ran as CUDA graph replays
};

TrainResult train(const TrainOptions& options);

// Asks a running train() to stop after its current step (what SIGINT does).
void request_stop();

// ---- Out of memory -------------------------------------------------------------------------

// The largest batch size below `failed` for which `fits(size)` answers true, or 0 when not
// even `smallest` does. Halves from `failed` until a size fits, then searches between that size
// and the last one that failed, to the exact size. `fits` runs one real training step at that
// size (false on OutOfMemory) and leaves nothing behind; every size returned was answered true
// by it, so the size reported is one that was seen to fit.
int64_t largest_fitting_batch(int64_t failed, int64_t smallest, const std::function<bool(int64_t)>& fits);

// The one line a run that ran out of memory stops with, e.g.
//   out of GPU memory at --batch 256 (asked for 1.2 GiB with 75.3 GiB in use); --batch 96
//   fits on this GPU: run again with --batch 96
// `asked`: the allocation that failed; `in_use`: the bytes of live tensors at the step's peak;
// `fits`: largest_fitting_batch's answer (0: none). `resumed`: a resumed run keeps its batch
// size, so the advice is a new run.
std::string out_of_memory_message(Device device, int64_t batch, size_t asked, size_t in_use, int64_t fits,
                                  bool resumed = false);

}  // namespace leuko::cli
