// Adam against torch::optim::Adam, and gradient-RMS normalisation (PAPER.md §2.2).
#include "circuit/core/optimizer.h"

#include <cmath>

#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace circuit {
namespace {

TEST(OptimizerTest, AdamMatchesTorchAdam) {
  torch::manual_seed(3);
  torch::Tensor a = torch::randn({5, 7}, torch::kDouble).requires_grad_(true);
  torch::Tensor b = torch::randn({9}, torch::kDouble).requires_grad_(true);
  torch::Tensor a_ref = a.detach().clone().requires_grad_(true);
  torch::Tensor b_ref = b.detach().clone().requires_grad_(true);
  Adam adam({a, b});
  torch::optim::Adam ref({a_ref, b_ref},
                         torch::optim::AdamOptions(0.01).betas({0.9, 0.95}).eps(0.1).weight_decay(0));
  for (int step = 0; step < 6; ++step) {
    torch::Tensor ga = torch::randn({5, 7}, torch::kDouble), gb = torch::randn({9}, torch::kDouble);
    a.mutable_grad() = ga.clone();
    b.mutable_grad() = gb.clone();
    a_ref.mutable_grad() = ga.clone();
    b_ref.mutable_grad() = gb.clone();
    const double lr = 0.01 * (step + 1);
    adam.Step(lr);
    static_cast<torch::optim::AdamOptions&>(ref.param_groups()[0].options()).lr(lr);
    ref.step();
    EXPECT_TRUE(torch::allclose(a, a_ref, 1e-12, 1e-14)) << step;
    EXPECT_TRUE(torch::allclose(b, b_ref, 1e-12, 1e-14)) << step;
  }
  EXPECT_EQ(adam.step(), 6);
}

TEST(OptimizerTest, AdamRestoreContinuesIdentically) {
  torch::manual_seed(4);
  torch::Tensor p = torch::randn({4, 4}).requires_grad_(true);
  torch::Tensor q = p.detach().clone().requires_grad_(true);
  Adam first({p});
  std::vector<torch::Tensor> grads;
  for (int i = 0; i < 4; ++i) grads.push_back(torch::randn({4, 4}));
  for (int i = 0; i < 2; ++i) {
    p.mutable_grad() = grads[i].clone();
    first.Step(0.1);
  }
  // A second optimiser restored from the first's state after 2 steps.
  torch::NoGradGuard no_grad;
  q.copy_(p);
  Adam second({q});
  ASSERT_THAT(second.Restore(first.step(), first.exp_avg(), first.exp_avg_sq()), testing::IsOk());
  for (int i = 2; i < 4; ++i) {
    p.mutable_grad() = grads[i].clone();
    q.mutable_grad() = grads[i].clone();
    first.Step(0.1);
    second.Step(0.1);
  }
  EXPECT_TRUE(torch::equal(p, q));
  EXPECT_THAT(second.Restore(1, {torch::zeros({3})}, {torch::zeros({3})}),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("expected (4, 4)")));
}

TEST(OptimizerTest, NormalizeGradientsGivesUnitGlobalRmsAndDecayScales) {
  torch::Tensor a = torch::ones({3, 3}).requires_grad_(true);
  torch::Tensor b = torch::ones({7}).requires_grad_(true);
  a.mutable_grad() = torch::full({3, 3}, 2.0);
  b.mutable_grad() = torch::full({7}, -6.0);
  const double rms = NormalizeGradients({a, b});
  EXPECT_NEAR(rms, std::sqrt((9 * 4.0 + 7 * 36.0) / 16), 1e-6);
  const double total = a.grad().pow(2).sum().item<double>() + b.grad().pow(2).sum().item<double>();
  EXPECT_NEAR(std::sqrt(total / 16), 1.0, 1e-4);
  // Small gradients are scaled up too: normalisation, not clipping.
  a.mutable_grad() = torch::full({3, 3}, 1e-3);
  b.mutable_grad() = torch::full({7}, 1e-3);
  NormalizeGradients({a, b});
  EXPECT_NEAR(a.grad()[0][0].item<double>(), 1e-3 / (1e-3 + 1e-5), 1e-5);
  DecayWeights({a}, 0.25);
  EXPECT_FLOAT_EQ(a[1][1].item<float>(), 0.75f);
  EXPECT_FLOAT_EQ(b[0].item<float>(), 1.0f);
}

}  // namespace
}  // namespace circuit
