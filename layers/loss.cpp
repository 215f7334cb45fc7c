// Losses: forward through kernels/loss.h, backward recorded beside it.
//
// The kernels give per-row (cross_entropy) or per-element (bce_with_logits) losses; the
// reduction to a scalar is the deterministic sum of layers/reduce.h, run without recording.
// One node then maps the upstream gradient straight to the logits' gradient with a fused
// kernel, instead of back through a chain of small ops.
#include "layers/loss.h"

#include "kernels/loss.h"
#include "layers/dispatch.h"
#include "layers/elementwise.h"
#include "layers/reduce.h"
#include "tensor/autograd.h"

namespace leuko {

using detail::dispatch_float;
namespace kc = kernels::cpu;
namespace kg = kernels::cuda;

namespace {
template <typename T>
T* ptr(const Tensor& t) {  // null for an undefined (optional) tensor
  return t.defined() ? t.data<T>() : nullptr;
}

// loss (any shape) reduced as asked, without recording (the caller records one node).
Tensor reduce_loss(const Tensor& loss, LossReduction reduction) {
  autograd::NoGradGuard no_grad;
  switch (reduction) {
    case LossReduction::sum:
      return sum(loss);
    case LossReduction::mean:
      return mean(loss);
    case LossReduction::none:
      break;
  }
  return loss;
}
}  // namespace

// ---- log_softmax --------------------------------------------------------------------------

Tensor log_softmax(const Tensor& x, int64_t dim) {
  // bf16 activations: the losses and their softmax run in float32, as under PyTorch's autocast
  // (a bf16 exp and sum would lose the small probabilities).
  if (x.defined() && x.dtype() == DType::bf16) return log_softmax(x.to(DType::f32), dim);
  detail::check_compatible("log_softmax", {x});
  LEUKO_CHECK(x.dim() >= 1, "log_softmax: input must have at least one dimension, got ", shape_str(x.shape()));
  LEUKO_CHECK(dim == -1 || dim == x.dim() - 1, "log_softmax: only the last dimension is supported, got dim ", dim,
              " for input ", shape_str(x.shape()));
  const int64_t C = x.size(-1), N = C > 0 ? x.numel() / C : 0;  // x viewed as (N, C)
  Tensor out = Tensor::empty_like(x);                           // (N, C)
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::log_softmax_forward(out.data<float>(), x.data<float>(), N, C));
  } else {
    dispatch_float(x, "log_softmax", [&](auto tag) {
      using T = decltype(tag);
      kc::log_softmax_forward<T>(out.data<T>(), x.data<T>(), N, C);
    });
  }
  if (autograd::needs_record({x})) {
    // Saves its output: softmax = exp(out).
    autograd::record(out, "log_softmax", {x}, [so = out.detach(), N, C](const Tensor& g, const std::vector<bool>&) {
      Tensor dx = Tensor::empty_like(g);  // (N, C)
      if (g.is_cuda()) {
        LEUKO_CUDA_BRANCH(kg::log_softmax_backward(dx.data<float>(), g.data<float>(), so.data<float>(), N, C));
      } else {
        dispatch_float(g, "log_softmax", [&](auto tag) {
          using T = decltype(tag);
          kc::log_softmax_backward<T>(dx.data<T>(), g.data<T>(), so.data<T>(), N, C);
        });
      }
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

// ---- cross_entropy ------------------------------------------------------------------------

namespace {
void check_cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& o) {
  detail::check_compatible("cross_entropy", {logits});
  LEUKO_CHECK(logits.dim() == 2 && logits.size(1) > 0, "cross_entropy: logits must be (N, C) with C > 0, got ",
              shape_str(logits.shape()));
  const int64_t N = logits.size(0), C = logits.size(1);
  LEUKO_CHECK(targets.defined() && targets.dtype() == DType::i64,
              "cross_entropy: targets must be int64 class indices, got ",
              targets.defined() ? targets.describe() : std::string("an undefined tensor"));
  LEUKO_CHECK(targets.device() == logits.device(), "cross_entropy: targets ", targets.describe(),
              " are not on the device of the logits ", logits.describe());
  LEUKO_CHECK(targets.dim() == 1 && targets.size(0) == N, "cross_entropy: targets must have shape [", N,
              "] for logits ", shape_str(logits.shape()), ", got ", shape_str(targets.shape()));
  if (o.weight.defined()) {
    detail::check_compatible("cross_entropy", {logits, o.weight});
    LEUKO_CHECK(o.weight.dim() == 1 && o.weight.size(0) == C, "cross_entropy: weight must have shape [", C,
                "] (one per class), got ", shape_str(o.weight.shape()));
    LEUKO_CHECK(!o.weight.requires_grad(),
                "cross_entropy: the class weights cannot require grad (no gradient is computed for them)");
  }
  LEUKO_CHECK(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0,
              "cross_entropy: label_smoothing must be in [0, 1], got ", o.label_smoothing);
  if (!targets.is_cuda()) {  // on the GPU this check would cost a host synchronisation
    const int64_t* t = targets.data<int64_t>();
    for (int64_t i = 0; i < N; i++) {
      LEUKO_CHECK(t[i] == o.ignore_index || (t[i] >= 0 && t[i] < C), "cross_entropy: target ", t[i], " of row ", i,
                  " is not a class index in [0, ", C, ")");
    }
  }
}

// What the backward keeps.
struct Saved {
  Tensor logits;   // (N, C)
  Tensor lse;      // (N,) logsumexp of each row
  Tensor targets;  // (N,) int64
  Tensor weight;   // (C,) or undefined
  Tensor denom;    // [] summed target weights (mean), or undefined
  CrossEntropyOptions options;
};

Tensor cross_entropy_backward(const Saved& s, const Tensor& g) {
  const int64_t N = s.logits.size(0), C = s.logits.size(1);
  const bool per_row = s.options.reduction == LossReduction::none;  // g: (N,), else []
  const double smoothing = s.options.label_smoothing;
  const int64_t ignore = s.options.ignore_index;
  Tensor dlogits = Tensor::empty_like(s.logits);  // (N, C)
  if (g.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::cross_entropy_backward(dlogits.data<float>(), s.logits.data<float>(), s.lse.data<float>(),
                                                 s.targets.data<int64_t>(), ptr<float>(s.weight), g.data<float>(),
                                                 per_row, ptr<float>(s.denom), N, C, smoothing, ignore));
  } else {
    dispatch_float(g, "cross_entropy", [&](auto tag) {
      using T = decltype(tag);
      kc::cross_entropy_backward<T>(dlogits.data<T>(), s.logits.data<T>(), s.lse.data<T>(), s.targets.data<int64_t>(),
                                    ptr<T>(s.weight), g.data<T>(), per_row, ptr<T>(s.denom), N, C, smoothing, ignore);
    });
  }
  return dlogits;
}
}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options) {
  if (logits.defined() && logits.dtype() == DType::bf16) return cross_entropy(logits.to(DType::f32), targets, options);
  check_cross_entropy(logits, targets, options);
  const int64_t N = logits.size(0), C = logits.size(1);
  const Tensor& w = options.weight;
  Tensor loss = Tensor::empty({N}, logits.dtype(), logits.device());  // (N,) per-row loss
  Tensor wrow = Tensor::empty({N}, logits.dtype(), logits.device());  // (N,) w[t_i], 0 if ignored
  Tensor lse = Tensor::empty({N}, logits.dtype(), logits.device());   // (N,)
  if (logits.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::cross_entropy_forward(loss.data<float>(), wrow.data<float>(), lse.data<float>(),
                                                logits.data<float>(), targets.data<int64_t>(), ptr<float>(w), N, C,
                                                options.label_smoothing, options.ignore_index));
  } else {
    dispatch_float(logits, "cross_entropy", [&](auto tag) {
      using T = decltype(tag);
      kc::cross_entropy_forward<T>(loss.data<T>(), wrow.data<T>(), lse.data<T>(), logits.data<T>(),
                                   targets.data<int64_t>(), ptr<T>(w), N, C, options.label_smoothing,
                                   options.ignore_index);
    });
  }
  Tensor out, denom;
  if (options.reduction == LossReduction::mean) {
    autograd::NoGradGuard no_grad;
    denom = sum(wrow);  // [] the summed weights of the counted rows (their number, unweighted)
    out = div(sum(loss), denom);
  } else {
    out = reduce_loss(loss, options.reduction);
  }
  if (autograd::needs_record({logits})) {
    Saved saved{logits.detach(), lse, targets.detach(), w.defined() ? w.detach() : Tensor(), denom, options};
    saved.options.weight = Tensor();  // held once, in saved.weight
    autograd::record(out, "cross_entropy", {logits}, [saved](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{cross_entropy_backward(saved, g)};
    });
  }
  return out;
}

// ---- bce_with_logits ----------------------------------------------------------------------

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, const Tensor& pos_weight, LossReduction reduction) {
  if (logits.defined() && logits.dtype() == DType::bf16) {
    return bce_with_logits(logits.to(DType::f32), targets.dtype() == DType::bf16 ? targets.to(DType::f32) : targets,
                           pos_weight, reduction);
  }
  detail::check_compatible("bce_with_logits", {logits, targets});
  LEUKO_CHECK(targets.shape() == logits.shape(), "bce_with_logits: targets ", shape_str(targets.shape()),
              " must have the shape of the logits ", shape_str(logits.shape()));
  int64_t C = 1;  // pos_weight's length: it runs along the last dimension
  if (pos_weight.defined()) {
    detail::check_compatible("bce_with_logits", {logits, pos_weight});
    LEUKO_CHECK(logits.dim() >= 1 && pos_weight.dim() == 1 && pos_weight.size(0) == logits.size(-1),
                "bce_with_logits: pos_weight must have shape [C] for the last dimension of the logits ",
                shape_str(logits.shape()), ", got ", shape_str(pos_weight.shape()));
    C = pos_weight.size(0);
  }
  const int64_t n = logits.numel();
  Tensor loss = Tensor::empty_like(logits);  // elementwise, logits' shape
  if (logits.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::bce_with_logits_forward(loss.data<float>(), logits.data<float>(), targets.data<float>(),
                                                  ptr<float>(pos_weight), n, C));
  } else {
    dispatch_float(logits, "bce_with_logits", [&](auto tag) {
      using T = decltype(tag);
      kc::bce_with_logits_forward<T>(loss.data<T>(), logits.data<T>(), targets.data<T>(), ptr<T>(pos_weight), n, C);
    });
  }
  Tensor out = reduce_loss(loss, reduction);
  if (autograd::needs_record({logits, targets, pos_weight})) {
    autograd::record(
        out, "bce_with_logits", {logits, targets, pos_weight},
        [sx = logits.detach(), st = targets.detach(), spw = pos_weight.defined() ? pos_weight.detach() : Tensor(),
         reduction, n, C](const Tensor& g, const std::vector<bool>& need) {
          const bool per_element = reduction == LossReduction::none;  // g: logits' shape, else []
          const double scale = reduction == LossReduction::mean ? 1.0 / double(n) : 1.0;
          Tensor dx = need[0] ? Tensor::empty_like(sx) : Tensor();   // logits' shape
          Tensor dt = need[1] ? Tensor::empty_like(sx) : Tensor();   // logits' shape
          Tensor dpw = need[2] ? Tensor::empty_like(sx) : Tensor();  // per element, summed below
          if (g.is_cuda()) {
            LEUKO_CUDA_BRANCH(kg::bce_with_logits_backward(ptr<float>(dx), ptr<float>(dt), ptr<float>(dpw),
                                                           sx.data<float>(), st.data<float>(), ptr<float>(spw),
                                                           g.data<float>(), per_element, scale, n, C));
          } else {
            dispatch_float(g, "bce_with_logits", [&](auto tag) {
              using T = decltype(tag);
              kc::bce_with_logits_backward<T>(ptr<T>(dx), ptr<T>(dt), ptr<T>(dpw), sx.data<T>(), st.data<T>(),
                                              ptr<T>(spw), g.data<T>(), per_element, scale, n, C);
            });
          }
          // pos_weight was broadcast over the rows: its gradient sums them (deterministic sum_to).
          if (need[2]) dpw = sum_to(dpw.reshape({n / C, C}), {C});
          return std::vector<Tensor>{dx, dt, dpw};
        });
  }
  return out;
}

}  // namespace leuko
