// The viewer page (circuit view): its data, that it is self-contained, and its
// size for a 500-node circuit. The page's behaviour in a real browser is tested
// in view_browser_test.cc, the CLI in draw_cli_test.cc.
#include <iostream>
#include <regex>

#include "circuit/export/view.h"
#include "export/explained_circuit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"

namespace circuit {
namespace {

using ::circuit::testing::ExplainedSmallCircuit;
using ::circuit::testing::IsOk;
using ::circuit::testing::SmallCircuit;
using ::circuit::testing::StatusIs;
using ::circuit::testing::SyntheticCircuit;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using json = nlohmann::json;

graph::CircuitGraph Graph(const Circuit& c) {
  absl::StatusOr<graph::CircuitGraph> g = graph::CircuitGraph::Build(c, {/*d_head=*/2});
  EXPECT_THAT(g, IsOk());
  return g.ok() ? *std::move(g) : graph::CircuitGraph();
}

// The JSON blob of a page, as the page's script reads it.
json PageData(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"circuit-data\">";
  const size_t start = html.find(open);
  EXPECT_NE(start, std::string::npos);
  const size_t end = html.find("</script>", start);
  return json::parse(html.substr(start + open.size(), end - start - open.size()));
}

DotOptions Titled(const std::string& title) {
  DotOptions options;
  options.title = title;
  return options;
}

std::string Token(const json& data, const json& id) { return data["tokens"][id.get<int>()]; }

TEST(ViewDataTest, NodesAndEdgesWithoutExplanations) {
  const Circuit c = SmallCircuit();
  const json j = json::parse(CircuitViewData(c, Graph(c), Titled("small")));
  EXPECT_EQ(j["format"], "circuit.view");
  EXPECT_EQ(j["title"], "small");
  ASSERT_EQ(j["nodes"].size(), c.nodes.size());
  EXPECT_EQ(j["nodes"][7]["label"], "L0 mlp.post_act 10");
  EXPECT_EQ(j["nodes"][7]["row"], 7);
  EXPECT_NEAR(j["nodes"][7]["importance"].get<double>(), c.nodes[7].importance, 1e-4);
  ASSERT_EQ(j["edges"].size(), 15u);  // 10 weight + 5 residual
  int residual = 0;
  for (const json& e : j["edges"]) residual += e[3] == 1;
  EXPECT_EQ(residual, 5);
  EXPECT_TRUE(j["explanations"].is_null());
  DotOptions no_residual;
  no_residual.residual_edges = false;
  EXPECT_EQ(json::parse(CircuitViewData(c, Graph(c), no_residual))["edges"].size(), 10u);
}

TEST(ViewDataTest, ExplanationsFollowTheDrawnNodes) {
  Circuit c = ExplainedSmallCircuit();
  const graph::CircuitGraph full = Graph(c);
  std::vector<bool> keep(c.nodes.size(), false);
  keep[4] = keep[5] = keep[16] = true;  // a subgraph: rows, not positions, index explanations
  const json j = json::parse(CircuitViewData(c, full.Subgraph(keep)));
  ASSERT_EQ(j["nodes"].size(), 3u);
  const json& ex = j["explanations"];
  ASSERT_EQ(ex["nodes"].size(), 3u);
  EXPECT_EQ(ex["class_names"], json({"single", "double"}));
  const json& top = ex["nodes"][2]["top"][0];  // row 16
  EXPECT_EQ(Token(j, top[2][top[1].get<int>()]), " q16");
  EXPECT_NEAR(top[0].get<double>(), 3.6, 1e-4);
  EXPECT_EQ(Token(j, ex["nodes"][1]["promoted"][0][0]), "\"");  // row 5 writes the residual
  EXPECT_FALSE(ex["nodes"][1].contains("inputs"));
  // Row 4's activations are 0.4 * (t - 2.5) at position t: largest 1.4 at t = 6.
  EXPECT_NEAR(ex["nodes"][0]["acts_scale"].get<double>(), 1.4, 1e-4);
  EXPECT_EQ(ex["nodes"][0]["acts"][1], json({-71, -43, -14, 14, 43, 71, 100}));
  EXPECT_EQ(ex["nodes"][0]["hist"][1], json({3, 40, 50, 7}));
  // Every token text is stored once: " =" appears in both prompts.
  EXPECT_EQ(ex["prompts"][0][1], ex["prompts"][1][1]);
  EXPECT_EQ(Token(j, ex["prompts"][1][5]), "\xEF\xBF\xBD");  // the lone byte, replaced
}

TEST(ViewHtmlTest, SelfContainedPageWithOneElementPerNode) {
  const Circuit c = ExplainedSmallCircuit();
  absl::StatusOr<std::string> html = CircuitViewHtml(c, Graph(c), Titled("<small>"));
  ASSERT_THAT(html, IsOk());
  EXPECT_THAT(*html, StartsWith("<!DOCTYPE html>"));
  EXPECT_THAT(*html, HasSubstr("<title>&lt;small&gt;</title>"));
  // No marker left unfilled, no file or address loaded from elsewhere.
  for (const char* marker : {"@TITLE@", "@STYLE@", "@SVG@", "@DATA@", "@SCRIPT@", "@SELFTEST@"}) {
    EXPECT_THAT(*html, Not(HasSubstr(marker)));
  }
  EXPECT_THAT(*html, Not(HasSubstr("<link")));
  EXPECT_THAT(*html, Not(HasSubstr("<script src")));
  EXPECT_THAT(*html, Not(HasSubstr("<?xml")));
  std::string rest = *html;
  const std::regex address(R"((https?:)?//[A-Za-z0-9.-]+/[^"' ]*)");
  for (std::sregex_iterator it(rest.begin(), rest.end(), address), end; it != end; ++it) {
    // Only the SVG and XLink namespace names, which are never fetched.
    EXPECT_THAT(it->str(), ::testing::AnyOf(StartsWith("http://www.w3.org/2000/svg"),
                                            StartsWith("http://www.w3.org/1999/xlink")));
  }
  const std::regex node_element(R"re(<g id="n(\d+)" class="node">)re");
  EXPECT_EQ(std::distance(std::sregex_iterator(rest.begin(), rest.end(), node_element),
                          std::sregex_iterator()),
            static_cast<long>(c.nodes.size()));
  EXPECT_THAT(*html, HasSubstr("<g id=\"e0_4\" class=\"edge\">"));
  // Token text with markup stays inside the data: the only </script> closes a script.
  const json data = PageData(*html);
  EXPECT_EQ(Token(data, data["explanations"]["prompts"][0][3]), "</script>");
  EXPECT_EQ(json(data["nodes"]).size(), c.nodes.size());
}

TEST(ViewHtmlTest, MisalignedExplanationsAreRejected) {
  Circuit c = ExplainedSmallCircuit();
  c.explanations.nodes.pop_back();
  EXPECT_THAT(CircuitViewHtml(c, Graph(c)), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("16 node explanations for 17")));
}

TEST(ViewHtmlTest, FiveHundredExplainedNodesStayUnderThreeMegabytes) {
  const Circuit c = SyntheticCircuit(/*explained=*/true);
  ASSERT_EQ(c.nodes.size(), 500u);
  absl::StatusOr<graph::CircuitGraph> g = graph::CircuitGraph::Build(c, {/*d_head=*/2});
  ASSERT_THAT(g, IsOk());
  absl::StatusOr<std::string> html = CircuitViewHtml(c, *g);
  ASSERT_THAT(html, IsOk());
  std::cout << "500 nodes, " << g->num_weight_edges() << " weight and " << g->num_residual_edges()
            << " residual edges, explained: " << html->size() << " bytes\n";
  EXPECT_LT(html->size(), 3u * 1000 * 1000);
  EXPECT_EQ(PageData(*html)["explanations"]["nodes"].size(), 500u);
}

}  // namespace
}  // namespace circuit
