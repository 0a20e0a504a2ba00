// Logit calibration by L-BFGS on two scalars.
#include "circuit/prune/calibration.h"

#include <cmath>

namespace circuit::prune {

torch::Tensor TwinSigns(int64_t n, torch::Device device) {
  torch::Tensor idx = torch::arange(n, torch::TensorOptions().dtype(torch::kInt64));
  return (1 - 2 * (idx % 2)).to(torch::kFloat32).to(device);  // (n)
}

torch::Tensor CalibratedLoss(const torch::Tensor& diff, const torch::Tensor& sign,
                             const LogitCalibration& cal) {
  return torch::softplus(-(diff * cal.scale + sign * cal.shift));
}

LogitCalibration FitCalibration(const torch::Tensor& diff, const torch::Tensor& sign, int steps) {
  torch::AutoGradMode grad_mode(/*enabled=*/true);
  const torch::Tensor d = diff.detach().to(torch::kFloat64);
  const torch::Tensor s = sign.detach().to(torch::kFloat64);
  torch::Tensor params = torch::tensor({0.0, 0.0}, torch::TensorOptions().dtype(torch::kFloat64)
                                                       .device(d.device())
                                                       .requires_grad(true));
  // params = (log scale, shift): the scale stays positive, so calibration can
  // sharpen or soften the pruned model's preference but never flip it.
  torch::optim::LBFGS lbfgs({params}, torch::optim::LBFGSOptions(1.0).max_iter(steps).line_search_fn(
                                          "strong_wolfe"));
  auto closure = [&]() -> torch::Tensor {
    lbfgs.zero_grad();
    torch::Tensor loss = torch::softplus(-(d * params[0].exp() + s * params[1])).mean();
    loss.backward();
    return loss;
  };
  lbfgs.step(closure);
  LogitCalibration cal;
  const double a = std::exp(params[0].item<double>()), b = params[1].item<double>();
  // A diverged fit (all-equal inputs, NaN) falls back to the identity.
  if (std::isfinite(a) && std::isfinite(b)) {
    cal.scale = a;
    cal.shift = b;
  }
  return cal;
}

}  // namespace circuit::prune
