#include "tools/leuko/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "data/loader.h"
#include "tensor/autograd.h"

namespace leuko::cli {

std::vector<double> host_log_softmax(const Tensor& logits) {
  LEUKO_CHECK(logits.dim() == 2, "host_log_softmax: logits must be (N, C), got ", shape_str(logits.shape()));
  const int64_t N = logits.size(0), C = logits.size(1);
  std::vector<double> z = logits.to_double_vector();  // (N, C)
  for (int64_t i = 0; i < N; i++) {
    double* row = &z[size_t(i * C)];  // (C,)
    double m = -INFINITY;
    for (int64_t c = 0; c < C; c++) m = std::max(m, row[c]);
    double s = 0;
    for (int64_t c = 0; c < C; c++) s += std::exp(row[c] - m);
    const double lse = m + std::log(s);
    for (int64_t c = 0; c < C; c++) row[c] -= lse;
  }
  return z;
}

namespace {

void check_eval_input(const data::Dataset& dataset, int batch) {
  LEUKO_CHECK(dataset.size() > 0, "evaluate: the dataset", dataset.root().empty() ? "" : " at ", dataset.root(),
              " has no images (an empty split part?)");
  LEUKO_CHECK(batch > 0, "evaluate: batch size ", batch, " is not positive");
}

// A network lives on one device: its first parameter tells which.
void check_network_on(Net& net, Device device) {
  const std::vector<Tensor> params = net.parameters();
  LEUKO_CHECK(params.empty() || params[0].device() == device, "evaluate: the network is on ",
              device_name(params.empty() ? device : params[0].device()), ", the evaluation runs on ",
              device_name(device), " (move the network first)");
}

}  // namespace

std::unique_ptr<data::Loader> eval_loader(const data::Dataset& dataset, const data::TransformSpec& transform,
                                          int batch, Device device, int workers) {
  check_eval_input(dataset, batch);
  data::LoaderOptions o;
  o.batch_size = batch;
  o.shuffle = false;  // dataset order: sample i of the result is sample i of the dataset
  o.drop_last = false;
  o.workers = workers;
  o.device = device;
  o.transform = transform;
  return std::make_unique<data::Loader>(dataset, o);
}

EvalResult evaluate(Net& net, const data::Dataset& dataset, const data::TransformSpec& transform, int batch,
                    Device device, int workers) {
  check_eval_input(dataset, batch);  // in this order, then the loader (which needs the device)
  check_network_on(net, device);
  return evaluate(net, *eval_loader(dataset, transform, batch, device, workers));
}

EvalResult evaluate(Net& net, data::Loader& loader) {
  const data::Dataset& dataset = loader.dataset();
  const Device device = loader.options().device;
  LEUKO_CHECK(!loader.options().shuffle && !loader.options().drop_last, "evaluate: the loader must keep every ",
              "sample in the dataset's order (eval_loader)");
  check_network_on(net, device);
  const auto start = std::chrono::steady_clock::now();
  const int64_t N = dataset.size(), C = dataset.num_classes();

  EvalResult r;
  r.num_classes = C;
  r.confusion = data::ConfusionMatrix(C, dataset.class_names());
  r.labels.resize(size_t(N));
  r.predictions.resize(size_t(N));
  r.probabilities.resize(size_t(N * C));

  EvalModeGuard mode(net);
  autograd::NoGradGuard no_grad;
  double loss_sum = 0;
  loader.start_epoch(0);
  data::Batch b;
  while (loader.next(b)) {
    const Tensor logits = net(b.images);  // (B, C) on the device
    LEUKO_CHECK(logits.dim() == 2 && logits.size(0) == b.size() && logits.size(1) == C, "evaluate: the network gives ",
                "logits ", shape_str(logits.shape()), " for a batch of ", b.size(), " images of a dataset with ", C,
                " classes");
    const std::vector<double> logp = host_log_softmax(logits);  // (B, C), waits for the device
    for (int64_t k = 0; k < b.size(); k++) {
      const int64_t i = b.indices[size_t(k)];  // the dataset index
      const int64_t label = dataset.label(i);
      const double* lp = &logp[size_t(k * C)];  // (C,)
      int64_t best = 0;
      for (int64_t c = 1; c < C; c++) {
        if (lp[c] > lp[best]) best = c;  // strict: the first maximum wins a tie
      }
      for (int64_t c = 0; c < C; c++) r.probabilities[size_t(i * C + c)] = std::exp(lp[c]);
      r.labels[size_t(i)] = label;
      r.predictions[size_t(i)] = best;
      r.confusion.add(best, label);
      loss_sum -= lp[label];
    }
  }
  r.loss = loss_sum / double(N);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace leuko::cli
