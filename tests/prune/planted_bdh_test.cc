// The pruning engine on the second architecture: a hand-built one-layer BDH
// model whose answer flows through one gated neuron, extracted through the
// TapModel seam (masks, mean ablation), and BDH edges.
//
// One head, D = 8, N = 8. Tokens: A (1), B (2), distractors 3..5, answers
// X (6) and Y (7). Every token writes residual channel 1; A writes +ch0, B -ch0,
// distractor k writes ch(2 + k). The mechanism:
//   x-neuron 0 reads ch0: it fires on A only;
//   x-neuron 6 (a RoPE pair of very low frequency, so position-blind) reads
//   ch1: every token, so attention spreads over the earlier positions and
//   the read-out carries ch1, which y-neuron 0 reads: it fires at every
//   position after the first;
//   gate 0 = x-neuron 0 * y-neuron 0: nonzero on A only; the decoder writes it
//   to ch5, which lm_head turns into X; without it ch1 makes Y win.
// Over distractor text (the means), x-neuron 0, gate 0, ch0 and ch5 average 0,
// so mean ablation of any of them breaks the task; x-neuron 6, y-neuron 0, the
// attention read-out and final ch1 average about what they always are.
// The planted circuit: L0 resid_in 0, L0 x_neuron 0, L0 gate 0, L1 final_resid 5.
#include <set>
#include <vector>

#include "circuit/core/bdh.h"
#include "circuit/core/status.h"
#include "circuit/prune/ablation.h"
#include "circuit/prune/edge_selection.h"
#include "circuit/prune/edges.h"
#include "circuit/prune/mean_cache.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/pruner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "planted.h"

namespace circuit::prune {
namespace {

using L = NodeLocation;

constexpr int kA = 1, kB = 2, kX = 6, kY = 7;
constexpr int kDistractors[] = {3, 4, 5};

BdhConfig PlantedBdhConfig() {
  BdhConfig c;
  c.n_layer = 1;
  c.d_model = 8;
  c.n_head = 1;
  c.n_neuron = 8;
  c.vocab_size = 8;
  c.n_ctx = 16;
  c.dropout = 0.0;
  return c;
}

BdhModel PlantedBdhModel() {
  const BdhConfig c = PlantedBdhConfig();
  torch::Tensor embed = torch::zeros({8, 8}), encoder = torch::zeros({1, 8, 8}),
                encoder_v = torch::zeros({1, 8, 8}), decoder = torch::zeros({8, 8}),
                lm_head = torch::zeros({8, 8});
  // Each embedding has mean 0, so LayerNorm only scales it.
  for (int t = 0; t < 8; ++t) {
    embed[t][1] = 1.0;  // every token
    embed[t][6] = -1.0;
    embed[t][7] = -1.0;
  }
  embed[kA][0] = 1.0;
  embed[kB][0] = -1.0;
  embed[kB][7] = 1.0;
  for (int k = 0; k < 3; ++k) embed[kDistractors[k]][2 + k] = 1.0;
  encoder[0][0][0] = 2.0;    // x-neuron 0 <- ch0 (A)
  encoder[0][1][6] = 1.0;    // x-neuron 6 <- ch1 (every token): attention
  encoder_v[0][1][0] = 1.0;  // y-neuron 0 <- read-out ch1
  decoder[0][5] = 1.0;       // gate 0 -> ch5
  lm_head[5][kX] = 10.0;  // X - Y = 10 ch5 - 5 ch1: ch5 (about 1.9) on A only
  lm_head[1][kY] = 5.0;
  absl::StatusOr<BdhModel> m = BdhModel::FromTensors(
      c, {{"decoder", decoder}, {"encoder", encoder}, {"encoder_v", encoder_v},
          {"lm_head", lm_head}, {"embed.weight", embed}});
  CIRCUIT_CHECK(m.ok());
  return *std::move(m);
}

std::vector<Node> PlantedBdhNodes() {
  return {Node{0, L::kBdhResidIn, 0}, Node{0, L::kBdhXNeuron, 0}, Node{0, L::kBdhGate, 0},
          Node{1, L::kFinalResid, 5}};
}

TaskData PlantedBdhTask(int n_train, int n_validation, int n_test, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto split = [&](int pairs) {
    std::vector<TaskExample> out;
    const torch::Tensor d = torch::randint(0, 3, {pairs, 3}, gen, torch::kInt64);
    for (int p = 0; p < pairs; ++p) {
      std::vector<int32_t> prompt;
      for (int j = 0; j < 3; ++j) prompt.push_back(kDistractors[d[p][j].item<int64_t>()]);
      std::vector<int32_t> twin = prompt;
      prompt.push_back(kA);
      twin.push_back(kB);
      testing::AddTwins(&out, prompt, twin, kX, kY);
    }
    return out;
  };
  TaskData data;
  data.name = "planted_bdh";
  data.description = "A vs B at the last position -> X vs Y, through one gated neuron";
  data.train = split(n_train);
  data.validation = split(n_validation);
  data.test = split(n_test);
  return data;
}

class PlantedBdhTest : public ::testing::Test {
 protected:
  PlantedBdhTest() : model_(PlantedBdhModel()), task_(PlantedBdhTask(64, 32, 32, /*seed=*/2)) {}

  ExtractOptions Options() const {
    ExtractOptions o;
    o.seed = 7;
    o.masks.epochs = 30;
    o.masks.batch = 16;
    o.mean_windows =
        testing::WindowsOf({kDistractors[0], kDistractors[1], kDistractors[2]}, 32, 8, 1);
    return o;
  }

  BdhModel model_;
  TaskData task_;
};

TEST_F(PlantedBdhTest, FullModelSolvesTheTaskThroughTheGate) {
  const NodeIndex index(model_.layout());
  EXPECT_EQ(index.total(), 8 + 8 + 8 + 8 + 8 + 8);
  std::vector<torch::Tensor> means(index.num_sites());
  const AblationEvaluator eval(model_, index, means, Ablation::kZero, task_.test);
  const TaskScore full = eval.Score(torch::Tensor());
  EXPECT_LT(full.loss, 0.05);
  EXPECT_EQ(full.accuracy, 1.0);
  // Zeroing gate 0 alone breaks it.
  torch::Tensor keep = torch::ones({index.total()});
  keep[index.Flat(Node{0, L::kBdhGate, 0})] = 0.0;
  EXPECT_GT(eval.Score(keep).loss, 0.5);
}

TEST_F(PlantedBdhTest, MasksFindThePlantedNodesAndTheFileSaysBdh) {
  ExtractStats stats;
  absl::StatusOr<Circuit> c =
      ExtractCircuitFromModel(model_, "planted_bdh.h5", "d1", task_, Options(), nullptr, &stats);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(stats.met_target);
  EXPECT_LE(c->circuit_loss, 0.15);
  const std::set<Node> got = testing::NodeSet(*c);
  for (const Node& n : PlantedBdhNodes()) EXPECT_TRUE(got.count(n)) << "missing " << NodeLabel(n);
  EXPECT_LE(got.size(), PlantedBdhNodes().size() + 1);  // y-neuron 0 may stay: it averages > 0
  EXPECT_EQ(c->arch, "bdh");
  EXPECT_EQ(c->total_nodes, 48);
  // Edges by attribution, chosen among the nonzero weights between kept nodes:
  // resid_in 0 -> x-neuron 0 (encoder, 2.0), x-neuron 0 -> gate 0 (link),
  // gate 0 -> final_resid 5 (decoder, 1.0).
  EXPECT_EQ(c->edge_definition, AttributionEdgeDefinition());
  EXPECT_GE(c->edge_candidates, 2);
  EXPECT_LE(c->edge_loss, 0.15);
  auto has_edge = [&](const Node& src, const Node& dst, float weight) {
    for (const CircuitEdge& e : c->edges) {
      if (c->nodes[e.src].node == src && c->nodes[e.dst].node == dst) return e.weight == weight;
    }
    return false;
  };
  EXPECT_TRUE(has_edge({0, L::kBdhResidIn, 0}, {0, L::kBdhXNeuron, 0}, 2.0f));
  EXPECT_TRUE(has_edge({0, L::kBdhXNeuron, 0}, {0, L::kBdhGate, 0}, 1.0f));
  EXPECT_TRUE(has_edge({0, L::kBdhGate, 0}, {1, L::kFinalResid, 5}, 1.0f));
}

TEST_F(PlantedBdhTest, AttributionAndZeroAblationFindThemToo) {
  for (const bool attribution : {true, false}) {
    ExtractOptions o = Options();
    if (attribution) {
      o.method = Method::kAttribution;
    } else {
      // Zero ablation also silences the always-on path (x-neuron 6, the
      // read-out, y-neuron 0) that mean ablation keeps at its usual value, so
      // the circuit holds it too; the planted nodes must be in either way.
      o.ablation = Ablation::kZero;
    }
    absl::StatusOr<Circuit> c = ExtractCircuitFromModel(model_, "planted_bdh.h5", "d1", task_, o);
    ASSERT_TRUE(c.ok()) << c.status();
    const std::set<Node> got = testing::NodeSet(*c);
    for (const Node& n : PlantedBdhNodes()) {
      EXPECT_TRUE(got.count(n)) << (attribution ? "attribution" : "zero") << " missing "
                                << NodeLabel(n);
    }
    EXPECT_LE(c->circuit_loss, 0.15) << (attribution ? "attribution" : "zero");
  }
}

// Edges by attribution on a circuit that also keeps resid_in 1, joined to
// x-neuron 0 by a weak weight: ch1 is the same on every token, so the edge
// carries nothing mean ablation would not; the two weights of the path stay.
TEST_F(PlantedBdhTest, EdgesByAttributionKeepThePathAndDropAWeakWeight) {
  torch::Tensor encoder = model_.encoder().clone();
  encoder[0][1][0] = 0.05;  // resid_in 1 -> x-neuron 0
  absl::StatusOr<BdhModel> model = BdhModel::FromTensors(
      PlantedBdhConfig(), {{"decoder", model_.decoder()}, {"encoder", encoder},
                           {"encoder_v", model_.encoder_v()}, {"lm_head", model_.lm_head()},
                           {"embed.weight", model_.embed()}});
  ASSERT_TRUE(model.ok()) << model.status();
  const NodeIndex index(model->layout());
  absl::StatusOr<MeanCache> means = ComputeMeans(*model, Options().mean_windows);
  ASSERT_TRUE(means.ok()) << means.status();
  std::vector<Node> nodes = PlantedBdhNodes();
  nodes.push_back({0, L::kBdhResidIn, 1});
  nodes.push_back({0, L::kBdhYNeuron, 0});
  std::vector<int64_t> flat;
  for (const Node& n : nodes) flat.push_back(index.Flat(n));
  std::sort(flat.begin(), flat.end());

  EdgeSelectionOptions o;
  absl::StatusOr<EdgeSelection> s = SelectBdhEdges(*model, index, means->means, flat, task_, o);
  ASSERT_TRUE(s.ok()) << s.status();
  // Candidates: encoder 0 -> 0 (2.0) and 1 -> 0 (0.05), decoder gate 0 -> ch5.
  EXPECT_EQ(s->candidates, 3);
  EXPECT_EQ(s->kept, 2);
  EXPECT_TRUE(s->met_target);
  EXPECT_LE(s->test_loss, 0.15);
  std::set<std::pair<Node, Node>> got;
  for (const CircuitEdge& e : s->edges) got.insert({index.At(flat[e.src]), index.At(flat[e.dst])});
  const std::set<std::pair<Node, Node>> want = {
      {{0, L::kBdhResidIn, 0}, {0, L::kBdhXNeuron, 0}},   // encoder 2.0
      {{0, L::kBdhXNeuron, 0}, {0, L::kBdhGate, 0}},      // links
      {{0, L::kBdhYNeuron, 0}, {0, L::kBdhGate, 0}},
      {{0, L::kBdhGate, 0}, {1, L::kFinalResid, 5}}};     // decoder 1.0
  EXPECT_EQ(got, want);

  o.ablation = Ablation::kResample;
  EXPECT_FALSE(SelectBdhEdges(*model, index, means->means, flat, task_, o).ok());
}

TEST(BdhEdgesTest, DenseBlocksAndOneToOneLinks) {
  const BdhModel model = PlantedBdhModel();
  // resid_in 1 -> attn_read 1 (its value) and x-neuron 6 (encoder 1.0); not to
  // attn_read 2; attn_read 1 -> y-neuron 0 (encoder_v); y-neuron 0 -> gate 0.
  const std::vector<Node> nodes = {{0, L::kBdhResidIn, 1},  {0, L::kBdhXNeuron, 6},
                                   {0, L::kBdhAttnRead, 1}, {0, L::kBdhAttnRead, 2},
                                   {0, L::kBdhYNeuron, 0},  {0, L::kBdhGate, 0}};
  const std::vector<CircuitEdge> edges = CircuitEdges(model, nodes);
  std::set<std::pair<int64_t, int64_t>> got;
  for (const CircuitEdge& e : edges) got.insert({e.src, e.dst});
  const std::set<std::pair<int64_t, int64_t>> want = {{0, 1}, {0, 2}, {2, 4}, {4, 5}};
  EXPECT_EQ(got, want);
  // Per layer: the nonzero weights (encoder 2, encoder_v 1, decoder 1) and
  // every link (x and y neurons into the gates, 2 * 8; values, 8).
  EXPECT_EQ(TotalEdges(model), 4 + 2 * 8 + 8);
}

}  // namespace
}  // namespace circuit::prune
