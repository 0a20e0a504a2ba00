#include "circuit/graph/circuit_graph.h"

#include <set>
#include <tuple>

#include "gmock/gmock.h"
#include "graph/small_circuit.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace circuit::graph {
namespace {

using ::circuit::testing::IsOk;
using ::circuit::testing::SmallCircuit;
using ::circuit::testing::StatusIs;
using ::testing::HasSubstr;

using EdgeKey = std::tuple<int64_t, int64_t, float, EdgeKind>;

std::set<EdgeKey> EdgesOf(const CircuitGraph& g) {
  std::set<EdgeKey> out;
  const Graph& gr = g.graph();
  for (const Edge& e : boost::make_iterator_range(boost::edges(gr))) {
    out.insert(
        {gr[boost::source(e, gr)].row, gr[boost::target(e, gr)].row, gr[e].weight, gr[e].kind});
  }
  return out;
}

TEST(CircuitGraphTest, HasExactlyTheWeightAndResidualEdges) {
  absl::StatusOr<CircuitGraph> g = CircuitGraph::Build(SmallCircuit(), {/*d_head=*/2});
  ASSERT_THAT(g, IsOk());
  EXPECT_EQ(g->num_nodes(), 17);
  EXPECT_EQ(g->num_weight_edges(), 10);
  EXPECT_EQ(g->num_residual_edges(), 5);
  const EdgeKind W = EdgeKind::kWeight, R = EdgeKind::kResidual;
  const std::set<EdgeKey> expected = {
      {0, 1, 0.5f, W}, {0, 2, 0.25f, W}, {0, 3, -1.0f, W}, {0, 4, 2.0f, W},   {4, 5, -0.5f, W},
      {6, 7, 1.5f, W}, {7, 9, 0.8f, W},  {8, 9, 0.3f, W},  {11, 12, 1.0f, W}, {12, 13, -2.0f, W},
      {5, 6, 1.0f, R}, {5, 10, 1.0f, R}, {5, 14, 1.0f, R}, {9, 11, 1.0f, R},  {9, 15, 1.0f, R}};
  EXPECT_EQ(EdgesOf(*g), expected);
  EXPECT_EQ(boost::num_edges(g->graph()), 15u);
}

TEST(CircuitGraphTest, VertexPropertiesAndLookup) {
  const Circuit c = SmallCircuit();
  absl::StatusOr<CircuitGraph> g = CircuitGraph::Build(c, {/*d_head=*/2});
  ASSERT_THAT(g, IsOk());
  for (int64_t i = 0; i < g->num_nodes(); ++i) {
    EXPECT_EQ((*g)[i].node(), c.nodes[i].node);
    EXPECT_EQ((*g)[i].importance, c.nodes[i].importance);
    EXPECT_EQ((*g)[i].mask_logit, c.nodes[i].mask_logit);
    EXPECT_EQ(g->Find(c.nodes[i].node), std::optional<Vertex>(i));
  }
  EXPECT_EQ(g->Find(Node{1, NodeLocation::kAttnQ, 0}), std::nullopt);
  EXPECT_EQ(g->Head(1), 0);   // q 0
  EXPECT_EQ(g->Head(2), 1);   // q 2
  EXPECT_EQ(g->Head(0), -1);  // act_in
}

TEST(CircuitGraphTest, ResidualEdgesCanBeLeftOut) {
  absl::StatusOr<CircuitGraph> g =
      CircuitGraph::Build(SmallCircuit(), {2, /*residual_edges=*/false});
  ASSERT_THAT(g, IsOk());
  EXPECT_EQ(g->num_residual_edges(), 0);
  EXPECT_EQ(boost::num_edges(g->graph()), 10u);
}

TEST(CircuitGraphTest, AttentionWriteFeedsTheSameLayersMlpButMlpWriteDoesNot) {
  using L = NodeLocation;
  Circuit c;
  c.n_layer = 2;
  for (const Node& n :
       {Node{0, L::kAttnActIn, 1}, Node{0, L::kAttnResidDelta, 1}, Node{0, L::kMlpActIn, 1},
        Node{0, L::kMlpResidDelta, 1}, Node{1, L::kAttnActIn, 1}, Node{1, L::kMlpActIn, 1},
        Node{2, L::kFinalResid, 1}}) {
    c.nodes.push_back({n});
  }
  absl::StatusOr<CircuitGraph> g = CircuitGraph::Build(c);
  ASSERT_THAT(g, IsOk());
  const EdgeKind R = EdgeKind::kResidual;
  // Writes 1 (attn L0) and 3 (mlp L0) to every later read; never back to row 0 or 2<-3.
  const std::set<EdgeKey> expected = {{1, 2, 1.0f, R}, {1, 4, 1.0f, R}, {1, 5, 1.0f, R},
                                      {1, 6, 1.0f, R}, {3, 4, 1.0f, R}, {3, 5, 1.0f, R},
                                      {3, 6, 1.0f, R}};
  EXPECT_EQ(EdgesOf(*g), expected);
}

TEST(CircuitGraphTest, RejectsBadCircuits) {
  Circuit unsorted = SmallCircuit();
  std::swap(unsorted.nodes[0], unsorted.nodes[1]);
  EXPECT_THAT(CircuitGraph::Build(unsorted),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not sorted")));

  Circuit bad_layer = SmallCircuit();
  bad_layer.nodes.back().node.layer = 3;
  EXPECT_THAT(CircuitGraph::Build(bad_layer),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("layer out of range")));

  Circuit bad_edge = SmallCircuit();
  bad_edge.edges[2].dst = 17;
  EXPECT_THAT(CircuitGraph::Build(bad_edge),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("edge 2 (0 -> 17)")));

  Circuit backwards = SmallCircuit();
  backwards.edges[4] = {5, 4, 1.0f};
  EXPECT_THAT(CircuitGraph::Build(backwards),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not go forward")));
}

TEST(CircuitGraphTest, SubgraphKeepsInducedEdges) {
  absl::StatusOr<CircuitGraph> g = CircuitGraph::Build(SmallCircuit(), {2});
  ASSERT_THAT(g, IsOk());
  std::vector<bool> keep(17, false);
  for (int v : {0, 4, 5, 14}) keep[v] = true;
  const CircuitGraph sub = g->Subgraph(keep);
  EXPECT_EQ(sub.num_nodes(), 4);
  EXPECT_EQ(sub.num_weight_edges(), 2);    // 0->4, 4->5
  EXPECT_EQ(sub.num_residual_edges(), 1);  // 5->14
  EXPECT_EQ(EdgesOf(sub), (std::set<EdgeKey>{{0, 4, 2.0f, EdgeKind::kWeight},
                                             {4, 5, -0.5f, EdgeKind::kWeight},
                                             {5, 14, 1.0f, EdgeKind::kResidual}}));
}

}  // namespace
}  // namespace circuit::graph
