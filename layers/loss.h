// Losses: log_softmax, cross_entropy (fused softmax + negative log-likelihood, with class
// weights, label smoothing and ignore_index) and bce_with_logits, as torch.nn.functional's.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace leuko {

enum class LossReduction { none, mean, sum };

// log(softmax(x)) along `dim`, which must be the last dimension (-1 or rank - 1), e.g. (N, C)
// with dim 1. Stable: the row max is subtracted before exp. Backward: g - softmax * sum(g).
Tensor log_softmax(const Tensor& x, int64_t dim = -1);

struct CrossEntropyOptions {
  Tensor weight;                 // (C,) class weights, or undefined (all 1)
  double label_smoothing = 0.0;  // in [0, 1]
  LossReduction reduction = LossReduction::mean;
  int64_t ignore_index = -100;  // rows with this target count for nothing
};

// logits (N, C) float, targets (N,) int64 class indices in [0, C) (or ignore_index).
// Exactly torch.nn.functional.cross_entropy: per row i with target t,
//   loss_i = (1 - s) * w[t] * (-log p[i, t]) + s / C * sum_c w[c] * (-log p[i, c]),
// and `mean` divides sum_i loss_i by sum_i w[t_i] (the count of rows when unweighted): both
// terms by the summed target weights, as PyTorch. `none` gives (N,), the others a scalar.
// The softmax is computed once; the backward is (softmax - smoothed one-hot), weighted.
// A target outside [0, C) throws on the CPU; on the GPU (no host synchronisation) it makes that
// row's loss, hence a mean or sum, NaN. The class weights get no gradient (nor in PyTorch).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options = {});

// torch.nn.CrossEntropyLoss: cross_entropy with options fixed at construction.
struct CrossEntropyLoss {
  CrossEntropyOptions options;
  Tensor operator()(const Tensor& logits, const Tensor& targets) const {
    return cross_entropy(logits, targets, options);
  }
};

// logits, targets: the same shape, float (targets in [0, 1], usually). Elementwise
//   loss = (1 - t) * x + (1 + (pos_weight - 1) * t) * log(1 + exp(-x)),
// computed as max(-x, 0) + log1p(exp(-|x|)) for log(1 + exp(-x)): stable for any x.
// pos_weight: (C,) weights of the positive class along the last dimension (C = logits.size(-1)),
// or undefined. Reduction mean (over all elements), sum, or none (the shape of logits).
// Gradients for logits, targets and pos_weight, as PyTorch.
Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, const Tensor& pos_weight = Tensor(),
                       LossReduction reduction = LossReduction::mean);

}  // namespace leuko
