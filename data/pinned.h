// Page-locked ("pinned") host memory and asynchronous copies, for the loader (and the trainer's
// one-step-late reads of the loss).
//
// The GPU's copy engine reads pinned memory directly, so a batch copy runs in the background
// on leuko's stream while the host builds the next batch; from ordinary (pageable) memory the
// driver must first stage the bytes itself. The loader records an event after each copy and
// waits for it before it writes into the same buffer again.
//
// CUDA builds only: these are defined in data/cuda/pinned.cpp, and called under LEUKO_WITH_CUDA.
#pragma once

#include <cstddef>

namespace leuko::data::pinned {

void* alloc(size_t bytes);  // cudaHostAlloc; nullptr when the driver refuses (fall back to malloc)
void free(void* ptr);
void* event_create();  // a cudaEvent_t without timing
void event_destroy(void* event);
// cudaMemcpyAsync(dst, src) on leuko::cuda::stream(), then records `event` after it.
void copy_to_device_async(void* dst, const void* src, size_t bytes, void* event);
// cudaMemcpyAsync(dst, src) to the host on leuko::cuda::stream(), then records `event` after it:
// `dst` (pinned) holds the bytes once event_wait(event) returns, and the host need not wait for
// the work queued after the copy (tools/leuko/step_readback.h).
void copy_to_host_async(void* dst, const void* src, size_t bytes, void* event);
// Waits until the work before the event's last record is done (at once if never recorded).
void event_wait(void* event);

}  // namespace leuko::data::pinned
