// Checkpoints written beside the training. At the end of an epoch the trainer hands over the
// weights (and the optimizer's state); they are copied to the host at once, and a thread writes
// the file (atomically, leuko::save_safetensors) while the next epoch trains.
//
// Why: a checkpoint with Adam's state holds three copies of the weights (VGG16 for two classes:
// 1.61 GB). Written in line, best.safetensors and last.safetensors cost about 3.5 s of every
// 6.4 s VGG16 epoch on an H200, and 1.5 s of every 1.8 s AlexNet epoch (docs/PERFORMANCE.md,
// version 2); the copy to the host is a small part of that, the write and the flush the rest.
//
// Order is kept: writes land one at a time in the order they were asked for, so best.safetensors
// of an epoch is on disk before its last.safetensors, and a killed run still finds its last
// checkpoint whole (the old one or the new one).
//
// The host copies are kept for the next checkpoint (every epoch's have the same shapes): a fresh
// allocation of a large tensor is fresh pages from the kernel, each faulted in as the copy first
// writes it: 0.32 s for AlexNet's 0.7 GB on a 2-core machine, against 0.04 s into pages already
// touched (docs/PERFORMANCE.md, version 21). What is kept is at most two checkpoints' worth (the
// largest asked for, twice: an epoch's best and last); wait() gives it back.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "layers/module.h"

namespace leuko::cli {

class CheckpointWriter {
 public:
  CheckpointWriter();
  // Waits for the writes in flight; an error of theirs is printed (a destructor cannot throw).
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Copies `tensors` to the host now (the caller may change them as soon as this returns) and
  // queues the write of `path`. With `background` false it writes `path` before returning (after
  // the queued writes): the trainer does so on the CPU, where the copy would be a second set of
  // weights in the memory the training uses (and counts against LEUKO_MEMORY_LIMIT_MIB) and a
  // step takes far longer than a write anyway.
  //
  // `latest_only` (last.safetensors): only the newest write of `path` matters, so one queued for
  // it and not yet started is dropped, and the new one joins the back of the queue (what was
  // asked for before it, such as the epoch's best.safetensors, still lands first). Why: an
  // AlexNet epoch on an H200 trains in 0.2 s and its last.safetensors (weights and AdamW's two
  // moments, 0.7 GB) takes longer to write; waiting for each write made the writes the run's
  // pace (docs/PERFORMANCE.md, version 15). At most kMaxQueued writes wait at a time (the one
  // being written aside): save() blocks for a place, which bounds the host copies.
  void save(const std::string& path, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
            bool background = true, bool latest_only = false);
  // Blocks until every queued write is on disk, and gives the kept host copies back; throws the
  // first write error since the last wait() or check().
  void wait();
  // Throws the first write error since the last wait() or check(), without waiting.
  void check();

  // For tests: while held, the thread starts no new write, as when the disk is slow; and how
  // many writes are queued, not started.
  void hold(bool on);
  size_t queued();
  size_t spare_bytes();  // host copies kept for reuse

  static constexpr size_t kMaxQueued = 2;

 private:
  struct Job {
    std::string path;
    NamedTensors tensors;  // host copies
    std::map<std::string, std::string> metadata;
    bool latest_only = false;
  };
  void run();
  Tensor host_copy(const Tensor& t);  // t's values in a kept host tensor of its kind, or a new one
  void keep(NamedTensors& tensors);    // a finished or dropped job's copies, for reuse (mutex_ held)
  size_t spare_total() const;          // bytes in spare_ (mutex_ held)

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Job> jobs_;  // queued, not yet started
  std::vector<Tensor> spare_;  // host copies of finished or dropped jobs, for the next saves
  size_t largest_job_ = 0;     // bytes of the largest job asked for: spare_ keeps at most twice that
  bool writing_ = false;  // the thread is writing a job
  bool quit_ = false;
  bool held_ = false;     // hold(true): start no new write
  std::exception_ptr error_;  // the first failed write
  std::thread thread_;
};

}  // namespace leuko::cli
