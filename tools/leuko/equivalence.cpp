// `leuko equivalence --model M --weights W --batch B --out O [--classes N] [--device D]`:
// one training step's numbers for a side-by-side with PyTorch (tools/torch_equivalence.py).
// Loads the weights (torchvision's keys), the batch ("input" (N,3,S,S) and "targets" (N,)),
// turns every dropout off, runs the network in training mode (auxiliary heads included, with
// their loss weights), backward, and writes "logits", "loss", "grad.<param>" for every parameter
// and "buffer.<name>" for every floating buffer after the step to O.
#include <cstdio>

#include "layers/elementwise.h"
#include "layers/loss.h"
#include "nets/net.h"
#include "tensor/device.h"
#include "tensor/safetensors.h"
#include "tools/leuko/commands.h"

namespace leuko::cli {

namespace {
void equivalence(const std::string& model, int64_t classes, const std::string& weights, const std::string& batch,
                 const std::string& out, const std::string& device_name, bool float64) {
  const Device device = device_name == "cuda" ? Device::CUDA : Device::CPU;
  if (device == Device::CUDA) require_cuda("--device cuda");
  NetOptions o;
  o.num_classes = classes;
  o.dropout = 0;
  o.aux_dropout = 0;
  std::shared_ptr<Net> net = make_net(model, o);
  net->load(weights);
  LEUKO_CHECK(!float64 || device == Device::CPU, "--float64 runs on the CPU only");
  const DType dtype = float64 ? DType::f64 : DType::f32;
  net->to(dtype);
  net->to(device);
  SafetensorsFile b = load_safetensors(batch);
  LEUKO_CHECK(b.find("input").defined() && b.find("targets").defined(), batch,
              ": needs tensors 'input' and 'targets'");
  Tensor x = b.find("input").to(dtype).to(device);
  Tensor t = b.find("targets").to(device);
  net->train();
  std::vector<Tensor> outs = net->forward_train(x);
  std::vector<double> w = net->aux_weights();
  Tensor loss = cross_entropy(outs[0], t);
  for (size_t i = 1; i < outs.size(); i++) loss = add(loss, mul(cross_entropy(outs[i], t), w[i - 1]));
  loss.backward();
  NamedTensors result{{"logits", outs[0].detach()}, {"loss", loss.detach().reshape({1})}};
  for (auto& [n, p] : net->named_parameters()) {
    LEUKO_CHECK(p.grad().defined(), "parameter '", n, "' received no gradient");
    result.emplace_back("grad." + n, p.grad());
  }
  for (auto& [n, buf] : net->named_buffers()) {
    if (buf.dtype() != DType::i64) result.emplace_back("buffer." + n, buf);
  }
  save_safetensors(out, result, {{"model", model}, {"device", device_name}});
  std::printf("%s: loss %.6f, %zu tensors written to %s\n", model.c_str(), loss.item(), result.size(), out.c_str());
}
}  // namespace

void register_equivalence(CLI::App& app) {
  auto* cmd = app.add_subcommand("equivalence", "One training step's logits, loss and gradients, for comparison "
                                                "with PyTorch (tools/torch_equivalence.py)");
  static std::string model, weights, batch, out, device = "cpu";
  static int64_t classes = 2;
  static bool float64 = false;
  cmd->add_option("--model", model, "Network")->required();
  cmd->add_option("--classes", classes, "Number of classes")->capture_default_str();
  cmd->add_option("--weights", weights, "safetensors file with the network's weights")->required();
  cmd->add_option("--batch", batch, "safetensors file with 'input' and 'targets'")->required();
  cmd->add_option("--out", out, "safetensors file to write")->required();
  cmd->add_option("--device", device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  cmd->add_flag("--float64", float64, "Compute in float64 (CPU)");
  cmd->callback([] { equivalence(model, classes, weights, batch, out, device, float64); });
}

}  // namespace leuko::cli
