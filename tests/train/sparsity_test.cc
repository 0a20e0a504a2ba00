// Top-k projection (PAPER.md §2.3) against a slow, obviously-right reference,
// and the choice of sparse tensors (§2.1).
#include "circuit/core/sparsity.h"

#include <algorithm>
#include <numeric>
#include <set>

#include "gtest/gtest.h"

namespace circuit {
namespace {

// Reference: protect the j largest |w| of each channel, then add the largest of
// the rest until k are kept. Returns the kept flat indices.
std::set<int64_t> ReferenceKeep(const torch::Tensor& w, int64_t k, ChannelAxis axis, int64_t j) {
  const int64_t rows = w.size(0), cols = w.size(1);
  auto a = w.abs().contiguous();
  const float* p = a.data_ptr<float>();
  std::set<int64_t> keep;
  if (axis != ChannelAxis::kNone) {
    const int64_t channels = axis == ChannelAxis::kRow ? rows : cols;
    const int64_t len = axis == ChannelAxis::kRow ? cols : rows;
    for (int64_t c = 0; c < channels; ++c) {
      std::vector<int64_t> idx(len);
      for (int64_t i = 0; i < len; ++i) idx[i] = axis == ChannelAxis::kRow ? c * cols + i : i * cols + c;
      std::sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) { return p[x] > p[y]; });
      keep.insert(idx.begin(), idx.begin() + std::min(j, len));
    }
  }
  std::vector<int64_t> rest(rows * cols);
  std::iota(rest.begin(), rest.end(), 0);
  std::sort(rest.begin(), rest.end(), [&](int64_t x, int64_t y) { return p[x] > p[y]; });
  for (int64_t i : rest) {
    if (static_cast<int64_t>(keep.size()) >= k) break;
    keep.insert(i);
  }
  return keep;
}

std::set<int64_t> MaskIndices(const torch::Tensor& mask) {
  torch::Tensor nz = mask.reshape(-1).nonzero().reshape(-1);
  std::set<int64_t> out;
  for (int64_t i = 0; i < nz.numel(); ++i) out.insert(nz[i].item<int64_t>());
  return out;
}

TEST(SparsityTest, ProjectionMatchesReferenceAndKeepsMinimumPerChannel) {
  torch::manual_seed(7);
  torch::Tensor w = torch::randn({48, 20});
  for (ChannelAxis axis : {ChannelAxis::kNone, ChannelAxis::kRow, ChannelAxis::kColumn}) {
    for (int64_t k : {1, 60, 200, 500}) {
      const int64_t j = axis == ChannelAxis::kNone ? 0 : 4;
      const int64_t channels = axis == ChannelAxis::kRow ? 48 : 20;
      const int64_t expected = std::max(k, j * (axis == ChannelAxis::kNone ? 0 : channels));
      torch::Tensor mask = TopKMask(w, k, axis, j);
      ASSERT_EQ(mask.sum().item<int64_t>(), expected) << static_cast<int>(axis) << " k=" << k;
      EXPECT_EQ(MaskIndices(mask), ReferenceKeep(w, k, axis, j)) << static_cast<int>(axis);
      if (axis != ChannelAxis::kNone) {
        const int64_t dim = axis == ChannelAxis::kRow ? 1 : 0;
        EXPECT_GE(mask.sum(dim).min().item<int64_t>(), 4);
      }
      torch::Tensor projected = w.clone();
      EXPECT_EQ(ProjectTopK(projected, k, axis, j), expected);
      EXPECT_EQ(projected.ne(0).sum().item<int64_t>(), expected);
      EXPECT_TRUE(torch::equal(projected, w * mask));
    }
  }
}

TEST(SparsityTest, KeepCountFloorsAndClamps) {
  EXPECT_EQ(KeepCount(65536, 1.0 / 16), 4096);
  EXPECT_EQ(KeepCount(100, 0.019), 1);  // floor(1.9)
  EXPECT_EQ(KeepCount(100, 0.001), 1);  // at least one
  EXPECT_EQ(KeepCount(100, 1.0), 100);
}

TEST(SparsityTest, ProjectionKeepsAutogradLeafUsable) {
  torch::Tensor w = torch::randn({8, 8}).requires_grad_(true);
  ProjectTopK(w, 10);
  EXPECT_TRUE(w.requires_grad());
  EXPECT_EQ(w.ne(0).sum().item<int64_t>(), 10);
  (w * 2).sum().backward();
  EXPECT_TRUE(w.grad().defined());
}

TEST(SparsityTest, PlanListsBlockMatricesEmbeddingsAndOptionalTensors) {
  ModelConfig c;
  c.n_layer = 2;
  std::vector<SparseParameter> plan = SparsityPlan(c, SparsityOptions());
  std::map<std::string, SparseParameter> by_name;
  for (const SparseParameter& p : plan) by_name[p.name] = p;
  // 4 block matrices per layer + wte, wpe, lm_head; no norms, sinks, biases, bigram.
  EXPECT_EQ(plan.size(), 2u * 4 + 3);
  auto axis = [&](const std::string& n) { return by_name.at(n).axis; };
  EXPECT_EQ(axis("transformer.h.0.mlp.c_fc.weight"), ChannelAxis::kRow);
  EXPECT_EQ(axis("transformer.h.0.attn.c_attn.weight"), ChannelAxis::kRow);
  EXPECT_EQ(axis("transformer.h.1.mlp.c_proj.weight"), ChannelAxis::kColumn);
  EXPECT_EQ(axis("transformer.h.1.attn.c_proj.weight"), ChannelAxis::kColumn);
  EXPECT_EQ(by_name.at("transformer.h.1.attn.c_proj.weight").min_per_channel, 4);
  EXPECT_EQ(by_name.at("transformer.wte.weight").group, SparsityGroup::kEmbed);
  EXPECT_EQ(by_name.at("lm_head.weight").group, SparsityGroup::kEmbed);
  EXPECT_EQ(by_name.at("lm_head.weight").min_per_channel, 0);
  EXPECT_EQ(by_name.at("transformer.wpe.weight").group, SparsityGroup::kHidden);
  EXPECT_EQ(by_name.count("bigram_table"), 0u);
  EXPECT_EQ(by_name.count("transformer.h.0.attn.c_attn.bias"), 0u);

  SparsityOptions o;
  o.sparsify_biases = true;
  o.sparsify_wpe = false;
  plan = SparsityPlan(c, o);
  by_name.clear();
  for (const SparseParameter& p : plan) by_name[p.name] = p;
  EXPECT_EQ(by_name.count("transformer.wpe.weight"), 0u);
  EXPECT_EQ(by_name.at("transformer.h.0.mlp.c_fc.bias").group, SparsityGroup::kEmbed);
  EXPECT_EQ(plan.size(), 2u * 4 + 2 + 2u * 4);

  c.d_pos_emb = 32;  // a concatenated position table is never sparse
  plan = SparsityPlan(c, SparsityOptions());
  for (const SparseParameter& p : plan) EXPECT_NE(p.name, "transformer.wpe.weight");
}

}  // namespace
}  // namespace circuit
