// End-to-end pruning on a model with a planted circuit: masks, attribution,
// verification, the ablation modes and determinism.
#include <algorithm>
#include <cmath>
#include <set>

#include "circuit/core/status.h"
#include "circuit/prune/ablation.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/pruner.h"
#include "circuit/prune/verify.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "planted.h"
#include "testing/status_matchers.h"

namespace circuit::prune {
namespace {

ExtractOptions PlantedOptions() {
  ExtractOptions o;
  o.seed = 7;
  o.masks.epochs = 30;
  o.masks.batch = 16;
  o.mean_windows = testing::PlantedMeanWindows(32, /*seed=*/1);
  o.eval_batch = 32;
  return o;
}

class PlantedTest : public ::testing::Test {
 protected:
  PlantedTest()
      : model_(testing::PlantedModel()), task_(testing::PlantedTask(64, 32, 32, /*seed=*/2)) {}

  Circuit Extract(const ExtractOptions& o, ExtractStats* stats = nullptr) {
    absl::StatusOr<Circuit> c =
        ExtractCircuitFromModel(model_, "planted.h5", "d1", task_, o, nullptr, stats);
    CIRCUIT_CHECK(c.ok());
    return *c;
  }

  static std::set<Node> Nodes(const Circuit& c) { return testing::NodeSet(c); }

  // Every planted node is in, and at most `extra` others.
  static void ExpectPlanted(const Circuit& c, size_t extra) {
    const std::set<Node> got = Nodes(c);
    for (const Node& n : testing::PlantedNodes()) {
      EXPECT_TRUE(got.count(n)) << "missing " << NodeLabel(n);
    }
    EXPECT_LE(got.size(), testing::PlantedNodes().size() + extra);
  }

  Model model_;
  TaskData task_;
};

TEST_F(PlantedTest, FullModelSolvesTheTask) {
  const NodeIndex index(model_.config());
  std::vector<torch::Tensor> means(index.num_sites());
  AblationEvaluator eval(model_, index, means, Ablation::kZero, task_.test);
  const TaskScore s = eval.Score(torch::Tensor());
  EXPECT_LT(s.loss, 0.05);
  EXPECT_EQ(s.accuracy, 1.0);
}

TEST_F(PlantedTest, MasksFindThePlantedCircuit) {
  ExtractStats stats;
  const Circuit c = Extract(PlantedOptions(), &stats);
  ExpectPlanted(c, /*extra=*/0);
  EXPECT_TRUE(stats.met_target);
  EXPECT_EQ(stats.mask_steps, 30 * 4);
  EXPECT_EQ(c.total_nodes, 60);
  EXPECT_EQ(c.n_layer, 1);
  EXPECT_EQ(c.task, "planted");
  EXPECT_EQ(c.model_file, "planted.h5");
  EXPECT_EQ(c.model_digest, "d1");
  EXPECT_EQ(c.ablation, "mean");
  EXPECT_EQ(c.method, "masks");
  EXPECT_EQ(c.penalty, "log");
  EXPECT_EQ(c.seed, 7u);
  EXPECT_TRUE(std::is_sorted(c.nodes.begin(), c.nodes.end(),
                             [](const CircuitNode& a, const CircuitNode& b) { return a.node < b.node; }));
  // Sufficiency, necessity and the random baseline on the test split.
  EXPECT_LE(c.circuit_loss, 0.15);
  EXPECT_GT(c.necessity_loss, 0.6);
  EXPECT_GT(c.random_baseline_loss, 0.3);
  EXPECT_EQ(c.accuracy, 1.0);
  EXPECT_LT(c.full_model_loss, 0.05);
  // Refinement ran and, every node being needed, left the circuit unchanged.
  EXPECT_TRUE(c.refined);
  EXPECT_EQ(c.refine_removed, 0);
  EXPECT_EQ(stats.nodes_before_refine, static_cast<int64_t>(c.nodes.size()));
  EXPECT_DOUBLE_EQ(c.minimality, 1.0);
  // Every planted node matters on its own.
  const std::vector<Node> planted = testing::PlantedNodes();
  for (const CircuitNode& n : c.nodes) {
    if (std::count(planted.begin(), planted.end(), n.node)) {
      EXPECT_GT(n.importance, 0.25) << NodeLabel(n.node);
      EXPECT_GE(n.mask_logit, 0.0f);
    }
  }
  EXPECT_GE(c.edges.size(), 4u);
  ASSERT_EQ(c.loss_vs_k_k.size(), c.loss_vs_k_loss.size());
  EXPECT_GE(c.loss_vs_k_k.size(), 4u);
  EXPECT_TRUE(std::is_sorted(c.loss_vs_k_k.begin(), c.loss_vs_k_k.end()));
  EXPECT_TRUE(c.location_importance.count("L0 mlp.post_act"));
  EXPECT_GT(c.location_importance.at("L1 final_resid"), 0.6);
}

TEST_F(PlantedTest, DeterministicForASeed) {
  const Circuit a = Extract(PlantedOptions());
  const Circuit b = Extract(PlantedOptions());
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    EXPECT_EQ(a.nodes[i].node, b.nodes[i].node);
    EXPECT_EQ(a.nodes[i].mask_logit, b.nodes[i].mask_logit);
    EXPECT_EQ(a.nodes[i].importance, b.nodes[i].importance);
  }
  EXPECT_EQ(a.loss_vs_k_k, b.loss_vs_k_k);
  EXPECT_EQ(a.circuit_loss, b.circuit_loss);
}

TEST_F(PlantedTest, LinearPenaltyZeroAblationAndTiedQk) {
  ExtractOptions o = PlantedOptions();
  o.masks.penalty = Penalty::kLinear;
  o.ablation = Ablation::kZero;
  o.tie_qk = true;
  o.node_importance = false;
  const Circuit c = Extract(o);
  ExpectPlanted(c, /*extra=*/2);
  EXPECT_EQ(c.penalty, "linear");
  EXPECT_EQ(c.ablation, "zero");
  // Tied query/key channels are kept in pairs.
  std::set<std::pair<int, int>> q, k;
  for (const CircuitNode& n : c.nodes) {
    if (n.node.location == NodeLocation::kAttnQ) q.insert({n.node.layer, n.node.index});
    if (n.node.location == NodeLocation::kAttnK) k.insert({n.node.layer, n.node.index});
  }
  EXPECT_EQ(q, k);
}

TEST_F(PlantedTest, ResampleAblationAndCalibration) {
  ExtractOptions o = PlantedOptions();
  o.ablation = Ablation::kResample;
  o.calibrate = true;
  o.node_importance = false;
  ExtractStats stats;
  const Circuit c = Extract(o, &stats);
  ExpectPlanted(c, /*extra=*/2);
  EXPECT_GT(stats.calibration.scale, 0.0);
  EXPECT_LE(c.circuit_loss, 0.2);
}

TEST_F(PlantedTest, AttributionRanksThePlantedNodesFirst) {
  ExtractOptions o = PlantedOptions();
  o.method = Method::kAttribution;
  o.node_importance = false;
  ExtractStats stats;
  const Circuit c = Extract(o, &stats);
  EXPECT_EQ(c.method, "attribution");
  EXPECT_EQ(stats.mask_steps, 0);
  EXPECT_TRUE(stats.met_target);
  ExpectPlanted(c, /*extra=*/4);
}

TEST_F(PlantedTest, ImportanceLimitSkipsPerNodeImportanceOfLargerCircuits) {
  ExtractOptions o = PlantedOptions();
  o.method = Method::kAttribution;
  o.importance_limit = 1;  // the circuit has more nodes
  ExtractStats stats;
  const Circuit c = Extract(o, &stats);
  ASSERT_GT(c.nodes.size(), 1u);
  // Not computed: NaN, not a 0 that reads as "unimportant".
  for (const CircuitNode& n : c.nodes) EXPECT_TRUE(std::isnan(n.importance));
  EXPECT_THAT(stats.note, ::testing::HasSubstr("per-node importance skipped"));
  EXPECT_FALSE(c.location_importance.empty());  // the per-location pass still runs

  o.importance_limit = 0;  // no limit
  const Circuit all = Extract(o);
  for (const CircuitNode& n : all.nodes) EXPECT_GT(n.importance, 0.0f);
}

TEST_F(PlantedTest, SearchKeepsASettingThatMeetsTheTarget) {
  ExtractOptions o = PlantedOptions();
  o.search = 3;
  o.masks.epochs = 15;
  o.node_importance = false;
  ExtractStats stats;
  const Circuit c = Extract(o, &stats);
  EXPECT_EQ(stats.settings_tried, 3);
  EXPECT_TRUE(stats.met_target);
  EXPECT_EQ(stats.mask_steps, 3 * 15 * 4);
  ExpectPlanted(c, /*extra=*/2);
}

TEST_F(PlantedTest, VerifyReportsNecessityAndRejectsBadNodes) {
  const NodeIndex index(model_.config());
  std::vector<torch::Tensor> means(index.num_sites());
  std::vector<int64_t> flat;
  for (const Node& n : testing::PlantedNodes()) flat.push_back(index.Flat(n));
  VerifyOptions v;
  v.ablation = Ablation::kZero;
  absl::StatusOr<Verification> r = VerifyCircuit(model_, index, means, task_.test, flat, v);
  ASSERT_THAT(r.status(), testing::IsOk());
  EXPECT_LT(r->circuit.loss, 0.15);
  EXPECT_GT(r->necessity.loss, 0.6);
  ASSERT_EQ(r->node_importance.size(), flat.size());
  for (double imp : r->node_importance) EXPECT_GT(imp, 0.25);
  EXPECT_EQ(r->location_importance.size(), 4u);
  flat.push_back(flat[0]);
  EXPECT_THAT(VerifyCircuit(model_, index, means, task_.test, flat, v).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("twice")));
  EXPECT_THAT(VerifyCircuit(model_, index, means, task_.test, {60}, v).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("outside")));
}

TEST_F(PlantedTest, BadInputsAreErrors) {
  ExtractOptions o = PlantedOptions();
  TaskData empty = task_;
  empty.validation.clear();
  EXPECT_THAT(ExtractCircuitFromModel(model_, "m", "d", empty, o).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("validation")));
  o.masks.lr = -1;
  EXPECT_THAT(ExtractCircuitFromModel(model_, "m", "d", task_, o).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("lr")));
  EXPECT_FALSE(ParseAblation("median").ok());
  EXPECT_FALSE(ParseMethod("edges").ok());
  EXPECT_FALSE(ParsePenalty("square").ok());
}

TEST_F(PlantedTest, EvaluatorKeepsExampleOrderAcrossLengthSortedBatches) {
  // Pairs of decreasing length, so that sorting by length reorders them.
  std::vector<TaskExample> examples;
  for (int len = 7; len >= 1; --len) {
    for (int twin = 0; twin < 2; ++twin) {
      TaskExample ex;
      for (int j = 0; j < len; ++j) ex.tokens.push_back(3 + (j * 5 + len) % 2);
      ex.tokens.push_back(twin == 0 ? 1 : 2);
      ex.correct = twin == 0 ? 5 : 6;
      ex.alternative = twin == 0 ? 6 : 5;
      examples.push_back(ex);
    }
  }
  const NodeIndex index(model_.config());
  std::vector<torch::Tensor> means(index.num_sites());
  AblationEvaluator eval(model_, index, means, Ablation::kZero, examples, /*batch_prompts=*/4);
  torch::Tensor keep = torch::ones({index.total()});
  keep[index.Flat(Node{0, NodeLocation::kMlpPostAct, 1})] = 0.0;  // twins lose their signal
  const torch::Tensor diffs = eval.LogitDiffs(keep);
  ASSERT_EQ(diffs.size(0), 14);
  for (size_t i = 0; i < examples.size(); ++i) {
    std::vector<TaskExample> one = {examples[i]};
    AblationEvaluator single(model_, index, means, Ablation::kZero, one, 1);
    EXPECT_NEAR(diffs[i].item<float>(), single.LogitDiffs(keep)[0].item<float>(), 1e-5) << i;
    if (i % 2 == 1) EXPECT_NEAR(diffs[i].item<float>(), 0.0f, 1e-5);  // ablated B detector
    if (i % 2 == 0) EXPECT_GT(diffs[i].item<float>(), 1.0f);
  }
}

TEST(ResampleTest, PermutationIsAFixedDerangementThatMixesTwins) {
  for (int64_t B : {2, 3, 8, 64, 128}) {
    torch::Tensor p = ResamplePermutation(B);
    EXPECT_TRUE(torch::equal(p, ResamplePermutation(B)));
    EXPECT_TRUE(torch::equal(std::get<0>(p.sort()), torch::arange(B)));
    EXPECT_EQ((p == torch::arange(B)).sum().item<int64_t>(), 0);
    if (B >= 64) {
      // Sources come from both classes (even and odd positions), not one.
      const double same = ((p % 2) == (torch::arange(B) % 2)).to(torch::kFloat64).mean().item<double>();
      EXPECT_GT(same, 0.3);
      EXPECT_LT(same, 0.7);
    }
  }
}

}  // namespace
}  // namespace circuit::prune
