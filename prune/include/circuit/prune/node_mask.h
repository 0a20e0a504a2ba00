// Node masks (PAPER.md §4.4): one real parameter tau per mask unit, gate
// g = Heaviside(tau) in the forward pass (tau >= 0 keeps the node), and a
// straight-through backward pass with the sigmoid-derivative surrogate
// dg/dtau = sigma'(tau / T) / T. tau is clamped to [-1, 1] after each step.
//
//   NodeMask mask(index, units, {.bias = 0.072, .scale = 0.0125}, /*seed=*/1, device);
//   torch::Tensor gates = mask.NodeGates(/*temperature=*/0.234);  // (N) 0/1, differentiable
//   ... loss.backward(); optimizer.step(); mask.Clamp();
#ifndef CIRCUIT_PRUNE_NODE_MASK_H_
#define CIRCUIT_PRUNE_NODE_MASK_H_

#include <torch/torch.h>

#include <cstdint>

#include "circuit/prune/node_index.h"

namespace circuit::prune {

// tau: any shape. Forward: (tau >= 0) as tau's dtype. Backward: grad *
// sigmoid'(tau / temperature) / temperature, with sigmoid'(u) = s(u) (1 - s(u)).
torch::Tensor HeavisideSte(const torch::Tensor& tau, double temperature);

struct MaskInit {
  double bias = 0.072;    // mean of the initial tau (every node starts kept)
  double scale = 0.0125;  // standard deviation of the initial tau
};

class NodeMask {
 public:
  // tau ~ Normal(init.bias, init.scale), one per unit, drawn on the CPU from a
  // generator seeded with `seed` (the same on every device), then clamped.
  NodeMask(const NodeIndex& index, const MaskUnits& units, const MaskInit& init, uint64_t seed,
           torch::Device device = torch::kCPU);

  // The trainable parameter: (n_units) float32, requires_grad.
  torch::Tensor& tau() { return tau_; }
  const torch::Tensor& tau() const { return tau_; }

  // Per-node gates (N): HeavisideSte(tau) of each node's unit; differentiable.
  torch::Tensor NodeGates(double temperature) const;
  // Per-node kept indicator (N) without gradient: 1 where tau of the unit >= 0.
  torch::Tensor NodeKeep() const;

  // Clamps tau to [-1, 1] in place (after every optimiser step).
  void Clamp();

 private:
  torch::Tensor tau_;        // (n_units)
  torch::Tensor node_unit_;  // (N) int64, on the device
};

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_NODE_MASK_H_
