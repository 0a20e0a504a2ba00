// The audit: MIB's areas on hand-computed curves, the faithfulness endpoints,
// the control tasks, and a full audit of the planted-circuit model.
#include "circuit/prune/audit.h"

#include <cmath>
#include <set>

#include "circuit/core/status.h"
#include "circuit/prune/settings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "planted.h"
#include "testing/status_matchers.h"

namespace circuit::prune {
namespace {

using ::circuit::testing::IsOk;

std::vector<double> Grid() { return std::vector<double>(std::begin(kMibFractions), std::end(kMibFractions)); }

// f = x: CPR = ∫ x dx over [0.001, 1], CMD = ∫ (1 - x) dx; trapezoids are exact on lines.
TEST(MibAreaTest, LinearCurve) {
  const std::vector<double> x = Grid();
  const MibAreas a = MibArea(x, x);
  EXPECT_NEAR(a.cpr, (1.0 - 0.001 * 0.001) / 2, 1e-12);
  EXPECT_NEAR(a.cmd, 0.999 - (1.0 - 0.001 * 0.001) / 2, 1e-12);
}

// f = 0 up to 20 % of the nodes, 1 from 50 %: by hand,
// CPR = 0.3 · (0 + 1) / 2 + 0.5 · 1 = 0.65; CMD = 0.199 · 1 + 0.3 · (1 + 0) / 2 = 0.349.
TEST(MibAreaTest, StepCurveByHand) {
  const std::vector<double> f = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
  const MibAreas a = MibArea(Grid(), f);
  EXPECT_NEAR(a.cpr, 0.65, 1e-12);
  EXPECT_NEAR(a.cmd, 0.349, 1e-12);
  // Overshoot counts against CMD: |1 - f|, not 1 - f.
  const MibAreas over = MibArea({0.5, 1.0}, {1.5, 1.5});
  EXPECT_NEAR(over.cpr, 0.75, 1e-12);
  EXPECT_NEAR(over.cmd, 0.25, 1e-12);
}

TEST(FaithfulnessTest, EndpointsAndDegenerateSpan) {
  EXPECT_EQ(Faithfulness(/*loss=*/0.1, /*empty_loss=*/0.7, /*full_loss=*/0.1), 1.0);
  EXPECT_EQ(Faithfulness(0.7, 0.7, 0.1), 0.0);
  EXPECT_TRUE(std::isnan(Faithfulness(0.3, 0.3, 0.3)));
}

TEST(AuditHelpersTest, JaccardAndRanking) {
  EXPECT_EQ(Jaccard({1, 2, 3}, {2, 3, 4}), 0.5);
  EXPECT_EQ(Jaccard({}, {}), 1.0);
  EXPECT_EQ(RankNodes({0.5f, 2.0f, NAN, 2.0f}), (std::vector<int64_t>{1, 3, 0, 2}));
}

TEST(AuditHelpersTest, ControlTasksKeepPromptsAndChangeAnswers) {
  const TaskData task = testing::PlantedTask(64, 32, 32, /*seed=*/2);
  const TaskData shuffled = ShuffledAnswers(task, /*seed=*/1);
  int swapped = 0;
  for (size_t i = 0; i < task.train.size(); i += 2) {
    EXPECT_EQ(shuffled.train[i].tokens, task.train[i].tokens);
    const bool s = shuffled.train[i].correct != task.train[i].correct;
    // Both twins of a pair swap together, so each pair still has both answers.
    EXPECT_EQ(s, shuffled.train[i + 1].correct != task.train[i + 1].correct);
    swapped += s;
  }
  EXPECT_GT(swapped, 10);
  EXPECT_LT(swapped, 54);
  const TaskData constant = ConstantTarget(task);
  for (const TaskExample& ex : constant.test) EXPECT_EQ(ex.correct, task.train[0].correct);
}

// The verdict's rule (docs/faithfulness.md) on hand-made figures.
TEST(AuditHelpersTest, VerdictFollowsTheDocumentedRule) {
  AuditResult a;
  a.circuit_nodes = 40;
  a.circuit_loss = 0.1;
  a.controls = {{"shuffled", 5760, 0, 2.0, false}, {"random_init", 5760, 0, 0.7, false},
                {"constant", 800, 0, 0.1, true}};
  // The constant control needs more nodes than the circuit: no caveat.
  EXPECT_EQ(VerdictLine(a, 0.15),
            "distinguishable from controls: the shuffled control needs 144x more nodes and misses "
            "the target, as does the random-init model");
  EXPECT_EQ(ControlRatio(a), 144.0);
  a.controls[2].n_nodes = 30;  // ... fewer: the circuit is no smaller than the trivial one
  EXPECT_THAT(VerdictLine(a, 0.15),
              ::testing::HasSubstr("(but it is no smaller than the constant-answer control's 30 nodes)"));
  a.controls[2].n_nodes = 0;  // the all-ablated model answers the constant: no caveat
  EXPECT_THAT(VerdictLine(a, 0.15), ::testing::Not(::testing::HasSubstr("constant")));
  a.controls[2].n_nodes = 30;
  a.controls[0] = {"shuffled", 60, 0, 0.12, true};
  EXPECT_EQ(VerdictLine(a, 0.15),
            "NOT distinguishable: the shuffled control reaches the target with 60 nodes (circuit: 40) "
            "(but it is no smaller than the constant-answer control's 30 nodes)");
  EXPECT_EQ(ControlRatio(a), 1.5);
  a.circuit_loss = 0.2;
  EXPECT_THAT(VerdictLine(a, 0.15), ::testing::StartsWith("NOT a circuit for the task"));
}

class PlantedAuditTest : public ::testing::Test {
 protected:
  PlantedAuditTest()
      : model_(testing::PlantedModel()), task_(testing::PlantedTask(64, 32, 32, /*seed=*/2)) {
    options_.seed = 7;
    options_.masks.epochs = 30;
    options_.masks.batch = 16;
    options_.mean_windows = testing::PlantedMeanWindows(32, /*seed=*/1);
    options_.eval_batch = 32;
  }

  Model model_;
  TaskData task_;
  ExtractOptions options_;
};

// f is 1 for the full model and 0 for the empty circuit; the planted ranking
// beats random; the planted circuit is found by every seed and resample, and
// the shuffled-answers control cannot reach the target.
TEST_F(PlantedAuditTest, PlantedCircuitPassesTheAudit) {
  absl::StatusOr<Circuit> circuit =
      ExtractCircuitFromModel(model_, "planted.h5", "d1", task_, options_);
  ASSERT_THAT(circuit, IsOk());
  ASSERT_EQ(circuit->node_scores.size(), 60u);
  // The recorded options rebuild the ones used.
  absl::StatusOr<ExtractOptions> again = ExtractOptionsFor(*circuit);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->masks.epochs, 30);
  EXPECT_EQ(again->masks.batch, 16);
  EXPECT_EQ(again->seed, 7u);

  AuditInputs in;
  in.model = &model_;
  in.model_file = "planted.h5";
  in.model_digest = "d1";
  in.circuit = &*circuit;
  in.task = &task_;
  in.extract = options_;
  AuditOptions o;
  o.seeds = 3;
  o.seed = 7;
  o.joint_stability = false;  // seeds and resamples apart (the joint runs: below)
  absl::StatusOr<AuditResult> a = AuditCircuit(in, o);
  ASSERT_THAT(a, IsOk());

  ASSERT_EQ(a->curves.size(), 3u);  // masks, attribution, random
  EXPECT_EQ(a->curves[0].ranking, "masks");
  EXPECT_EQ(a->curves[1].ranking, "attribution");
  EXPECT_EQ(a->curves[2].ranking, "random");
  for (const FaithfulnessCurve& c : a->curves) {
    ASSERT_EQ(c.points.size(), 11u);  // the grid and the circuit's size
    EXPECT_EQ(c.points.front().nodes, 0);  // floor(0.001 · 60): the empty circuit
    EXPECT_EQ(c.points.front().f, 0.0);
    EXPECT_EQ(c.points.back().nodes, 60);  // the full model
    EXPECT_EQ(c.points.back().f, 1.0);
  }
  EXPECT_GT(a->curves[0].cpr, a->curves[2].cpr);
  EXPECT_LT(a->curves[0].cmd, a->curves[2].cmd);
  // At its own size the circuit recovers the task.
  for (const CurvePoint& p : a->curves[0].points) {
    if (!p.on_grid) EXPECT_GT(p.f, 0.8);
  }

  EXPECT_EQ(a->stability.runs, 6);  // the circuit, 2 more seeds, 3 resamples
  EXPECT_EQ(a->stability.mean_jaccard, 1.0);
  EXPECT_EQ(a->stability.min_jaccard, 1.0);
  std::set<std::string> planted;
  for (const Node& n : testing::PlantedNodes()) planted.insert(NodeLabel(n));
  EXPECT_EQ(std::set<std::string>(a->stability.core.begin(), a->stability.core.end()), planted);

  ASSERT_EQ(a->controls.size(), 3u);
  EXPECT_EQ(a->controls[0].name, "shuffled");
  EXPECT_FALSE(a->controls[0].met_target);
  EXPECT_GT(a->controls[0].circuit_loss, circuit->target_loss);
  EXPECT_EQ(a->controls[1].name, "random_init");
  EXPECT_EQ(a->controls[2].name, "constant");

  EXPECT_EQ(a->completeness.subsets, 32);
  EXPECT_GE(a->completeness.max, a->completeness.mean);
  EXPECT_THAT(a->verdict, ::testing::StartsWith("distinguishable from controls"));
  EXPECT_GT(a->extractions, 0);
  // The shuffled control kept every node (it missed the target): the ratio says so.
  EXPECT_EQ(ControlRatio(*a), 60.0 / circuit->nodes.size());
  std::set<std::string> parts;
  for (const auto& [name, seconds] : a->part_seconds) {
    parts.insert(name);
    EXPECT_GE(seconds, 0.0) << name;
  }
  for (const char* part : {"losses", "curves", "completeness", "controls", "stability"}) {
    EXPECT_TRUE(parts.count(part)) << part;
  }
  // Each re-extraction's time; the shuffled control missed: no refinement.
  ASSERT_EQ(static_cast<int64_t>(a->extraction_times.size()), a->extractions);
  EXPECT_EQ(a->extraction_times[0].what, "control shuffled");
  EXPECT_FALSE(a->extraction_times[0].met_target);
  EXPECT_EQ(a->extraction_times[0].nodes, 60);
  EXPECT_EQ(a->extraction_times[0].refine_evaluations, 0);
  for (const ExtractionTime& e : a->extraction_times) {
    EXPECT_GE(e.seconds, e.masks + e.discretize + e.refine) << e.what;
  }

  // Joint stability: 3 runs in all, each varying the seed and the train pairs.
  o.joint_stability = true;
  o.controls = false;
  o.other_method = false;
  absl::StatusOr<AuditResult> joint = AuditCircuit(in, o);
  ASSERT_THAT(joint, IsOk());
  EXPECT_TRUE(joint->stability.joint);
  EXPECT_EQ(joint->stability.runs, 3);
  EXPECT_EQ(joint->stability.mean_jaccard, 1.0);
  EXPECT_EQ(joint->extractions, 2);
  EXPECT_TRUE(std::isnan(ControlRatio(*joint)));
}

// A nodes-only re-extraction (the audit's) chooses the same nodes as the full
// one, with the same test loss, from means handed in.
TEST_F(PlantedAuditTest, NodesOnlyExtractionKeepsTheNodeSet) {
  ExtractStats full_stats, fast_stats;
  absl::StatusOr<Circuit> full =
      ExtractCircuitFromModel(model_, "planted.h5", "d1", task_, options_, nullptr, &full_stats);
  ASSERT_THAT(full, IsOk());
  absl::StatusOr<MeanCache> means = ResolveMeans(model_, "d1", task_, options_);
  ASSERT_THAT(means, IsOk());
  ExtractOptions fast = options_;
  fast.nodes_only = true;
  fast.means = &*means;
  absl::StatusOr<Circuit> c =
      ExtractCircuitFromModel(model_, "planted.h5", "d1", task_, fast, nullptr, &fast_stats);
  ASSERT_THAT(c, IsOk());
  ASSERT_EQ(c->nodes.size(), full->nodes.size());
  for (size_t i = 0; i < c->nodes.size(); ++i) EXPECT_EQ(c->nodes[i].node, full->nodes[i].node);
  EXPECT_EQ(c->edges.size(), full->edges.size());
  EXPECT_EQ(fast_stats.met_target, full_stats.met_target);
  EXPECT_NEAR(c->circuit_loss, full->circuit_loss, 1e-5);
  EXPECT_NEAR(c->full_model_loss, full->full_model_loss, 1e-5);
  EXPECT_TRUE(std::isnan(c->necessity_loss));
  EXPECT_TRUE(std::isnan(c->nodes[0].importance));
  EXPECT_EQ(c->node_scores, full->node_scores);
}

// Dropping sets that only need to miss the target (ExtractOptions::give_up)
// changes nothing a nodes-only re-extraction reports: the same refined nodes,
// edges and losses, in fewer scored prompts.
TEST_F(PlantedAuditTest, GivingUpOnMissingSetsKeepsTheRefinedCircuit) {
  absl::StatusOr<MeanCache> means = ResolveMeans(model_, "d1", task_, options_);
  ASSERT_THAT(means, IsOk());
  ExtractOptions fast = options_;
  fast.nodes_only = true;
  fast.means = &*means;
  ASSERT_TRUE(fast.refine);
  ExtractOptions slow = fast;
  slow.give_up = false;
  ExtractStats fast_stats, slow_stats;
  absl::StatusOr<Circuit> a =
      ExtractCircuitFromModel(model_, "planted.h5", "d1", task_, fast, nullptr, &fast_stats);
  absl::StatusOr<Circuit> b =
      ExtractCircuitFromModel(model_, "planted.h5", "d1", task_, slow, nullptr, &slow_stats);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  ASSERT_EQ(a->nodes.size(), b->nodes.size());
  for (size_t i = 0; i < a->nodes.size(); ++i) EXPECT_EQ(a->nodes[i].node, b->nodes[i].node);
  EXPECT_EQ(a->edges.size(), b->edges.size());
  EXPECT_EQ(a->circuit_loss, b->circuit_loss);
  EXPECT_EQ(fast_stats.met_target, slow_stats.met_target);
  EXPECT_EQ(fast_stats.validation_loss, slow_stats.validation_loss);
  EXPECT_EQ(fast_stats.refine_removed_nodes, slow_stats.refine_removed_nodes);
  EXPECT_EQ(fast_stats.refine_evaluations, slow_stats.refine_evaluations);
}

// A control that cannot meet the target stops at discretization: the active
// units and then the full set miss, so it keeps every node, is not refined and
// reports met_target false.
TEST_F(PlantedAuditTest, AControlThatMissesStopsAfterTheFullSet) {
  absl::StatusOr<MeanCache> means = ResolveMeans(model_, "d1", task_, options_);
  ASSERT_THAT(means, IsOk());
  ExtractOptions o = options_;
  o.nodes_only = true;
  o.means = &*means;
  ExtractStats stats;
  absl::StatusOr<Circuit> c = ExtractCircuitFromModel(
      model_, "planted.h5", "d1", ShuffledAnswers(task_, 7 ^ 0x5bu), o, nullptr, &stats);
  ASSERT_THAT(c, IsOk());
  EXPECT_FALSE(stats.met_target);
  EXPECT_EQ(static_cast<int64_t>(c->nodes.size()), c->total_nodes);
  EXPECT_LE(stats.evaluations, 2);  // the active units, then every unit
  EXPECT_FALSE(stats.refined);
  EXPECT_EQ(stats.refine_evaluations, 0);
  EXPECT_GT(c->circuit_loss, c->target_loss);
  // Neither cut falls inside a block of near-tied tau: no tie-break pass.
  EXPECT_TRUE(o.tie_break);
  EXPECT_EQ(stats.tie_break_seconds, 0.0);
}

// Stacked evaluation (the curves' and completeness's) gives each set's own loss.
TEST_F(PlantedAuditTest, StackedLossesMatchOneByOne) {
  absl::StatusOr<MeanCache> means = ResolveMeans(model_, "d1", task_, options_);
  ASSERT_THAT(means, IsOk());
  const NodeIndex index(model_.config());
  const AblationEvaluator eval(model_, index, means->means, Ablation::kMean, task_.test, 32);
  const std::vector<std::vector<int64_t>> sets = {{}, {0, 5, 17}, {1, 2, 3, 4, 40, 59}, {7}, {}};
  int64_t evaluations = 0;
  const std::vector<double> stacked = StackedLosses(eval, sets, index.total(), 2, &evaluations);
  ASSERT_EQ(stacked.size(), sets.size());
  EXPECT_EQ(evaluations, 5);
  for (size_t i = 0; i < sets.size(); ++i) {
    torch::Tensor keep = torch::zeros({index.total()});
    for (int64_t n : sets[i]) keep[n] = 1.0;
    EXPECT_NEAR(stacked[i], eval.Score(keep).loss, 1e-5) << i;
  }
}

}  // namespace
}  // namespace circuit::prune
