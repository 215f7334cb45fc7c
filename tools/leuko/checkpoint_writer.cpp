#include "tools/leuko/checkpoint_writer.h"

#include <algorithm>
#include <cstdio>

#include "tensor/safetensors.h"

namespace leuko::cli {

CheckpointWriter::CheckpointWriter() : thread_([this] { run(); }) {}

CheckpointWriter::~CheckpointWriter() {
  hold(false);  // a held writer would never empty its queue
  try {
    wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "leuko: %s\n", e.what());
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    quit_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void CheckpointWriter::save(const std::string& path, const NamedTensors& tensors,
                            const std::map<std::string, std::string>& metadata, bool background, bool latest_only) {
  if (!background) {
    wait();
    save_safetensors(path, tensors, metadata);
    return;
  }
  Job job{path, {}, metadata, latest_only};
  job.tensors.reserve(tensors.size());
  // A copy on the host (of a CPU tensor too: the next optimizer step changes it in place).
  size_t bytes = 0;
  for (const auto& [name, t] : tensors) {
    job.tensors.emplace_back(name, host_copy(t.detach()));
    bytes += t.nbytes();
  }
  {
    std::unique_lock<std::mutex> lock(mutex_);
    largest_job_ = std::max(largest_job_, bytes);
    if (latest_only) {
      for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
        if (it->latest_only && it->path == path) {
          keep(it->tensors);
          jobs_.erase(it);  // superseded before it started: this one writes the newer state
          break;            // (at most one is ever queued per path)
        }
      }
    }
    changed_.wait(lock, [&] { return jobs_.size() < kMaxQueued; });
    jobs_.push_back(std::move(job));
  }
  changed_.notify_all();
}

Tensor CheckpointWriter::host_copy(const Tensor& t) {
  Tensor host;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = spare_.begin(); it != spare_.end(); ++it) {
      if (it->shape() == t.shape() && it->dtype() == t.dtype() && it->memory_format() == t.memory_format()) {
        host = std::move(*it);
        spare_.erase(it);
        break;
      }
    }
  }
  if (!host.defined()) return t.device() == Device::CPU ? t.clone() : t.cpu();
  host.copy_(t);
  return host;
}

void CheckpointWriter::keep(NamedTensors& tensors) {
  for (auto& [name, t] : tensors) spare_.push_back(std::move(t));
  tensors.clear();
  // At most two checkpoints' worth (an epoch's best and last): when writes lag and more were in
  // use at once, the oldest kept copies go back.
  size_t kept = spare_total();
  while (kept > 2 * largest_job_ && !spare_.empty()) {
    kept -= spare_.front().nbytes();
    spare_.erase(spare_.begin());
  }
}

size_t CheckpointWriter::spare_total() const {
  size_t bytes = 0;
  for (const Tensor& t : spare_) bytes += t.nbytes();
  return bytes;
}

size_t CheckpointWriter::spare_bytes() {
  std::lock_guard<std::mutex> lock(mutex_);
  return spare_total();
}

void CheckpointWriter::check() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void CheckpointWriter::hold(bool on) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    held_ = on;
  }
  changed_.notify_all();
}

size_t CheckpointWriter::queued() {
  std::lock_guard<std::mutex> lock(mutex_);
  return jobs_.size();
}

void CheckpointWriter::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return jobs_.empty() && !writing_; });
  spare_.clear();  // nothing is queued: give the host memory back
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void CheckpointWriter::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return quit_ || (!jobs_.empty() && !held_); });
    if (jobs_.empty()) return;  // quit, and nothing left to write
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    changed_.notify_all();  // a place in the queue for a save() waiting for one
    writing_ = true;
    lock.unlock();
    std::exception_ptr failed;
    try {
      save_safetensors(job.path, job.tensors, job.metadata);
    } catch (...) {
      failed = std::current_exception();
    }
    lock.lock();
    keep(job.tensors);  // for the next save() to copy into
    if (failed && !error_) error_ = failed;
    writing_ = false;
    changed_.notify_all();
  }
}

}  // namespace leuko::cli
