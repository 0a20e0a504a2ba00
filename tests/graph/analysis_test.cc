#include "circuit/graph/analysis.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "graph/small_circuit.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace circuit::graph {
namespace {

using ::circuit::testing::IsOk;
using ::circuit::testing::SmallCircuit;
using ::testing::ElementsAre;
using L = NodeLocation;

CircuitGraph SmallGraph() {
  absl::StatusOr<CircuitGraph> g = CircuitGraph::Build(SmallCircuit(), {/*d_head=*/2});
  EXPECT_THAT(g, IsOk());
  return *std::move(g);
}

TEST(AnalysisTest, ComputationOrderIsTopological) {
  const CircuitGraph g = SmallGraph();
  const std::vector<Vertex> order = ComputationOrder(g);
  ASSERT_EQ(order.size(), 17u);
  std::vector<int> position(order.size());
  for (size_t i = 0; i < order.size(); ++i) position[order[i]] = static_cast<int>(i);
  const Graph& gr = g.graph();
  for (const Edge& e : boost::make_iterator_range(boost::edges(gr))) {
    EXPECT_LT(position[boost::source(e, gr)], position[boost::target(e, gr)]);
    EXPECT_LT(ComputationStage(gr[boost::source(e, gr)].node()),
              ComputationStage(gr[boost::target(e, gr)].node()));
  }
}

TEST(AnalysisTest, ComputationStages) {
  EXPECT_EQ(ComputationStage({0, L::kAttnActIn, 0}), 0);
  EXPECT_EQ(ComputationStage({0, L::kAttnQ, 0}), 1);
  EXPECT_EQ(ComputationStage({0, L::kAttnV, 0}), 1);
  EXPECT_EQ(ComputationStage({0, L::kAttnResidDelta, 0}), 2);
  EXPECT_EQ(ComputationStage({1, L::kMlpResidDelta, 0}), 11);
  EXPECT_EQ(ComputationStage({2, L::kFinalResid, 0}), 12);
}

TEST(AnalysisTest, RemovesDanglingNodes) {
  const DanglingResult r = RemoveDanglingNodes(SmallGraph());
  EXPECT_THAT(r.removed_no_input, ElementsAre(Node{0, L::kMlpPostAct, 11}));
  EXPECT_THAT(r.removed_no_output,
              ElementsAre(Node{0, L::kAttnQ, 2},      // head 1 has no value channel
                          Node{1, L::kAttnActIn, 5},  // read by nothing
                          Node{1, L::kMlpActIn, 7},   // feeds only the dead write below
                          Node{1, L::kMlpPostAct, 4},
                          Node{1, L::kMlpResidDelta, 2}));  // channel 2 is never read
  EXPECT_EQ(r.removed_weight_edges, 4);
  std::vector<int64_t> rows;
  for (Vertex v = 0; v < static_cast<Vertex>(r.kept.num_nodes()); ++v)
    rows.push_back(r.kept[v].row);
  // q 0 and k 1 stay: the value channel of their head (0) reaches the logits.
  // final_resid 9 stays: it reads the embeddings and is an output.
  EXPECT_THAT(rows, ElementsAre(0, 1, 3, 4, 5, 6, 7, 9, 14, 15, 16));
  EXPECT_EQ(r.kept.num_weight_edges(), 6);
  EXPECT_EQ(r.kept.num_residual_edges(), 3);
  // Removing again removes nothing.
  const DanglingResult again = RemoveDanglingNodes(r.kept);
  EXPECT_TRUE(again.removed_no_input.empty());
  EXPECT_TRUE(again.removed_no_output.empty());
  EXPECT_EQ(again.kept.num_nodes(), 11);
}

TEST(AnalysisTest, QueryWithoutDHeadFollowsAnyValueOfItsLayer) {
  absl::StatusOr<CircuitGraph> g = CircuitGraph::Build(SmallCircuit(), {/*d_head=*/0});
  ASSERT_THAT(g, IsOk());
  const DanglingResult r = RemoveDanglingNodes(*g);
  EXPECT_THAT(r.removed_no_output, ::testing::Not(::testing::Contains(Node{0, L::kAttnQ, 2})));
}

TEST(AnalysisTest, MostImportantNodesKeepsTheTopNodesAndTheirEdges) {
  const Circuit c = SmallCircuit();  // importance 0.1 * row: the last rows rank first
  const Circuit top = MostImportantNodes(c, 6);
  ASSERT_EQ(top.nodes.size(), 6u);
  EXPECT_EQ(top.nodes.front().node, c.nodes[11].node);  // original order kept
  EXPECT_EQ(top.nodes.back().node, c.nodes[16].node);
  // Of the edges, only 11->12 and 12->13 join two of rows 11..16.
  ASSERT_EQ(top.edges.size(), 2u);
  EXPECT_EQ(top.edges[0].src, 0);
  EXPECT_EQ(top.edges[0].dst, 1);
  EXPECT_FLOAT_EQ(top.edges[1].weight, -2.0f);
  EXPECT_EQ(top.circuit_loss, c.circuit_loss);

  Circuit no_importance = c;
  for (CircuitNode& n : no_importance.nodes) n.importance = 0;
  no_importance.nodes[2].mask_logit = 10;  // ranks first by mask logit
  const Circuit by_logit = MostImportantNodes(no_importance, 1);
  ASSERT_EQ(by_logit.nodes.size(), 1u);
  EXPECT_EQ(by_logit.nodes[0].node, c.nodes[2].node);
  EXPECT_TRUE(by_logit.edges.empty());
  EXPECT_EQ(MostImportantNodes(c, 100).nodes.size(), c.nodes.size());
}

TEST(AnalysisTest, MostImportantNodesKeepsTheirExplanations) {
  Circuit c = SmallCircuit();
  c.explanations.class_names = {"prompt", "twin"};
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    NodeExplanation e;
    e.class_means = {static_cast<float>(i), -static_cast<float>(i)};
    c.explanations.nodes.push_back(e);
  }
  const Circuit top = MostImportantNodes(c, 6);  // rows 11..16
  ASSERT_EQ(top.explanations.nodes.size(), 6u);
  EXPECT_THAT(top.explanations.nodes[0].class_means, ElementsAre(11.0f, -11.0f));
  EXPECT_THAT(top.explanations.nodes[5].class_means, ElementsAre(16.0f, -16.0f));
  EXPECT_EQ(top.explanations.class_names, c.explanations.class_names);
}

TEST(AnalysisTest, ConnectedComponents) {
  const Components c = ConnectedComponents(SmallGraph());
  EXPECT_EQ(c.count, 2);  // everything, and the isolated final_resid 9
  EXPECT_THAT(c.sizes, ElementsAre(16, 1));
  EXPECT_EQ(c.of_vertex[16], 1);
  EXPECT_EQ(c.of_vertex[0], 0);
}

TEST(AnalysisTest, StrongestPathsMatchBruteForce) {
  const std::vector<Path> paths = StrongestPaths(SmallGraph(), 5);
  // Only row 0 is an input without incoming edges; two paths reach the logits:
  //   0 -2.0-> 4 -0.5-> 5 -> 6 -1.5-> 7 -0.8-> 9 -> 15   (1.2)
  //   0 -2.0-> 4 -0.5-> 5 -> 14                          (1.0)
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_THAT(paths[0].vertices, ElementsAre(0, 4, 5, 6, 7, 9, 15));
  EXPECT_NEAR(paths[0].strength, 1.2, 1e-6);
  EXPECT_THAT(paths[1].vertices, ElementsAre(0, 4, 5, 14));
  EXPECT_NEAR(paths[1].strength, 1.0, 1e-6);
  EXPECT_EQ(StrongestPaths(SmallGraph(), 1).size(), 1u);
  EXPECT_TRUE(StrongestPaths(SmallGraph(), 0).empty());
}

// A layered DAG with many paths: the k-best DP must equal exhaustive enumeration.
TEST(AnalysisTest, StrongestPathsOnDenseGraphMatchEnumeration) {
  Circuit c;
  c.n_layer = 1;
  for (int i = 0; i < 3; ++i) c.nodes.push_back({Node{0, L::kMlpActIn, i}});
  for (int i = 0; i < 3; ++i) c.nodes.push_back({Node{0, L::kMlpPostAct, i}});
  for (int i = 0; i < 3; ++i) c.nodes.push_back({Node{0, L::kMlpResidDelta, 10 + i}});
  for (int i = 0; i < 3; ++i) c.nodes.push_back({Node{1, L::kFinalResid, 10 + i}});
  float w = 0.3f;
  for (int a = 0; a < 3; ++a) {
    for (int b = 0; b < 3; ++b) {
      c.edges.push_back({a, 3 + b, w});
      w = -w * 1.37f + 0.11f;
      c.edges.push_back({3 + a, 6 + b, w});
      w = -w * 1.21f + 0.07f;
    }
  }
  absl::StatusOr<CircuitGraph> g = CircuitGraph::Build(c);
  ASSERT_THAT(g, IsOk());
  std::vector<double> all;  // 3 inputs x 3 neurons x 3 writes, each to its final_resid
  for (const CircuitEdge& e1 : c.edges) {
    if (e1.src >= 3) continue;
    for (const CircuitEdge& e2 : c.edges) {
      if (e2.src == e1.dst)
        all.push_back(std::abs(double(e1.weight)) * std::abs(double(e2.weight)));
    }
  }
  std::sort(all.rbegin(), all.rend());
  const std::vector<Path> paths = StrongestPaths(*g, 10);
  ASSERT_EQ(paths.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_NEAR(paths[i].strength, all[i], 1e-9) << i;
    EXPECT_EQ(paths[i].vertices.size(), 4u);
  }
}

TEST(AnalysisTest, Degrees) {
  const DegreeStats all = Degrees(SmallGraph());
  EXPECT_DOUBLE_EQ(all.in_mean, 15.0 / 17.0);
  EXPECT_DOUBLE_EQ(all.out_mean, 15.0 / 17.0);
  EXPECT_EQ(all.in_max, 2);   // mlp.resid_delta 7
  EXPECT_EQ(all.out_max, 4);  // attn.act_in 3
  const DegreeStats weights = Degrees(SmallGraph(), /*include_residual=*/false);
  EXPECT_DOUBLE_EQ(weights.in_mean, 10.0 / 17.0);
  EXPECT_EQ(weights.in_max, 2);
  EXPECT_EQ(weights.out_max, 4);
}

}  // namespace
}  // namespace circuit::graph
