// The graph (backend) API way into cuDNN's convolutions (kernels/cuda/conv2d_graph.cpp), used by
// kernels/cuda/conv2d.cpp when LEUKO_CUDNN_API=graph (kernels/conv2d.h, conv_api()).
#pragma once

#include <cudnn.h>

#include <cstddef>
#include <cstdint>

#include "kernels/conv2d.h"

namespace leuko::kernels::cuda::graph_api {

// One convolution direction, dir 0 forward (a = x, b = w, out = y), 1 backward data (a = w,
// b = dy, out = dx), 2 backward filter (a = x, b = dy, out = dw), in `type` (CUDNN_DATA_FLOAT or
// CUDNN_DATA_BFLOAT16). Plans once per geometry, type, precision, determinism and direction
// (engines needing at most `workspace_cap` bytes; timed when `benchmark`), then runs the plan.
// Returns false when no engine qualifies, a buffer is not 16-byte aligned, or the workspace
// cannot be had outside a capture: the caller then runs the legacy path, which writes all of out.
bool convolve(int dir, const Conv2dShape& s, cudnnDataType_t type, const void* a, const void* b, void* out,
              size_t workspace_cap, bool benchmark, Workspace ws);

// The convolution directions (geometry, type, direction) the graph API has planned and run; the
// rest run the legacy path, whose searches conv2d_algorithm_searches() counts with these.
// LEUKO_CUDNN_LOG=1 prints a line per search: the configurations offered, why each was passed
// over, and the plan kept.
int64_t plans();

}  // namespace leuko::kernels::cuda::graph_api
