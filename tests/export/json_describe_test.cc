#include <algorithm>

#include "circuit/export/describe.h"
#include "circuit/export/json.h"
#include "gmock/gmock.h"
#include "graph/small_circuit.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"

namespace circuit {
namespace {

using ::circuit::testing::IsOk;
using ::circuit::testing::SmallCircuit;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;

TEST(JsonTest, NodesEdgesAndFigures) {
  const Circuit c = SmallCircuit();
  const nlohmann::json j = nlohmann::json::parse(CircuitToJson(c, nullptr));
  EXPECT_EQ(j["format"], "circuit.json");
  EXPECT_EQ(j["task"], c.task);
  EXPECT_EQ(j["model"]["file"], "default.h5");
  ASSERT_EQ(j["nodes"].size(), 17u);
  EXPECT_EQ(j["nodes"][7]["label"], "L0 mlp.post_act 10");
  EXPECT_EQ(j["nodes"][7]["location"], "mlp.post_act");
  EXPECT_EQ(j["nodes"][7]["importance"].get<float>(), c.nodes[7].importance);
  ASSERT_EQ(j["edges"].size(), 10u);
  EXPECT_EQ(j["edges"][3]["src"], 0);
  EXPECT_EQ(j["edges"][3]["dst"], 4);
  EXPECT_EQ(j["edges"][3]["weight"], 2.0);
  EXPECT_EQ(j["figures"]["circuit_loss"].get<double>(), c.circuit_loss);
  EXPECT_EQ(j["figures"]["n_edges"], 10);
  EXPECT_EQ(j["figures"]["loss_vs_k"]["k"], nlohmann::json({4, 8, 16, 17}));
  EXPECT_EQ(j["figures"]["location_importance"]["L0 attn.q"], 0.75);
  EXPECT_TRUE(j["figures"]["minimality"].is_null());  // NaN: not measured
  EXPECT_EQ(j["figures"]["refined"], false);
  EXPECT_EQ(j["figures"]["tie_note"], "");
  EXPECT_EQ(j["figures"]["edge_candidates"], -1);     // edges not chosen by attribution
  EXPECT_TRUE(j["figures"]["edge_loss"].is_null());
  EXPECT_FALSE(j.contains("graph"));
}

TEST(JsonTest, MinimalityRefinementAndTies) {
  Circuit c = SmallCircuit();
  c.minimality = 0.5;
  c.refined = true;
  c.refine_removed = 3;
  c.tied_nodes = 2;
  c.tie_note = "2 of the 17 kept nodes are tied";
  const nlohmann::json j = nlohmann::json::parse(CircuitToJson(c, nullptr));
  EXPECT_EQ(j["figures"]["minimality"], 0.5);
  EXPECT_EQ(j["figures"]["refined"], true);
  EXPECT_EQ(j["figures"]["refine_removed"], 3);
  EXPECT_EQ(j["figures"]["tied_nodes"], 2);
  EXPECT_EQ(j["figures"]["tie_note"], c.tie_note);
  const std::string text = DescribeCircuit(c);
  EXPECT_THAT(text, HasSubstr("minimality  0.500 of the nodes are needed"));
  EXPECT_THAT(text, HasSubstr("refined: 3 nodes removed"));
  EXPECT_THAT(text, HasSubstr("ranking     2 of the 17 kept nodes are tied"));
  EXPECT_THAT(DescribeCircuit(SmallCircuit()), HasSubstr("minimality  not measured"));
}

TEST(JsonTest, WithGraphAddsResidualEdgesAndAnalyses) {
  const Circuit c = SmallCircuit();
  absl::StatusOr<graph::CircuitGraph> g = graph::CircuitGraph::Build(c, {2});
  ASSERT_THAT(g, IsOk());
  const nlohmann::json j = nlohmann::json::parse(CircuitToJson(c, &*g));
  ASSERT_EQ(j["edges"].size(), 15u);
  int residual = 0;
  for (const auto& e : j["edges"]) residual += e["kind"] == "residual";
  EXPECT_EQ(residual, 5);
  EXPECT_EQ(j["graph"]["n_weight_edges"], 10);
  EXPECT_EQ(j["graph"]["components"], 2);
  EXPECT_EQ(j["graph"]["strongest_paths"][0]["nodes"], nlohmann::json({0, 4, 5, 6, 7, 9, 15}));
}

TEST(DescribeTest, SummarisesTheCircuit) {
  const std::string text = DescribeCircuit(SmallCircuit());
  EXPECT_THAT(text, HasSubstr("task single_double_quote"));
  EXPECT_THAT(text, HasSubstr("default.h5 (digest 0123456789abcdef), 2 layers"));
  EXPECT_THAT(text, HasSubstr("masks, mean ablation, log penalty, seed 7"));
  EXPECT_THAT(text, HasSubstr("17 nodes of 6144"));
  EXPECT_THAT(text, HasSubstr("10 edges"));
  EXPECT_THAT(text, HasSubstr("circuit 0.1406 (target 0.15), full model 0.031"));
  EXPECT_THAT(text, ContainsRegex("attn\\.q +2\n"));
  EXPECT_THAT(text, ContainsRegex("final_resid +3\n"));
  // Importance grows with the row, so the last node leads and ten are listed.
  EXPECT_THAT(text, ContainsRegex("by importance[^\n]*\n  L2 final_resid 9 +1\\.6000"));
  const size_t top = text.find("top 10 nodes");
  ASSERT_NE(top, std::string::npos);
  EXPECT_EQ(std::count(text.begin() + top, text.end(), '\n'), 11);
  EXPECT_EQ(text.back(), '\n');
}

}  // namespace
}  // namespace circuit
