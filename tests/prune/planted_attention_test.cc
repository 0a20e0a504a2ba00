// Pruning recovers a planted mechanism that needs attention (planted_attention.h):
// exactly its 12 nodes, query, key and value channels included, with AbsTopK on
// and nonzero means, by mask training and by attribution alike.
#include <algorithm>
#include <cmath>
#include <set>

#include "circuit/core/status.h"
#include "circuit/prune/ablation.h"
#include "circuit/prune/mean_cache.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/pruner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "planted_attention.h"
#include "testing/status_matchers.h"

namespace circuit::prune {
namespace {

class PlantedAttentionTest : public ::testing::Test {
 protected:
  PlantedAttentionTest()
      : model_(testing::PlantedAttentionModel()),
        task_(testing::PlantedAttentionTask(64, 32, 32, /*seed=*/2)) {}

  ExtractOptions Options(Method method) const {
    ExtractOptions o;
    o.method = method;
    o.seed = 7;
    o.masks.epochs = 30;
    o.masks.batch = 16;
    o.mean_windows = testing::PlantedAttentionMeanWindows(64, /*seed=*/1);
    o.eval_batch = 32;
    o.random_draws = 0;
    return o;
  }

  // The circuit's nodes equal the planted ones exactly.
  void ExpectExactlyPlanted(const ExtractOptions& o) {
    ExtractStats stats;
    absl::StatusOr<Circuit> c =
        ExtractCircuitFromModel(model_, "planted.h5", "d1", task_, o, nullptr, &stats);
    ASSERT_THAT(c.status(), testing::IsOk());
    EXPECT_TRUE(stats.met_target);
    std::set<Node> got;
    for (const CircuitNode& n : c->nodes) got.insert(n.node);
    const std::vector<Node> planted = testing::PlantedAttentionNodes();
    for (const Node& n : planted) EXPECT_TRUE(got.count(n)) << "missing " << NodeLabel(n);
    for (const Node& n : got) {
      EXPECT_TRUE(std::count(planted.begin(), planted.end(), n)) << "extra " << NodeLabel(n);
    }
    EXPECT_LE(c->circuit_loss, 0.15);
    EXPECT_GT(c->necessity_loss, 0.5);
    EXPECT_EQ(c->accuracy, 1.0);
  }

  Model model_;
  TaskData task_;
};

TEST_F(PlantedAttentionTest, TheMechanismNeedsEveryPlantedNode) {
  const NodeIndex index(model_.config());
  absl::StatusOr<MeanCache> means =
      ComputeMeans(model_, testing::PlantedAttentionMeanWindows(64, /*seed=*/1));
  ASSERT_THAT(means.status(), testing::IsOk());
  const std::vector<Node> planted = testing::PlantedAttentionNodes();
  // Nonzero means at the planted query, key and value channels: mean ablation
  // here is not zero ablation.
  for (const Node& n : planted) {
    if (n.location == NodeLocation::kAttnQ || n.location == NodeLocation::kAttnK ||
        n.location == NodeLocation::kAttnV) {
      EXPECT_GT(std::abs(means->means[index.Site(n.layer, n.location)][n.index].item<float>()), 0.01f) << NodeLabel(n);
    }
  }
  const AblationEvaluator eval(model_, index, means->means, Ablation::kMean, task_.test);
  EXPECT_LT(eval.Score(torch::Tensor()).loss, 0.05);
  auto keep = [&](const std::vector<Node>& nodes) {
    torch::Tensor k = torch::zeros({index.total()});
    for (const Node& n : nodes) k[index.Flat(n)] = 1.0;
    return k;
  };
  const TaskScore circuit = eval.Score(keep(planted));
  EXPECT_LT(circuit.loss, 0.05);
  EXPECT_EQ(circuit.accuracy, 1.0);
  for (size_t i = 0; i < planted.size(); ++i) {
    std::vector<Node> less = planted;
    less.erase(less.begin() + static_cast<int64_t>(i));
    EXPECT_GT(eval.Score(keep(less)).loss, 0.2) << "without " << NodeLabel(planted[i]);
  }
}

TEST_F(PlantedAttentionTest, MasksRecoverExactlyThePlantedNodes) {
  ExpectExactlyPlanted(Options(Method::kMasks));
}

TEST_F(PlantedAttentionTest, AttributionRecoversExactlyThePlantedNodes) {
  ExpectExactlyPlanted(Options(Method::kAttribution));
}

}  // namespace
}  // namespace circuit::prune
