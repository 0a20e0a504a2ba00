// The sparse (CSR) products of a weight-sparse model against the dense ones:
// the same logits, and the same gradients to the gates of every location.
#include "circuit/core/model.h"
#include "circuit/core/status.h"

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace circuit {
namespace {

using ::circuit::testing::IsOk;

ModelConfig SmallConfig() {
  ModelConfig c;
  c.n_layer = 2;
  c.d_model = 64;
  c.n_head = 4;
  c.d_head = 16;
  c.d_mlp = 256;
  c.vocab_size = 96;
  c.n_ctx = 16;
  c.afrac = 0.25;
  c.attn_sink = true;
  c.bigram_table = true;
  return c;
}

// Random weights with every matrix (and lm_head) kept at 1/100 of its entries.
std::vector<NamedTensor> SparseWeights(const ModelConfig& config) {
  absl::StatusOr<Model> model = Model::Create(config, /*seed=*/3);
  CIRCUIT_CHECK(model.ok());
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(4);
  std::vector<NamedTensor> tensors;
  for (const NamedTensor& p : model->parameters()) {
    torch::Tensor t = torch::randn(p.tensor.sizes(), gen);
    const bool matrix = t.dim() == 2 && p.name.find("weight") != std::string::npos &&
                        p.name.find("wte") == std::string::npos &&
                        p.name.find("wpe") == std::string::npos;
    if (matrix) t *= (torch::rand(t.sizes(), gen) < 0.01).to(torch::kFloat32);
    tensors.push_back({p.name, t});
  }
  return tensors;
}

class SparseProducts : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Model> s = Model::FromTensors(config_, SparseWeights(config_));
    absl::StatusOr<Model> d = Model::FromTensors(config_, SparseWeights(config_));
    ASSERT_THAT(s, IsOk());
    ASSERT_THAT(d, IsOk());
    sparse_ = std::make_unique<Model>(std::move(*s));
    dense_ = std::make_unique<Model>(std::move(*d));
    // A weight that takes a gradient never goes through the sparse product.
    for (NamedTensor& p : dense_->mutable_parameters()) p.tensor.set_requires_grad(true);
  }

  const ModelConfig config_ = SmallConfig();
  std::unique_ptr<Model> sparse_, dense_;
  // 36 rows of tokens: two whole blocks of the CSR kernel's 16 and a partial one.
  const torch::Tensor tokens_ = torch::tensor({{3, 9, 27, 1, 14, 60, 2, 8, 8, 90, 4, 6},
                                               {5, 5, 80, 41, 7, 0, 11, 12, 13, 1, 2, 3},
                                               {7, 70, 17, 71, 1, 2, 3, 4, 44, 45, 46, 47}});
  const torch::Tensor answer_ = torch::tensor({11, 4, 9});
};

TEST_F(SparseProducts, UsedOnlyWhereAllowed) {
  // Per layer c_attn, its q and kv row blocks, attn c_proj, c_fc, mlp c_proj; and lm_head.
  EXPECT_EQ(sparse_->NumSparseProducts(), 6 * config_.n_layer + 1);
  EXPECT_EQ(dense_->NumSparseProducts(), 0);
}

TEST_F(SparseProducts, SameLogitsAsDense) {
  const torch::Tensor a = sparse_->Forward(tokens_), b = dense_->Forward(tokens_).detach();
  EXPECT_LE((a - b).abs().max().item<double>(), 1e-5 * std::max(1.0, b.abs().max().item<double>()));
  const torch::Tensor at = sparse_->AnswerLogits(tokens_, answer_);
  const torch::Tensor bt = dense_->AnswerLogits(tokens_, answer_).detach();
  EXPECT_LE((at - bt).abs().max().item<double>(), 1e-5 * std::max(1.0, bt.abs().max().item<double>()));
}

TEST_F(SparseProducts, SameGateGradientsAsDense) {
  const int n_sites = NumTapSites(config_.n_layer);
  auto grads = [&](const Model& model) {
    std::vector<torch::Tensor> gates(n_sites), means(n_sites);
    for (int s = 0; s < n_sites; ++s) {
      const int width = config_.LocationWidth(TapSiteAt(s, config_.n_layer).location);
      gates[s] = torch::full({width}, 0.8).requires_grad_(true);
      means[s] = torch::full({width}, 0.1);
    }
    Taps taps(config_.n_layer);
    taps.Add(BlendTap(&gates, &means));
    model.AnswerLogits(tokens_, answer_, &taps).pow(2).sum().backward();
    std::vector<torch::Tensor> out;
    for (const torch::Tensor& g : gates) out.push_back(g.grad());
    return out;
  };
  const std::vector<torch::Tensor> a = grads(*sparse_), b = grads(*dense_);
  for (int s = 0; s < n_sites; ++s) {
    ASSERT_TRUE(a[s].defined() && b[s].defined()) << "site " << s;
    EXPECT_LE((a[s] - b[s]).abs().max().item<double>(),
              1e-4 * std::max(1.0, b[s].abs().max().item<double>()))
        << "site " << s;
  }
}

TEST_F(SparseProducts, ChangedWeightFallsBackToDense) {
  torch::NoGradGuard no_grad;
  sparse_->layer(0).fc_w.mul_(2.0f);  // in place: the CSR copy is stale now
  EXPECT_EQ(sparse_->NumSparseProducts(), 6 * config_.n_layer);
  dense_->layer(0).fc_w.mul_(2.0f);
  const torch::Tensor a = sparse_->Forward(tokens_), b = dense_->Forward(tokens_);
  EXPECT_LE((a - b).abs().max().item<double>(), 1e-5 * std::max(1.0, b.abs().max().item<double>()));
}

}  // namespace
}  // namespace circuit
