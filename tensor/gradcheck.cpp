#include "tensor/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tensor/autograd.h"
#include "tensor/random.h"

namespace leuko {

namespace {
// <w, y> on the host, in float64.
double weighted_sum(const Tensor& y, const std::vector<double>& w) {
  std::vector<double> v = y.to_double_vector();
  double s = 0;
  for (size_t i = 0; i < v.size(); i++) s += v[i] * w[i];
  return s;
}
}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  for (const Tensor& x : inputs) {
    LEUKO_CHECK(!x.defined() || !x.requires_grad() || (x.dtype() == DType::f64 && !x.is_cuda()),
                "gradcheck: inputs that require grad must be float64 CPU tensors, got ", x.describe());
  }
  // Analytic gradients: backward of <w, y>.
  for (const Tensor& x : inputs) {
    if (x.defined() && x.requires_grad()) Tensor(x).zero_grad();
  }
  Tensor y = f(inputs);
  LEUKO_CHECK(y.requires_grad(), "gradcheck: the output does not depend on any input that requires grad");
  Generator gen(options.seed);
  std::vector<double> w(size_t(y.numel()));
  for (double& v : w) v = gen.normal();
  y.backward(Tensor::from_vector(w, y.shape(), y.dtype()));

  struct Pair {
    size_t input;
    int64_t index;
    double analytic, numeric;
  };
  std::vector<Pair> pairs;
  autograd::NoGradGuard no_grad;
  for (size_t k = 0; k < inputs.size(); k++) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    std::vector<double> analytic = x.grad().defined() ? x.grad().to_double_vector()
                                                      : std::vector<double>(size_t(x.numel()), 0.0);
    double* p = x.data<double>();
    for (int64_t j = 0; j < x.numel(); j++) {
      const double saved = p[j];
      p[j] = saved + options.eps;
      const double plus = weighted_sum(f(inputs), w);
      p[j] = saved - options.eps;
      const double minus = weighted_sum(f(inputs), w);
      p[j] = saved;
      pairs.push_back({k, j, analytic[size_t(j)], (plus - minus) / (2 * options.eps)});
    }
  }

  GradcheckResult r;
  double scale = 0;
  for (const Pair& q : pairs) scale = std::max(scale, std::fabs(q.numeric));
  const double floor = std::max(1e-3 * scale, 1e-12);
  for (const Pair& q : pairs) {
    const double abs_err = std::fabs(q.analytic - q.numeric);
    const double rel = abs_err / std::max({std::fabs(q.analytic), std::fabs(q.numeric), floor});
    const bool bad = !std::isfinite(q.analytic) || !std::isfinite(q.numeric);
    r.max_abs_error = std::max(r.max_abs_error, abs_err);
    if (bad || rel > r.max_rel_error || r.worst.empty()) {
      r.max_rel_error = bad ? INFINITY : std::max(r.max_rel_error, rel);
      char buf[160];
      std::snprintf(buf, sizeof buf, "input %zu [%lld]: analytic %.10g numeric %.10g", q.input,
                    static_cast<long long>(q.index), q.analytic, q.numeric);
      r.worst = buf;
    }
    r.checked++;
  }
  r.ok = r.checked > 0 && r.max_rel_error <= options.rtol;
  return r;
}

}  // namespace leuko
