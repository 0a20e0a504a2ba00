// Refinement after discretization, minimality, and honest ranking: on a
// synthetic loss, and end to end on the planted saturated-attention model.
#include "circuit/prune/refine.h"

#include <cmath>
#include <set>

#include "circuit/core/status.h"
#include "circuit/prune/pruner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "planted.h"

namespace circuit::prune {
namespace {

// One node per unit.
MaskUnits Singletons(int64_t n) {
  MaskUnits u;
  u.n_units = n;
  for (int64_t i = 0; i < n; ++i) {
    u.node_unit.push_back(i);
    u.unit_nodes.push_back({i});
  }
  return u;
}

// loss = 0.05 + 0.5 per missing needed node + `cost` per other missing node.
BatchLossFn SyntheticLoss(std::set<int64_t> needed, double cost) {
  return [needed, cost](const torch::Tensor& keeps, const std::vector<double>&) {
    std::vector<LossEstimate> out;
    for (int64_t m = 0; m < keeps.size(0); ++m) {
      double loss = 0.05;
      for (int64_t i = 0; i < keeps.size(1); ++i) {
        if (keeps[m][i].item<float>() == 0.0f) loss += needed.count(i) ? 0.5 : cost;
      }
      out.push_back({loss, 0.0});
    }
    return out;
  };
}

std::vector<int64_t> All(int64_t n) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

TEST(RefineUnitsTest, DropsEveryUnneededUnit) {
  RefineOptions o;
  o.stack = 3;
  const RefineResult r = RefineUnits(SyntheticLoss({2, 5, 7}, 0.0), Singletons(10), All(10), o);
  EXPECT_EQ(r.units, (std::vector<int64_t>{2, 5, 7}));
  EXPECT_EQ(r.removed_units, 7);
  EXPECT_EQ(r.removed_nodes, 7);
  EXPECT_EQ(r.passes, 2);
  EXPECT_DOUBLE_EQ(r.minimality, 1.0);
  EXPECT_DOUBLE_EQ(r.loss.loss, 0.05);
  EXPECT_THAT(r.removal_bound, ::testing::Each(::testing::Gt(o.target_loss)));
}

TEST(RefineUnitsTest, StopsWhereTheTargetWouldBreak) {
  // Each unneeded unit costs 0.02: five of them fit under 0.16 (0.05 + 5 * 0.02).
  RefineOptions o;
  o.target_loss = 0.16;
  o.stack = 2;
  const RefineResult r = RefineUnits(SyntheticLoss({0}, 0.02), Singletons(9), All(9), o);
  EXPECT_EQ(r.removed_units, 5);
  EXPECT_EQ(r.units, (std::vector<int64_t>{0, 6, 7, 8}));  // ties go in index order
  EXPECT_NEAR(r.loss.loss, 0.15, 1e-9);
  EXPECT_LE(r.loss.loss, o.target_loss + 1e-12);
  EXPECT_DOUBLE_EQ(r.minimality, 1.0);
}

TEST(RefineUnitsTest, ACircuitOfNeededUnitsIsUnchanged) {
  RefineOptions o;
  const RefineResult r = RefineUnits(SyntheticLoss({1, 3, 4}, 0.0), Singletons(6), {4, 1, 3}, o);
  EXPECT_EQ(r.units, (std::vector<int64_t>{1, 3, 4}));
  EXPECT_EQ(r.removed_units, 0);
  EXPECT_EQ(r.passes, 1);
  EXPECT_EQ(r.evaluations, 4);  // the set itself and three single removals
  EXPECT_DOUBLE_EQ(r.minimality, 1.0);
}

TEST(RefineUnitsTest, MeasureOnlyKeepsTheSetAndReportsItsMinimality) {
  RefineOptions o;
  o.remove = false;
  const RefineResult r = RefineUnits(SyntheticLoss({2, 5, 7}, 0.0), Singletons(10), All(10), o);
  EXPECT_EQ(r.units, All(10));
  EXPECT_EQ(r.removed_units, 0);
  EXPECT_DOUBLE_EQ(r.minimality, 0.3);
}

TEST(RefineUnitsTest, MinimalityCountsNodesOfMultiNodeUnits) {
  MaskUnits u;
  u.n_units = 2;
  u.node_unit = {0, 0, 0, 1};
  u.unit_nodes = {{0, 1, 2}, {3}};
  RefineOptions o;
  o.remove = false;
  const RefineResult r = RefineUnits(SyntheticLoss({0}, 0.0), u, {0, 1}, o);
  EXPECT_DOUBLE_EQ(r.minimality, 0.75);  // node 0's unit holds 3 of the 4 nodes
}

TEST(RefineUnitsTest, GallopingSearchScoresFewSets) {
  RefineOptions o;
  const RefineResult r = RefineUnits(SyntheticLoss({2, 5, 7}, 0.0), Singletons(10), All(10), o);
  // Sweep: the set and 10 single removals; the run of all 7 candidates: lengths
  // 2, 4, 7 (length 1 is the sweep's); the last sweep: 3 single removals.
  EXPECT_EQ(r.evaluations, 11 + 3 + 3);
}

TEST(RefineUnitsTest, ConfirmationPutsBackTheLastRemovedUntilTheTargetHolds) {
  // Selection sees no cost in the 7 unneeded units; the confirmation split
  // charges 0.02 for each: 5 fit under 0.16 (0.05 + 5 * 0.02).
  RefineOptions o;
  o.target_loss = 0.16;
  const BatchLossFn select = SyntheticLoss({2, 5, 7}, 0.0);
  const BatchLossFn confirm = SyntheticLoss({2, 5, 7}, 0.02);
  const RefineResult r = RefineUnits(select, Singletons(10), All(10), o, nullptr, confirm);
  // Removal order 0, 1, 3, 4, 6, 8, 9 (tied bounds: index order); 8 and 9 go back.
  EXPECT_EQ(r.units, (std::vector<int64_t>{2, 5, 7, 8, 9}));
  EXPECT_EQ(r.removed_units, 5);
  EXPECT_EQ(r.readded_units, 2);
  EXPECT_EQ(r.readded_nodes, 2);
  EXPECT_NEAR(r.loss.loss, 0.15, 1e-9);           // on the confirmation split
  EXPECT_NEAR(r.select_loss.loss, 0.05, 1e-12);   // on the selection split
  // Confirmation: the selected set (7 removed), then prefixes 3, 5, 6.
  EXPECT_EQ(r.confirm_evaluations, 4);
  // Selection: the sweep (set + 10), the run (lengths 2, 4, 7); then one sweep of
  // the set kept (set + 5), none of the rejected one.
  EXPECT_EQ(r.evaluations, 11 + 3 + 6);
  EXPECT_EQ(r.passes, 2);
  // Minimality on the selection split: 8 and 9 are not needed there.
  EXPECT_DOUBLE_EQ(r.minimality, 0.6);
  ASSERT_EQ(r.removal_bound.size(), 5u);
  EXPECT_LE(r.removal_bound[3], o.target_loss);

  const RefineResult again = RefineUnits(select, Singletons(10), All(10), o, nullptr, confirm);
  EXPECT_EQ(again.units, r.units);
  EXPECT_EQ(again.evaluations, r.evaluations);
  EXPECT_EQ(again.confirm_evaluations, r.confirm_evaluations);
}

TEST(RefineUnitsTest, ConfirmationThatHoldsChangesNothing) {
  RefineOptions o;
  const BatchLossFn loss = SyntheticLoss({2, 5, 7}, 0.0);
  const RefineResult alone = RefineUnits(loss, Singletons(10), All(10), o);
  const RefineResult r = RefineUnits(loss, Singletons(10), All(10), o, nullptr, loss);
  EXPECT_EQ(r.units, alone.units);
  EXPECT_EQ(r.evaluations, alone.evaluations);
  EXPECT_EQ(r.readded_units, 0);
  EXPECT_EQ(r.confirm_evaluations, 1);
  EXPECT_DOUBLE_EQ(r.minimality, 1.0);
}

TEST(RefineUnitsTest, ConfirmationThatFailsEverywhereRestoresTheInput) {
  // Any removal breaks the target on the confirmation split.
  RefineOptions o;
  const RefineResult r = RefineUnits(SyntheticLoss({2}, 0.0), Singletons(4), All(4), o, nullptr,
                                     SyntheticLoss({0, 1, 2, 3}, 0.0));
  EXPECT_EQ(r.units, All(4));
  EXPECT_EQ(r.removed_units, 0);
  EXPECT_EQ(r.readded_units, 3);
  EXPECT_NEAR(r.loss.loss, 0.05, 1e-12);  // the input, scored on the confirmation split
  EXPECT_DOUBLE_EQ(r.minimality, 0.25);   // on the selection split only unit 2 is needed
  // Without the final sweep (re-extractions): the same set and loss, 5 sets
  // fewer scored (the set and its 4 single removals), no minimality.
  o.final_sweep = false;
  const RefineResult q = RefineUnits(SyntheticLoss({2}, 0.0), Singletons(4), All(4), o, nullptr,
                                     SyntheticLoss({0, 1, 2, 3}, 0.0));
  EXPECT_EQ(q.units, r.units);
  EXPECT_EQ(q.readded_units, 3);
  EXPECT_EQ(q.loss.loss, r.loss.loss);
  EXPECT_EQ(q.evaluations, r.evaluations - 5);
  EXPECT_TRUE(std::isnan(q.minimality));
  EXPECT_TRUE(q.removal_bound.empty());
}

TEST(RankingTest, TiesFollowTheSecondSignalThenTheIndex) {
  const torch::Tensor tau = torch::tensor({0.5, -1.0, -1.0, -1.0, 0.9, -0.9995});
  EXPECT_EQ(RankUnits(tau), (std::vector<int64_t>{4, 0, 5, 1, 2, 3}));
  const torch::Tensor second = torch::tensor({0.0, 0.1, 0.3, 0.3, 0.0, 0.2});
  // -0.9995 is within the tolerance (1e-3 of the range 1.9) of -1: one block.
  EXPECT_EQ(RankUnits(tau, second), (std::vector<int64_t>{4, 0, 2, 3, 5, 1}));
  EXPECT_EQ(RankUnits(tau, torch::Tensor()), RankUnits(tau));
}

TEST(RankingTest, TieAtCutCountsTheBlockOnBothSides) {
  const torch::Tensor tau = torch::tensor({0.5, -1.0, -1.0, -1.0, 0.9});
  const std::vector<int64_t> order = RankUnits(tau);  // 4, 0, 1, 2, 3
  const TieAtCut cut = FindTieAtCut(tau, order, 3);
  EXPECT_EQ(cut.tied_kept, 1);
  EXPECT_EQ(cut.tied_left, 2);
  EXPECT_DOUBLE_EQ(cut.score, -1.0);
  EXPECT_EQ(FindTieAtCut(tau, order, 2).tied_kept, 0);  // cut between 0.5 and -1
  EXPECT_EQ(FindTieAtCut(tau, order, 5).tied_kept, 0);  // nothing left out
  EXPECT_EQ(FindTieAtCut(tau, order, 3, {1, 2, 2, 2, 1}).tied_kept, 2);  // weighted
}

class PlantedSaturatedTest : public ::testing::Test {
 protected:
  PlantedSaturatedTest()
      : model_(testing::PlantedSaturatedModel()),
        task_(testing::PlantedSaturatedTask(64, 32, 32, /*seed=*/3)),
        index_(model_.config()) {}

  ExtractOptions Options(Method method, bool refine) const {
    ExtractOptions o;
    o.seed = 5;
    o.method = method;
    o.refine = refine;
    o.masks.epochs = 30;
    o.masks.batch = 16;
    o.mean_windows = testing::PlantedSaturatedMeanWindows(32, /*seed=*/1);
    o.eval_batch = 32;
    o.random_draws = 1;
    return o;
  }

  Circuit Extract(const ExtractOptions& o, ExtractStats* stats = nullptr) {
    absl::StatusOr<Circuit> c =
        ExtractCircuitFromModel(model_, "attention.h5", "d2", task_, o, nullptr, stats);
    CIRCUIT_CHECK(c.ok());
    return *c;
  }

  static std::set<Node> Nodes(const Circuit& c) { return testing::NodeSet(c); }
  static std::set<Node> Planted() {
    const std::vector<Node> v = testing::PlantedSaturatedNodes();
    return {v.begin(), v.end()};
  }

  // Validation loss with exactly `nodes` kept.
  double LossOf(const std::set<Node>& nodes) {
    ExtractOptions o = Options(Method::kMasks, true);
    absl::StatusOr<MeanCache> means = ResolveMeans(model_, "d2", task_, o);
    CIRCUIT_CHECK(means.ok());
    AblationEvaluator eval(model_, index_, means->means, Ablation::kMean, task_.validation);
    torch::Tensor keep = torch::zeros({index_.total()});
    for (const Node& n : nodes) keep[index_.Flat(n)] = 1.0f;
    return eval.Score(keep).loss;
  }

  Model model_;
  TaskData task_;
  NodeIndex index_;
};

TEST_F(PlantedSaturatedTest, ThePlantedNodesAreSufficientAndEachIsNeeded) {
  EXPECT_LT(LossOf(Planted()), 0.01);
  for (const Node& n : testing::PlantedSaturatedNodes()) {
    std::set<Node> without = Planted();
    without.erase(n);
    EXPECT_GT(LossOf(without), 0.3) << NodeLabel(n);
  }
}

TEST_F(PlantedSaturatedTest, MasksWithRefinementRecoverThePlantedNodesExactly) {
  ExtractStats stats;
  const Circuit c = Extract(Options(Method::kMasks, true), &stats);
  EXPECT_TRUE(stats.met_target);
  EXPECT_EQ(Nodes(c), Planted());
  EXPECT_TRUE(c.refined);
  EXPECT_EQ(c.refine_removed, stats.nodes_before_refine - 12);
  EXPECT_DOUBLE_EQ(c.minimality, 1.0);
  EXPECT_GT(stats.refine_seconds, 0.0);
  EXPECT_LT(c.circuit_loss, 0.15);
  // Selected on as many train pairs as validation has, confirmed on validation.
  EXPECT_EQ(stats.refine_selection_pairs, 32);
  EXPECT_GE(stats.refine_confirm_evaluations, 1);
  EXPECT_EQ(stats.refine_readded_nodes, 0);
  EXPECT_LE(stats.validation_loss_bound, 0.15);
  EXPECT_FALSE(std::isnan(stats.test_loss_before_refine));
  RecordProperty("nodes_before", static_cast<int>(stats.nodes_before_refine));
  RecordProperty("refine_passes", stats.refine_passes);
  RecordProperty("refine_evaluations", static_cast<int>(stats.refine_evaluations));
  RecordProperty("confirm_evaluations", static_cast<int>(stats.refine_confirm_evaluations));
}

TEST_F(PlantedSaturatedTest, AttributionWithRefinementRecoversThePlantedNodesExactly) {
  ExtractStats stats;
  const Circuit c = Extract(Options(Method::kAttribution, true), &stats);
  EXPECT_TRUE(stats.met_target);
  EXPECT_EQ(Nodes(c), Planted());
  EXPECT_TRUE(c.refined);
  EXPECT_GT(c.refine_removed, 0);
  EXPECT_DOUBLE_EQ(c.minimality, 1.0);
}

TEST_F(PlantedSaturatedTest, WithoutRefinementTheTieIsReported) {
  ExtractStats stats;
  const Circuit c = Extract(Options(Method::kAttribution, false), &stats);
  EXPECT_TRUE(stats.met_target);
  EXPECT_FALSE(c.refined);
  EXPECT_GT(c.nodes.size(), 12u);
  EXPECT_GT(c.tied_nodes, 0);
  EXPECT_THAT(c.tie_note, ::testing::HasSubstr("tied with"));
  EXPECT_THAT(c.tie_note, ::testing::HasSubstr("arbitrary"));
  EXPECT_EQ(stats.tie_note, c.tie_note);
  // Measured, not refined: some kept nodes are not needed.
  EXPECT_LT(c.minimality, 1.0);
  EXPECT_GT(c.minimality, 0.0);
}

TEST_F(PlantedSaturatedTest, MasksAtTauMinusOneReportTheTieAndRefinementFixesIt) {
  // Long enough training for the unneeded masks, and the saturated query/key
  // path with them, to reach tau = -1: the cut then falls inside that block.
  ExtractOptions o = Options(Method::kMasks, false);
  o.masks.lr = 0.02;
  const Circuit c = Extract(o);
  EXPECT_GT(c.nodes.size(), 50u);
  EXPECT_GT(c.tied_nodes, 50);
  EXPECT_THAT(c.tie_note, ::testing::HasSubstr("at tau -1 "));
  EXPECT_THAT(c.tie_note, ::testing::HasSubstr("follows the attribution score"));
  EXPECT_LT(c.minimality, 0.5);
  for (const CircuitNode& n : c.nodes) {
    if (n.node == Node{0, NodeLocation::kAttnQ, 0}) EXPECT_EQ(n.mask_logit, -1.0f);
    if (n.node == Node{0, NodeLocation::kAttnK, 0}) EXPECT_EQ(n.mask_logit, -1.0f);
  }
  o.refine = true;
  const Circuit r = Extract(o);
  EXPECT_EQ(Nodes(r), Planted());
  EXPECT_EQ(r.refine_removed, static_cast<int64_t>(c.nodes.size()) - 12);
  EXPECT_EQ(r.tie_note, c.tie_note);  // the ranking's note stays with the refined circuit
  EXPECT_DOUBLE_EQ(r.minimality, 1.0);
}

TEST_F(PlantedSaturatedTest, RefinementIsDeterministicForASeed) {
  const Circuit a = Extract(Options(Method::kMasks, true));
  const Circuit b = Extract(Options(Method::kMasks, true));
  EXPECT_EQ(Nodes(a), Nodes(b));
  EXPECT_EQ(a.circuit_loss, b.circuit_loss);
  EXPECT_EQ(a.refine_removed, b.refine_removed);
  EXPECT_EQ(a.tie_note, b.tie_note);
  EXPECT_EQ(a.minimality, b.minimality);
}

TEST_F(PlantedSaturatedTest, LargerCircuitsThanTheLimitAreNotRefined) {
  ExtractOptions o = Options(Method::kAttribution, true);
  o.refine_limit = 5;
  ExtractStats stats;
  const Circuit c = Extract(o, &stats);
  EXPECT_FALSE(c.refined);
  EXPECT_TRUE(std::isnan(c.minimality));
  EXPECT_THAT(stats.note, ::testing::HasSubstr("--refine-limit 5"));
}

TEST_F(PlantedSaturatedTest, StackedScoringMatchesOneSetAtATime) {
  ExtractOptions o = Options(Method::kMasks, true);
  absl::StatusOr<MeanCache> means = ResolveMeans(model_, "d2", task_, o);
  ASSERT_TRUE(means.ok());
  AblationEvaluator eval(model_, index_, means->means, Ablation::kMean, task_.validation);
  auto gen = at::detail::createCPUGenerator(11);
  const torch::Tensor keeps = (torch::rand({3, index_.total()}, gen) < 0.7).to(torch::kFloat32);
  const torch::Tensor many = eval.LogitDiffsMany(keeps);
  ASSERT_EQ(many.sizes().vec(), (std::vector<int64_t>{3, eval.num_examples()}));
  for (int64_t m = 0; m < 3; ++m) {
    EXPECT_TRUE(torch::allclose(many[m], eval.LogitDiffs(keeps[m]), 1e-4, 1e-5)) << m;
  }
}

// Refinement asks to score in full only what it reads: the set itself (+inf)
// in a sweep; single removals and probes need only fail (the target). With
// give_up off every set is scored in full, and the result is the same.
TEST(RefineUnitsTest, OnlySetsThatNeedOnlyFailMayStopEarly) {
  RefineOptions o;
  o.target_loss = 0.15;
  const BatchLossFn synthetic = SyntheticLoss({2, 5, 7}, 0.0);
  std::vector<std::vector<double>> asked;
  const BatchLossFn recorded = [&](const torch::Tensor& keeps, const std::vector<double>& above) {
    asked.push_back(above);
    return synthetic(keeps, above);
  };
  const RefineResult r = RefineUnits(recorded, Singletons(10), All(10), o);
  ASSERT_FALSE(asked.empty());
  ASSERT_EQ(asked.front().size(), 11u);  // the first sweep: the set, then 10 removals
  EXPECT_TRUE(std::isinf(asked.front()[0]));
  for (size_t i = 1; i < asked.front().size(); ++i) EXPECT_EQ(asked.front()[i], o.target_loss);
  for (const std::vector<double>& a : asked) {
    for (double v : a) EXPECT_TRUE(std::isinf(v) || v == o.target_loss);
  }
  o.give_up = false;
  asked.clear();
  const RefineResult all = RefineUnits(recorded, Singletons(10), All(10), o);
  for (const std::vector<double>& a : asked) EXPECT_TRUE(a.empty());
  EXPECT_EQ(all.units, r.units);
  EXPECT_EQ(all.evaluations, r.evaluations);
}

}  // namespace
}  // namespace circuit::prune
