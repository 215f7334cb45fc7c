// What the machine offers at run time, and the precision setting.
//
// A CPU-only build, or a CUDA build on a machine without a usable GPU, answers
// cuda_available() == false and cuda_status() says why in one line; everything that needs a
// GPU checks this and fails with that line, while the CPU path keeps working.
#pragma once

#include <string>

#include "tensor/dtype.h"

namespace leuko {

bool cuda_available();
// "NVIDIA H100 80GB HBM3 (compute 9.0, 79.1 GiB)" or why there is no GPU.
std::string cuda_status();
// Throws Error with cuda_status() when no GPU can be used.
void require_cuda(const char* what);
// Wait for all queued GPU work (no-op without CUDA).
void cuda_synchronize();

// Precision of float32 math on the GPU.
//   fp32: strict IEEE float32 (cuBLAS and cuDNN without TF32): the default, so GPU results
//         compare with the CPU reference like with like.
//   tf32: float32 storage, TF32 tensor-core products.
//   bf16: mixed precision as PyTorch's autocast(bfloat16): bf16 activations and products with
//         float32 accumulation, float32 master weights (see bf16_activations()).
enum class Precision { fp32, tf32, bf16 };
void set_precision(Precision p);
Precision precision();
// True under Precision::bf16: the networks' activations are stored in bfloat16, as under
// PyTorch's autocast(bfloat16). conv2d and linear take a bf16 input (converting a float32 one)
// and return bf16, converting their float32 weights inside the op; batch norm, ReLU, pooling,
// dropout and concatenation keep their input's dtype; the losses convert their input to float32.
// Parameters, their gradients and the optimizer's state stay float32. Setting the environment
// variable LEUKO_BF16_ACTIVATIONS=0 turns this off (bf16 then means float32 tensors with bf16
// matrix products and TF32 convolutions, as before version 7 of docs/PERFORMANCE.md), for
// comparing the two.
bool bf16_activations();
// True under bf16 activations unless LEUKO_CHANNELS_LAST=0: the activations are also
// channels_last (tensor/tensor.h MemoryFormat), stored (N, H, W, C), the layout of cuDNN's
// fastest bf16 convolutions and of PyTorch's bf16 cells in tools/bench_torch.py. conv2d converts
// its input, and every op keeps its input's order (or has kernels for both).
bool channels_last_activations();
const char* precision_name(Precision p);
// Parses "fp32", "tf32" or "bf16"; throws Error naming the text otherwise.
Precision parse_precision(const std::string& text);
// Sets the precision for its lifetime and restores the previous one, exceptions included.
class PrecisionScope {
 public:
  explicit PrecisionScope(Precision p) : saved_(precision()) { set_precision(p); }
  ~PrecisionScope() { set_precision(saved_); }
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  Precision saved_;
};

// Determinism on the GPU (`leuko train --deterministic`). leuko's own kernels never use atomics
// in sums (reductions and backward scatters are gathers or fixed-order block sums), and cuBLAS
// gives the same bits on every run when, as here, one stream and one handle do all the work
// (cuBLAS guide, "Results reproducibility"; CUBLAS_WORKSPACE_CONFIG matters only with several
// streams). The one choice left to chance is cuDNN's: by default it times every convolution
// algorithm and keeps the fastest (kernels/cuda/conv2d.cpp), atomics-based backward algorithms
// included, as PyTorch's benchmark mode does: their sums, and timing noise's choice, change from
// run to run. With determinism on, cuDNN's heuristics choose among the algorithms it reports as
// deterministic: the same algorithm, and the same bits, on every run on the same GPU and
// software. Off by default; the
// CPU is deterministic whatever this says (no atomics, no OpenMP reductions: every output
// element is summed by one thread in a fixed order, whatever the number of threads).
void set_deterministic(bool on);
bool deterministic();

}  // namespace leuko
