// Logit calibration of a pruned model (PAPER.md §4.9): one global scale a and
// one shift b on the logit difference of the two candidates, fitted with 16
// L-BFGS steps, to absorb the calibration drift that ablation causes.
//
// The shift acts along the pair's fixed orientation (token X of the prompt vs
// token Y of its twin), so it can express "the pruned model prefers X"; a shift
// of all logits alike would cancel in the two-way softmax.
//
//   torch::Tensor d = ...;                      // (n) l_correct - l_alternative
//   torch::Tensor s = TwinSigns(d.size(0));     // +1 prompt, -1 twin
//   LogitCalibration cal = FitCalibration(d, s);
//   double loss = CalibratedLoss(d, s, cal).mean().item<double>();
#ifndef CIRCUIT_PRUNE_CALIBRATION_H_
#define CIRCUIT_PRUNE_CALIBRATION_H_

#include <torch/torch.h>

#include <cstdint>

namespace circuit::prune {

struct LogitCalibration {
  double scale = 1.0;  // a
  double shift = 0.0;  // b, towards the prompt's correct token
};

// (n) float: +1 for examples at even positions (the prompts), -1 at odd ones
// (their twins), following TaskData's twin order.
torch::Tensor TwinSigns(int64_t n, torch::Device device = torch::kCPU);

// diff: (n) l_correct - l_alternative; sign: (n) from TwinSigns.
// Per-example loss (n): softplus(-(scale * diff + sign * shift)), the two-way
// cross-entropy of the calibrated logits. The identity calibration gives the
// plain task loss.
torch::Tensor CalibratedLoss(const torch::Tensor& diff, const torch::Tensor& sign,
                             const LogitCalibration& cal);

// Minimises the mean CalibratedLoss over (scale > 0, shift) from (1, 0) with
// `steps` L-BFGS iterations. Gradients are enabled inside even under NoGradGuard;
// the inputs are treated as constants.
LogitCalibration FitCalibration(const torch::Tensor& diff, const torch::Tensor& sign,
                                int steps = 16);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_CALIBRATION_H_
