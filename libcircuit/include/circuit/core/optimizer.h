// The optimiser pieces of weight-sparse training (PAPER.md §2.2): global
// gradient-RMS normalisation, plain Adam with the paper's large epsilon, and
// decoupled weight decay applied after the top-k projection. Written on tensors
// (not torch::optim) so that every moment is visible for exact resumes.
//
//   double rms = NormalizeGradients(params);      // grads /= (rms + 1e-5)
//   adam.Step(lr);                                // p -= lr * m_hat / (sqrt(v_hat) + eps)
//   DecayWeights(decayed, /*factor=*/wd * lr);    // p -= wd * lr * p
#ifndef CIRCUIT_CORE_OPTIMIZER_H_
#define CIRCUIT_CORE_OPTIMIZER_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace circuit {

// Divides every defined .grad() of `params` by (RMS + 1e-5), where RMS is taken
// over all their gradient entries together (global L2 norm / sqrt(#entries)).
// Always normalises (not a clip). Returns the RMS before normalising.
double NormalizeGradients(const std::vector<torch::Tensor>& params);

// p <- p - factor * p for every tensor, without autograd.
void DecayWeights(const std::vector<torch::Tensor>& params, double factor);

struct AdamOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 0.1;  // the paper's unusually large epsilon
};

// Plain Adam (no weight decay; torch::optim::Adam's update rule, bias-corrected).
// Holds references to the parameters (tensors share storage) and owns the moments.
class Adam {
 public:
  Adam(std::vector<torch::Tensor> params, AdamOptions options = AdamOptions());

  // One update with learning rate `lr` from each parameter's .grad(); parameters
  // without a gradient are skipped (their moments stay).
  void Step(double lr);

  int64_t step() const { return step_; }
  const AdamOptions& options() const { return options_; }
  const std::vector<torch::Tensor>& params() const { return params_; }
  // First and second moments, one per parameter, same shapes: for saving.
  const std::vector<torch::Tensor>& exp_avg() const { return exp_avg_; }
  const std::vector<torch::Tensor>& exp_avg_sq() const { return exp_avg_sq_; }

  // Restores a saved state; shapes must match the parameters (else an error
  // naming the index and shapes). Moments are copied to the parameters' device.
  absl::Status Restore(int64_t step, const std::vector<torch::Tensor>& exp_avg,
                       const std::vector<torch::Tensor>& exp_avg_sq);

 private:
  AdamOptions options_;
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;
  int64_t step_ = 0;
};

}  // namespace circuit

#endif  // CIRCUIT_CORE_OPTIMIZER_H_
