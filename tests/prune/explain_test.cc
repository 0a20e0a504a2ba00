// Node explanations on the planted-circuit model: the planted channels are
// named by their tokens, the recorded values match a whole-site recording, and
// a head's attention weights reproduce its residual write.
#include "circuit/prune/explain.h"

#include <numeric>
#include <string>

#include "circuit/core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "planted.h"
#include "testing/status_matchers.h"

namespace circuit::prune {
namespace {

using ::circuit::testing::IsOk;
using ::circuit::testing::StatusIs;
using L = NodeLocation;

constexpr int kA = 1, kB = 2, kX = 5, kY = 6;  // as in planted.cc

std::string PlantedText(int32_t id) {
  static const char* kNames[] = {"<pad>", "A", "B", "d3", "d4", "X", "Y", "d7"};
  return kNames[id];
}

// (n, 8) windows over every token but the padding: the planted model's "corpus".
torch::Tensor MixedWindows(int n, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randint(1, 8, {n, 8}, gen, torch::kInt64);
}

std::vector<Node> ExplainedNodes() {
  std::vector<Node> nodes = testing::PlantedNodes();
  nodes.push_back(Node{0, L::kAttnQ, 0});
  nodes.push_back(Node{0, L::kAttnK, 2});
  nodes.push_back(Node{0, L::kAttnV, 0});
  return nodes;
}

class ExplainTest : public ::testing::Test {
 protected:
  ExplainTest()
      : model_(testing::PlantedModel()),
        task_(testing::PlantedTask(4, 4, /*n_test=*/16, /*seed=*/3)),
        text_(MixedWindows(64, /*seed=*/5)) {
    absl::StatusOr<CircuitExplanations> e =
        ExplainNodes(model_, PlantedText, ExplainedNodes(), text_, "mixed tokens", task_, Options());
    CIRCUIT_CHECK(e.ok());
    e_ = std::move(*e);
  }
  static ExplainOptions Options() {
    ExplainOptions o;
    o.top = 3;
    o.histogram_bins = 10;
    return o;
  }
  const NodeExplanation& Of(const Node& n) const {
    const std::vector<Node> nodes = ExplainedNodes();
    return e_.nodes[std::find(nodes.begin(), nodes.end(), n) - nodes.begin()];
  }
  static std::string Marked(const ActivatingContext& c) { return c.tokens[c.marked]; }

  Model model_;
  TaskData task_;
  torch::Tensor text_;
  CircuitExplanations e_;
};

TEST_F(ExplainTest, PlantedInputChannelsFireOnTheirTriggerTokens) {
  ASSERT_EQ(e_.nodes.size(), ExplainedNodes().size());
  for (const auto& [node, trigger] : {std::pair{Node{0, L::kMlpActIn, 0}, "A"},
                                      std::pair{Node{0, L::kMlpPostAct, 0}, "A"},
                                      std::pair{Node{0, L::kMlpActIn, 1}, "B"},
                                      std::pair{Node{0, L::kMlpPostAct, 1}, "B"}}) {
    const NodeExplanation& e = Of(node);
    ASSERT_EQ(e.top_contexts.size(), 3u) << NodeLabel(node);
    for (const ActivatingContext& c : e.top_contexts) {
      EXPECT_EQ(Marked(c), trigger) << NodeLabel(node);
      EXPECT_GT(c.value, 0.0f);
    }
  }
  // The embedding readers name their token on the direct path too.
  ASSERT_FALSE(Of(Node{0, L::kMlpActIn, 0}).input_tokens.empty());
  EXPECT_EQ(Of(Node{0, L::kMlpActIn, 0}).input_tokens[0].id, kA);
  EXPECT_EQ(Of(Node{0, L::kMlpActIn, 1}).input_tokens[0].id, kB);
  EXPECT_TRUE(Of(Node{0, L::kMlpPostAct, 0}).input_tokens.empty());
}

TEST_F(ExplainTest, PlantedOutputNodesPromoteTheirAnswers) {
  for (const auto& [node, up, down] : {std::tuple{Node{0, L::kMlpPostAct, 0}, kX, kY},
                                       std::tuple{Node{0, L::kMlpPostAct, 1}, kY, kX},
                                       std::tuple{Node{0, L::kMlpResidDelta, 5}, kX, kY},
                                       std::tuple{Node{1, L::kFinalResid, 5}, kX, kY}}) {
    const NodeExplanation& e = Of(node);
    ASSERT_EQ(e.promoted.size(), 3u) << NodeLabel(node);
    EXPECT_EQ(e.promoted[0].id, up) << NodeLabel(node);
    EXPECT_EQ(e.promoted[0].text, PlantedText(up));
    EXPECT_GT(e.promoted[0].score, 0.0f);
    EXPECT_EQ(e.suppressed[0].id, down) << NodeLabel(node);
    EXPECT_LT(e.suppressed[0].score, 0.0f);
  }
  // Readers that write nothing of their own have no output tokens.
  EXPECT_TRUE(Of(Node{0, L::kMlpActIn, 0}).promoted.empty());
  EXPECT_TRUE(Of(Node{0, L::kAttnQ, 0}).promoted.empty());
  // final_resid 5 is +1 on A (through neuron 0) and -1 on B.
  EXPECT_EQ(Marked(Of(Node{1, L::kFinalResid, 5}).top_contexts[0]), "A");
  EXPECT_EQ(Marked(Of(Node{1, L::kFinalResid, 5}).bottom_contexts[0]), "B");
}

TEST_F(ExplainTest, ClassMeansSeparateTheTwins) {
  // Classes are the answer tokens, in order of first appearance: X (prompt), Y (twin).
  EXPECT_THAT(e_.class_names, ::testing::ElementsAre("X", "Y"));
  const NodeExplanation& a = Of(Node{0, L::kMlpPostAct, 0});
  ASSERT_EQ(a.class_means.size(), 2u);
  EXPECT_GT(a.class_means[0], 0.5f);
  EXPECT_EQ(a.class_means[1], 0.0f);
  const NodeExplanation& out = Of(Node{1, L::kFinalResid, 5});
  EXPECT_GT(out.class_means[0], 0.0f);
  EXPECT_LT(out.class_means[1], 0.0f);
}

TEST_F(ExplainTest, ContextsHistogramsAndPromptsAreConsistent) {
  EXPECT_EQ(e_.corpus, "mixed tokens");
  EXPECT_EQ(e_.top, 3);
  ASSERT_EQ(e_.prompts.size(), 4u);
  EXPECT_THAT(e_.prompts[0], ::testing::ElementsAre(::testing::_, ::testing::_, ::testing::_, "A"));
  EXPECT_EQ(e_.prompts[1].back(), "B");
  for (const NodeExplanation& e : e_.nodes) {
    ASSERT_EQ(e.histogram_edges.size(), 11u);
    ASSERT_EQ(e.histogram_counts.size(), 10u);
    EXPECT_EQ(std::accumulate(e.histogram_counts.begin(), e.histogram_counts.end(), int64_t{0}), text_.numel());
    for (size_t i = 1; i < e.top_contexts.size(); ++i) {
      EXPECT_GE(e.top_contexts[i - 1].value, e.top_contexts[i].value);
    }
    for (const auto* list : {&e.top_contexts, &e.bottom_contexts}) {
      for (const ActivatingContext& c : *list) {
        EXPECT_LE(c.tokens.size(), 24u);
        ASSERT_GE(c.marked, 0);
        ASSERT_LT(c.marked, static_cast<int32_t>(c.tokens.size()));
        EXPECT_NE(c.value, 0.0f);
        EXPECT_GE(c.value, e.histogram_edges.front());
        EXPECT_LE(c.value, e.histogram_edges.back());
      }
    }
    ASSERT_EQ(e.prompt_activations.size(), e_.prompts.size());
    for (size_t p = 0; p < e_.prompts.size(); ++p) {
      EXPECT_EQ(e.prompt_activations[p].size(), e_.prompts[p].size());
    }
  }
  // At the last token of prompt 0 (A), neuron 0 holds what its class mean averages.
  EXPECT_GT(Of(Node{0, L::kMlpPostAct, 0}).prompt_activations[0].back(), 0.5f);
  EXPECT_EQ(Of(Node{0, L::kMlpPostAct, 0}).prompt_activations[1].back(), 0.0f);
}

// The recorded values agree with a whole-site recording: the extreme contexts
// hold the extreme values over the text, and the per-token activations on the
// prompts are the site's channel.
TEST_F(ExplainTest, RecordedNodesMatchAWholeSiteRecording) {
  const std::vector<Node> nodes = ExplainedNodes();
  Taps taps(model_.config().n_layer);
  std::vector<torch::Tensor> sites(taps.num_sites());
  taps.Add(RecordTap(&sites));
  auto channel = [&](const Node& n) {  // (B, T) after a forward pass
    return sites[TapSiteIndex(n.layer, n.location)].select(2, n.index);
  };
  model_.Forward(text_, &taps);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const NodeExplanation& e = e_.nodes[i];
    ASSERT_FALSE(e.top_contexts.empty()) << NodeLabel(nodes[i]);
    EXPECT_EQ(e.top_contexts[0].value, channel(nodes[i]).max().item<float>()) << NodeLabel(nodes[i]);
    EXPECT_EQ(e.histogram_edges.front(), channel(nodes[i]).min().item<float>()) << NodeLabel(nodes[i]);
  }
  for (size_t p = 0; p < e_.prompts.size(); ++p) {
    const std::vector<int32_t>& ids = task_.test[p].tokens;
    model_.Forward(torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0), &taps);
    for (size_t i = 0; i < nodes.size(); ++i) {
      const torch::Tensor want = channel(nodes[i])[0].contiguous();
      const std::vector<float>& got = e_.nodes[i].prompt_activations[p];
      ASSERT_EQ(got.size(), static_cast<size_t>(want.numel()));
      for (size_t t = 0; t < got.size(); ++t) EXPECT_FLOAT_EQ(got[t], want[t].item<float>()) << NodeLabel(nodes[i]);
    }
  }
}

// The q/k channels' attention weights, applied to the recorded values, give the
// head's residual write: attn_proj rows 6 = 0.5 v0 + 0.2 v3 (planted.cc).
TEST_F(ExplainTest, AttentionWeightsReproduceTheHeadsOutput) {
  const NodeExplanation& q = Of(Node{0, L::kAttnQ, 0});
  ASSERT_EQ(q.attention.size(), 4u);
  EXPECT_EQ(Of(Node{0, L::kAttnK, 2}).attention.size(), 4u);
  EXPECT_TRUE(Of(Node{0, L::kAttnV, 0}).attention.empty());
  Taps taps(model_.config().n_layer);
  std::vector<torch::Tensor> sites(taps.num_sites());
  taps.Add(RecordTap(&sites));
  for (const AttentionExample& a : q.attention) {
    const std::vector<int32_t>& ids = task_.test[a.prompt].tokens;
    ASSERT_EQ(a.weights.size(), ids.size());
    EXPECT_NEAR(std::accumulate(a.weights.begin(), a.weights.end(), 0.0), 1.0, 1e-5);  // no sink
    model_.Forward(torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0), &taps);
    const torch::Tensor v = sites[TapSiteIndex(0, L::kAttnV)][0];  // (T, 4)
    double y0 = 0.0, y3 = 0.0;
    for (size_t t = 0; t < ids.size(); ++t) {
      y0 += a.weights[t] * v[t][0].item<float>();
      y3 += a.weights[t] * v[t][3].item<float>();
    }
    const float write = sites[TapSiteIndex(0, L::kAttnResidDelta)][0][ids.size() - 1][6].item<float>();
    EXPECT_NEAR(0.5 * y0 + 0.2 * y3, write, 1e-5);
  }
  // Value channel 0 writes residual 6 (0.5), which the distractors' unembedding reads.
  const NodeExplanation& v = Of(Node{0, L::kAttnV, 0});
  ASSERT_FALSE(v.promoted.empty());
  EXPECT_THAT(PlantedText(v.promoted[0].id), ::testing::StartsWith("d"));
}

TEST(ExplainErrorsTest, BadNodesTextAndOptions) {
  const Model model = testing::PlantedModel();
  const TaskData task = testing::PlantedTask(2, 2, 2, 1);
  const torch::Tensor text = MixedWindows(4, 1);
  EXPECT_THAT(ExplainNodes(model, PlantedText, {Node{0, L::kMlpPostAct, 8}}, text, "", task),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("L0 mlp.post_act 8")));
  EXPECT_THAT(ExplainNodes(model, PlantedText, {Node{1, L::kMlpPostAct, 0}}, text, "", task),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("L1 mlp.post_act 0")));
  EXPECT_THAT(ExplainNodes(model, PlantedText, testing::PlantedNodes(), text + 7, "", task),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("vocabulary")));
  ExplainOptions o;
  o.top = 0;
  EXPECT_THAT(ExplainNodes(model, PlantedText, testing::PlantedNodes(), text, "", task, o),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("top 0")));
  // No test prompts: the prompt-based parts stay empty.
  TaskData empty = task;
  empty.test.clear();
  absl::StatusOr<CircuitExplanations> e = ExplainNodes(model, PlantedText, testing::PlantedNodes(), text, "", empty);
  ASSERT_THAT(e, IsOk());
  EXPECT_TRUE(e->prompts.empty());
  EXPECT_TRUE(e->nodes[0].class_means.empty());
  EXPECT_FALSE(e->nodes[0].top_contexts.empty());
  EXPECT_THAT(ExplainWindows("/nonexistent/corpus", model.config(), 4, nullptr),
              StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("circuit corpus build")));
}

TEST(ValidUtf8Test, ReplacesBrokenSequencesOnly) {
  EXPECT_EQ(ValidUtf8("print('h\xC3\xA9')"), "print('h\xC3\xA9')");
  EXPECT_EQ(ValidUtf8("\xE2\x82\xAC \xF0\x9F\x98\x80"), "\xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(ValidUtf8("a\xC3"), "a\xEF\xBF\xBD");          // cut after the lead byte
  EXPECT_EQ(ValidUtf8("\x80x"), "\xEF\xBF\xBDx");          // a lone continuation byte
  EXPECT_EQ(ValidUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(ValidUtf8(std::string("a\0b", 3)), "a\xEF\xBF\xBD" "b");
}

}  // namespace
}  // namespace circuit::prune
