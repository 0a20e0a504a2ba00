// The optional /explanations/ group of circuit files: exact round trip, files
// without it, h5py, and the one-line summaries.
#include <cstring>
#include <filesystem>
#include <fstream>

#include "circuit/export/circuit_file.h"
#include "circuit/export/describe.h"
#include "gmock/gmock.h"
#include "graph/small_circuit.h"
#include "gtest/gtest.h"
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

// SmallCircuit (17 nodes) with explanations that exercise every list, some empty.
Circuit ExplainedCircuit() {
  Circuit c = SmallCircuit();
  CircuitExplanations& e = c.explanations;
  e.corpus = "corpus val split, 2 windows";
  e.top = 2;
  e.class_names = {"\")\n", "')\n"};
  e.prompts = {{"print", "(", "\"", "hi"}, {"print", "(", "'", "hi"}, {}};
  e.nodes.resize(c.nodes.size());
  for (size_t i = 0; i < e.nodes.size(); ++i) {
    NodeExplanation& n = e.nodes[i];
    const float f = static_cast<float>(i);
    if (i % 3 != 2) {
      n.top_contexts = {{{"x", " =", " \"", "caf\xC3\xA9"}, 2, 1.0f / (f + 3.0f)}, {{"'"}, 0, 0.5f}};
      n.bottom_contexts = {{{"a", "b"}, 1, -f}};
    }
    n.histogram_edges = {-1.0f, 0.0f, f + 1.0f};
    n.histogram_counts = {static_cast<int64_t>(i), int64_t{1} << 40};
    n.class_means = {f * 0.25f, 1.0f - f};
    if (i % 2 == 0) {
      n.promoted = {{7, "')\n", 2.5f}, {9, " '", 1.0f}};
      n.suppressed = {{3, "\")\n", -2.0f}};
    } else {
      n.input_tokens = {{11, "\"", -0.75f}};
    }
    if (i == 1) n.attention = {{0, {0.1f, 0.2f, 0.3f, 0.4f}}, {1, {1.0f, 0.0f, 0.0f, 0.0f}}};
    n.prompt_activations = {{f, 1.0f, 2.0f, 3.0f}, {0.0f, 0.0f, 0.0f, -f}, {}};
  }
  return c;
}

void ExpectSameContexts(const std::vector<ActivatingContext>& a, const std::vector<ActivatingContext>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tokens, b[i].tokens);
    EXPECT_EQ(a[i].marked, b[i].marked);
    EXPECT_EQ(std::memcmp(&a[i].value, &b[i].value, 4), 0);
  }
}

void ExpectSameScores(const std::vector<TokenScore>& a, const std::vector<TokenScore>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id);
    EXPECT_EQ(a[i].text, b[i].text);
    EXPECT_EQ(std::memcmp(&a[i].score, &b[i].score, 4), 0);
  }
}

TEST(ExplanationsFileTest, RoundTripIsExact) {
  TempDir dir;
  const Circuit c = ExplainedCircuit();
  ASSERT_THAT(WriteCircuitFile(dir.File("c.h5"), c), IsOk());
  absl::StatusOr<Circuit> back = ReadCircuitFile(dir.File("c.h5"));
  ASSERT_THAT(back, IsOk());
  const CircuitExplanations& a = c.explanations;
  const CircuitExplanations& b = back->explanations;
  EXPECT_EQ(a.corpus, b.corpus);
  EXPECT_EQ(a.top, b.top);
  EXPECT_EQ(a.class_names, b.class_names);
  EXPECT_EQ(a.prompts, b.prompts);
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    SCOPED_TRACE(i);
    const NodeExplanation &x = a.nodes[i], &y = b.nodes[i];
    ExpectSameContexts(x.top_contexts, y.top_contexts);
    ExpectSameContexts(x.bottom_contexts, y.bottom_contexts);
    EXPECT_EQ(x.histogram_edges, y.histogram_edges);
    EXPECT_EQ(x.histogram_counts, y.histogram_counts);
    EXPECT_EQ(x.class_means, y.class_means);
    ExpectSameScores(x.promoted, y.promoted);
    ExpectSameScores(x.suppressed, y.suppressed);
    ExpectSameScores(x.input_tokens, y.input_tokens);
    ASSERT_EQ(x.attention.size(), y.attention.size());
    for (size_t j = 0; j < x.attention.size(); ++j) {
      EXPECT_EQ(x.attention[j].prompt, y.attention[j].prompt);
      EXPECT_EQ(x.attention[j].weights, y.attention[j].weights);
    }
    EXPECT_EQ(x.prompt_activations, y.prompt_activations);
  }
}

TEST(ExplanationsFileTest, FilesWithoutThemStillRead) {
  TempDir dir;
  ASSERT_THAT(WriteCircuitFile(dir.File("plain.h5"), SmallCircuit()), IsOk());
  absl::StatusOr<Circuit> back = ReadCircuitFile(dir.File("plain.h5"));
  ASSERT_THAT(back, IsOk());
  EXPECT_FALSE(back->explanations.present());
  EXPECT_EQ(back->nodes.size(), SmallCircuit().nodes.size());
  EXPECT_EQ(DescribeExplanations(*back), "");
  EXPECT_THAT(DescribeCircuit(*back), ::testing::Not(HasSubstr("explanations")));
}

TEST(ExplanationsFileTest, OneEntryPerNodeIsRequired) {
  TempDir dir;
  Circuit c = ExplainedCircuit();
  c.explanations.nodes.pop_back();
  EXPECT_THAT(WriteCircuitFile(dir.File("c.h5"), c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("explanations for 16 nodes")));
  EXPECT_FALSE(std::filesystem::exists(dir.File("c.h5")));
}

TEST(ExplanationsFileTest, SummaryLinesNameTokens) {
  const Circuit c = ExplainedCircuit();
  const std::string text = DescribeCircuit(c);
  EXPECT_THAT(text, HasSubstr("explanations (contexts: corpus val split, 2 windows; answer means by class "
                              "\"\\\")\\n\" / \"')\\n\"):\n"));
  // Row 0: L0 attn.act_in 3 marks " \"" and "'", promotes "')\n".
  EXPECT_THAT(text, HasSubstr("  L0 attn.act_in 3" + std::string(9, ' ') + "top \" \\\"\" \"'\" | promotes \"')\\n\" \" '\", "
                              "suppresses \"\\\")\\n\" | answer means 0.00 / 1.00\n"));
  // Row 1 reads its input token; row 2 has no contexts.
  EXPECT_THAT(text, HasSubstr("L0 attn.q 0" + std::string(14, ' ') + "top \" \\\"\" \"'\" | reads \"\\\"\" | answer means "
                              "0.25 / 0.00\n"));
  EXPECT_THAT(text, HasSubstr("L0 attn.q 2" + std::string(14, ' ') + "top - | promotes"));
}

TEST(ExplanationsFileTest, H5pyReadsTheGroup) {
  const char* python = "/usr/bin/python3";
  if (!std::filesystem::exists(python) ||
      testing::RunCommand(std::string(python) + " -c 'import h5py'").exit_code != 0) {
    GTEST_SKIP() << "/usr/bin/python3 has no h5py";
  }
  TempDir dir;
  ASSERT_THAT(WriteCircuitFile(dir.File("c.h5"), ExplainedCircuit()), IsOk());
  const std::string script = dir.File("check.py");
  // The reading recipe of docs/formats.md: node i's rows are offsets[i]:offsets[i + 1].
  std::ofstream(script) << R"(import sys, h5py
f = h5py.File(sys.argv[1], "r")
e = f["explanations"]
n = int(e.attrs["n_nodes"])
assert n == int(f.attrs["n_nodes"]) == 17, n
assert e.attrs["corpus"] == "corpus val split, 2 windows" and int(e.attrs["top"]) == 2
def rows(group, name, i):
    off = e[group]["offsets"][()]
    return e[group][name][off[i]:off[i + 1]]
top = e["top_contexts"]
off, tok_off = top["offsets"][()], top["token_offsets"][()]
r = off[0]
tokens = [t.decode() for t in top["tokens"][tok_off[r]:tok_off[r + 1]]]
assert tokens == ["x", " =", " \"", "caf\u00e9"], tokens
assert tokens[int(top["marked"][r])] == " \"" and abs(top["value"][r] - 1 / 3) < 1e-7
assert [t.decode() for t in rows("promoted", "text", 0)] == ["')\n", " '"]
assert list(rows("promoted", "id", 0)) == [7, 9] and str(e["promoted"]["score"].dtype) == "float32"
assert list(rows("histogram_counts", "values", 3)) == [3, 2 ** 40]
assert list(rows("class_means", "values", 4)) == [1.0, -3.0]
att = e["attention"]
a = att["offsets"][1]
w_off = att["weight_offsets"][()]
assert int(att["prompt"][a + 1]) == 1 and list(att["weights"][w_off[a + 1]:w_off[a + 2]]) == [1, 0, 0, 0]
act = e["prompt_activations"]
p = act["offsets"][5] + 1
v_off = act["value_offsets"][()]
assert list(act["values"][v_off[p]:v_off[p + 1]]) == [0, 0, 0, -5]
pt = e["prompts"]
names = [s.decode() for s in e["class_names"][()]]
assert names == ["\")\n", "')\n"] and len(pt["offsets"]) == 4
print("ok")
)";
  const testing::RunResult r = testing::RunCommand(std::string(python) + " " + script + " " + dir.File("c.h5"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n") << r.err;
}

}  // namespace
}  // namespace circuit
