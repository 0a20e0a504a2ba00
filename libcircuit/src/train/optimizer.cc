#include "circuit/core/optimizer.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace circuit {

double NormalizeGradients(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  // Sum of squares in float64, one scalar per tensor, then one host sync.
  std::vector<torch::Tensor> sums;
  int64_t count = 0;
  for (const torch::Tensor& p : params) {
    const torch::Tensor& g = p.grad();
    if (!g.defined()) continue;
    sums.push_back(g.pow(2).sum(torch::kDouble).reshape({1}));
    count += g.numel();
  }
  if (count == 0) return 0.0;
  const double rms = std::sqrt(torch::cat(sums).sum().item<double>() / static_cast<double>(count));
  const double scale = 1.0 / (rms + 1e-5);
  for (const torch::Tensor& p : params) {
    torch::Tensor g = p.grad();
    if (g.defined()) g.mul_(scale);
  }
  return rms;
}

void DecayWeights(const std::vector<torch::Tensor>& params, double factor) {
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& p : params) p.detach().mul_(1.0 - factor);
}

Adam::Adam(std::vector<torch::Tensor> params, AdamOptions options)
    : options_(options), params_(std::move(params)) {
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& p : params_) {
    exp_avg_.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
    exp_avg_sq_.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
  }
}

void Adam::Step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(step_));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(b2, static_cast<double>(step_)));
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor& g = params_[i].grad();
    if (!g.defined()) continue;
    exp_avg_[i].lerp_(g, 1.0 - b1);                          // m = b1 m + (1 - b1) g
    exp_avg_sq_[i].mul_(b2).addcmul_(g, g, 1.0 - b2);        // v = b2 v + (1 - b2) g^2
    torch::Tensor denom = (exp_avg_sq_[i].sqrt() / bias2_sqrt).add_(options_.eps);
    params_[i].detach().addcdiv_(exp_avg_[i], denom, -lr / bias1);
  }
}

absl::Status Adam::Restore(int64_t step, const std::vector<torch::Tensor>& exp_avg,
                           const std::vector<torch::Tensor>& exp_avg_sq) {
  if (exp_avg.size() != params_.size() || exp_avg_sq.size() != params_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer state has ", exp_avg.size(), "/",
                                                   exp_avg_sq.size(), " moments for ",
                                                   params_.size(), " parameters"));
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!exp_avg[i].sizes().equals(params_[i].sizes()) ||
        !exp_avg_sq[i].sizes().equals(params_[i].sizes())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "optimizer state for parameter ", i, ": expected (", absl::StrJoin(params_[i].sizes(), ", "),
          "), got (", absl::StrJoin(exp_avg[i].sizes(), ", "), ")"));
    }
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    exp_avg_[i] = exp_avg[i].to(params_[i].device(), params_[i].scalar_type()).contiguous().clone();
    exp_avg_sq_[i] = exp_avg_sq[i].to(params_[i].device(), params_[i].scalar_type()).contiguous().clone();
  }
  step_ = step;
  return absl::OkStatus();
}

}  // namespace circuit
