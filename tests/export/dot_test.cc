#include "circuit/export/dot.h"

#include <graphviz/cgraph.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "gmock/gmock.h"
#include "graph/small_circuit.h"
#include "gtest/gtest.h"
#include "testing/require.h"
#include "testing/run.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::circuit::testing::IsOk;
using ::circuit::testing::SmallCircuit;
using ::circuit::testing::StatusIs;
using ::circuit::testing::TempDir;
using ::testing::HasSubstr;

struct Closer {
  void operator()(Agraph_t* g) const { agclose(g); }
};
using GraphPtr = std::unique_ptr<Agraph_t, Closer>;

graph::CircuitGraph SmallGraph() {
  absl::StatusOr<graph::CircuitGraph> g = graph::CircuitGraph::Build(SmallCircuit(), {2});
  EXPECT_THAT(g, IsOk());
  return *std::move(g);
}

std::string Attr(void* object, const char* name) {
  const char* v = agget(object, const_cast<char*>(name));
  return v == nullptr ? "" : v;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

DotOptions Bare() {
  DotOptions o;
  o.legend = false;
  o.embedding_node = false;
  return o;
}

TEST(DotTest, ReadsBackWithTheSameNodesAndEdges) {
  absl::StatusOr<std::string> dot = CircuitToDot(SmallGraph(), Bare());
  ASSERT_THAT(dot, IsOk());
  GraphPtr g(agmemread(dot->c_str()));
  ASSERT_NE(g, nullptr) << *dot;
  EXPECT_EQ(agnnodes(g.get()), 17);
  EXPECT_EQ(agnedges(g.get()), 15);
  std::map<std::string, int> kinds;
  for (Agnode_t* n = agfstnode(g.get()); n != nullptr; n = agnxtnode(g.get(), n)) {
    for (Agedge_t* e = agfstout(g.get(), n); e != nullptr; e = agnxtout(g.get(), e)) {
      const std::string kind = Attr(e, "kind");
      ++kinds[kind];
      const double w = std::stod(Attr(e, "circuit_weight"));
      if (kind == "residual") {
        EXPECT_EQ(Attr(e, "style"), "dashed");
        EXPECT_EQ(w, 1.0);
      } else {
        EXPECT_EQ(Attr(e, "color"), w > 0 ? "#1f5fbf" : "#c8322d") << w;
      }
    }
  }
  EXPECT_EQ(kinds, (std::map<std::string, int>{{"residual", 5}, {"weight", 10}}));
  // Node attributes carry the node's address and label.
  Agnode_t* n7 = agnode(g.get(), const_cast<char*>("n7"), 0);
  ASSERT_NE(n7, nullptr);
  EXPECT_EQ(Attr(n7, "label"), "L0 mlp.post_act 10");
  EXPECT_EQ(Attr(n7, "location"), "mlp.post_act");
  EXPECT_EQ(Attr(n7, "layer"), "0");
  EXPECT_EQ(Attr(n7, "index"), "10");
}

TEST(DotTest, ClustersPerSublayerAndHead) {
  absl::StatusOr<std::string> dot = CircuitToDot(SmallGraph(), DotOptions{});
  ASSERT_THAT(dot, IsOk());
  GraphPtr g(agmemread(dot->c_str()));
  ASSERT_NE(g, nullptr);
  // Two extra nodes (embeddings, legend); embedding edges to the inputs without
  // incoming edges: L0 attn.act_in 3 and L2 final_resid 9.
  EXPECT_EQ(agnnodes(g.get()), 19);
  EXPECT_EQ(agnedges(g.get()), 17);
  const std::map<std::string, std::string> clusters = {
      {"cluster_embed", "embeddings"},   {"cluster_L0_attn", "layer 0 attention"},
      {"cluster_L0_mlp", "layer 0 MLP"}, {"cluster_L1_attn", "layer 1 attention"},
      {"cluster_L1_mlp", "layer 1 MLP"}, {"cluster_unembed", "unembedding"},
      {"cluster_legend", "legend"}};
  for (const auto& [name, label] : clusters) {
    Agraph_t* sub = agsubg(g.get(), const_cast<char*>(name.c_str()), 0);
    ASSERT_NE(sub, nullptr) << name;
    EXPECT_EQ(Attr(sub, "label"), label);
  }
  Agraph_t* attn = agsubg(g.get(), const_cast<char*>("cluster_L0_attn"), 0);
  Agraph_t* head0 = agsubg(attn, const_cast<char*>("cluster_L0_attn_h0"), 0);
  Agraph_t* head1 = agsubg(attn, const_cast<char*>("cluster_L0_attn_h1"), 0);
  ASSERT_NE(head0, nullptr);
  ASSERT_NE(head1, nullptr);
  EXPECT_EQ(agnnodes(head0), 3);  // q 0, k 1, v 0
  EXPECT_EQ(agnnodes(head1), 1);  // q 2
  EXPECT_EQ(agnnodes(attn), 6);
  Agraph_t* unembed = agsubg(g.get(), const_cast<char*>("cluster_unembed"), 0);
  EXPECT_EQ(agnnodes(unembed), 3);
}

TEST(DotTest, WithoutDHeadOneGroupPerLayer) {
  DotOptions o = Bare();
  absl::StatusOr<graph::CircuitGraph> g = graph::CircuitGraph::Build(SmallCircuit());
  ASSERT_THAT(g, IsOk());
  absl::StatusOr<std::string> dot = CircuitToDot(*g, o);
  ASSERT_THAT(dot, IsOk());
  EXPECT_THAT(*dot, HasSubstr("cluster_L0_attn_h0"));
  EXPECT_THAT(*dot, ::testing::Not(HasSubstr("cluster_L0_attn_h1")));
  o.d_head = 2;  // the option overrides the graph's
  dot = CircuitToDot(*g, o);
  ASSERT_THAT(dot, IsOk());
  EXPECT_THAT(*dot, HasSubstr("cluster_L0_attn_h1"));
}

TEST(DotTest, SvgIsWellFormedWithOneNodeGroupPerNode) {
  absl::StatusOr<std::string> dot = CircuitToDot(SmallGraph(), Bare());
  ASSERT_THAT(dot, IsOk());
  TempDir dir;
  const std::string path = dir.File("circuit.svg");
  ASSERT_THAT(RenderCircuit(*dot, "svg", path), IsOk());
  const std::string svg = Slurp(path);
  EXPECT_THAT(svg, HasSubstr("<svg"));
  EXPECT_EQ(Count(svg, "class=\"node\""), 17);
  EXPECT_EQ(Count(svg, "class=\"edge\""), 15);
  EXPECT_THAT(svg, HasSubstr("L0 mlp.post_act 10"));
  const char* python = "/usr/bin/python3";
  if (!std::filesystem::exists(python)) CIRCUIT_SKIP_UNLESS_CI() << "no /usr/bin/python3 to parse the SVG";
  const testing::RunResult r =
      testing::RunCommand(std::string(python) +
                          " -c 'import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); "
                          "print(sum(1 for g in d.getElementsByTagName(\"g\") if "
                          "g.getAttribute(\"class\") == \"node\"))' " +
                          path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "17\n") << r.err;
}

TEST(DotTest, FullDiagramRendersToSvg) {
  DotOptions o;
  o.title = "title here";
  absl::StatusOr<std::string> dot = CircuitToDot(SmallGraph(), o);
  ASSERT_THAT(dot, IsOk());
  absl::StatusOr<std::string> svg = RenderCircuitData(*dot, "svg");
  ASSERT_THAT(svg, IsOk());
  EXPECT_EQ(Count(*svg, "class=\"node\""), 19);
  // 2 layers x (attention, MLP), 2 heads in layer 0, embeddings, unembedding, legend.
  EXPECT_EQ(Count(*svg, "class=\"cluster\""), 9);
  EXPECT_THAT(*svg, HasSubstr("title here"));
}

TEST(DotTest, PngHasTheMagic) {
  absl::StatusOr<std::string> dot = CircuitToDot(SmallGraph(), DotOptions{});
  ASSERT_THAT(dot, IsOk());
  TempDir dir;
  ASSERT_THAT(RenderCircuit(*dot, "png", dir.File("c.png")), IsOk());
  const std::string png = Slurp(dir.File("c.png"));
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST(DotTest, DotFormatWritesTheTextUnchanged) {
  absl::StatusOr<std::string> dot = CircuitToDot(SmallGraph(), DotOptions{});
  ASSERT_THAT(dot, IsOk());
  TempDir dir;
  ASSERT_THAT(RenderCircuit(*dot, "dot", dir.File("c.dot")), IsOk());
  EXPECT_EQ(Slurp(dir.File("c.dot")), *dot);
}

TEST(DotTest, RenderErrors) {
  TempDir dir;
  EXPECT_THAT(RenderCircuit("digraph { a -> b }", "gif", dir.File("x.gif")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("gif")));
  EXPECT_THAT(RenderCircuit("digraph { a -> ", "svg", dir.File("x.svg")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not parse")));
  EXPECT_THAT(RenderCircuit("digraph { a -> b }", "svg", dir.File("no/dir/x.svg")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x.svg")));
  EXPECT_FALSE(std::filesystem::exists(dir.File("x.svg")));
}

TEST(DotTest, EmptyCircuitStillDraws) {
  Circuit c;
  c.n_layer = 2;
  absl::StatusOr<graph::CircuitGraph> g = graph::CircuitGraph::Build(c);
  ASSERT_THAT(g, IsOk());
  absl::StatusOr<std::string> dot = CircuitToDot(*g, DotOptions{});
  ASSERT_THAT(dot, IsOk());
  EXPECT_THAT(RenderCircuitData(*dot, "svg"), IsOk());
}

}  // namespace
}  // namespace circuit
