// The Heaviside gate with a straight-through sigmoid-derivative surrogate.
#include "circuit/prune/node_mask.h"

#include "circuit/core/status.h"

namespace circuit::prune {
namespace {

class HeavisideSteFunction : public torch::autograd::Function<HeavisideSteFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& tau,
                               double temperature) {
    ctx->save_for_backward({tau});
    ctx->saved_data["temperature"] = temperature;
    return (tau >= 0).to(tau.dtype());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const torch::Tensor tau = ctx->get_saved_variables()[0];
    const double t = ctx->saved_data["temperature"].toDouble();
    const torch::Tensor s = torch::sigmoid(tau / t);
    // d/dtau sigmoid(tau / T) = s (1 - s) / T
    return {grad_out[0] * s * (1 - s) / t, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor HeavisideSte(const torch::Tensor& tau, double temperature) {
  CIRCUIT_CHECK(temperature > 0);
  return HeavisideSteFunction::apply(tau, temperature);
}

NodeMask::NodeMask(const NodeIndex& index, const MaskUnits& units, const MaskInit& init,
                   uint64_t seed, torch::Device device) {
  CIRCUIT_CHECK(static_cast<int64_t>(units.node_unit.size()) == index.total());
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  torch::Tensor tau = torch::empty({units.n_units}, torch::kFloat32);
  tau.normal_(init.bias, init.scale, gen);
  tau_ = tau.clamp_(-1.0, 1.0).to(device).set_requires_grad(true);
  node_unit_ = torch::tensor(units.node_unit, torch::kInt64).to(device);
}

torch::Tensor NodeMask::NodeGates(double temperature) const {
  torch::Tensor unit_gates = HeavisideSte(tau_, temperature);  // (U)
  return unit_gates.index_select(0, node_unit_);                // (N)
}

torch::Tensor NodeMask::NodeKeep() const {
  torch::NoGradGuard no_grad;
  return (tau_.detach() >= 0).to(torch::kFloat32).index_select(0, node_unit_);
}

void NodeMask::Clamp() {
  torch::NoGradGuard no_grad;
  tau_.clamp_(-1.0, 1.0);
}

}  // namespace circuit::prune
