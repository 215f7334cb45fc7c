#include "tools/leuko/checkpoint_writer.h"

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
  for (const auto& [name, t] : tensors) {
    // A GPU tensor's copy to the host is new memory; a CPU tensor is cloned, since the next
    // optimizer step changes it in place.
    const Tensor d = t.detach();
    job.tensors.emplace_back(name, d.device() == Device::CPU ? d.clone() : d.cpu());
  }
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (latest_only) {
      for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
        if (it->latest_only && it->path == path) {
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
    job.tensors.clear();  // give the host memory back before the next job
    lock.lock();
    if (failed && !error_) error_ = failed;
    writing_ = false;
    changed_.notify_all();
  }
}

}  // namespace leuko::cli
