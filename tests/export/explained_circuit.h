// Circuits with hand-made node explanations, for the viewer's tests (the
// explanations are filled in memory, as `circuit explain` would compute them).
//   ExplainedSmallCircuit()   SmallCircuit() with a small explanation per node; the
//                             top context of row i marks the token " q<i>".
//   SyntheticCircuit(true)    500 nodes over 5 layers, explanations of the sizes
//                             `circuit explain` writes (8 contexts of 24 tokens a
//                             side, 32 bins, 8 tokens a list, 6 prompts of 24).
#ifndef CIRCUIT_TESTS_EXPORT_EXPLAINED_CIRCUIT_H_
#define CIRCUIT_TESTS_EXPORT_EXPLAINED_CIRCUIT_H_

#include <random>
#include <string>
#include <vector>

#include "circuit/core/circuit.h"
#include "graph/small_circuit.h"

namespace circuit::testing {

inline bool WritesResidual(NodeLocation loc) {
  return loc == NodeLocation::kAttnResidDelta || loc == NodeLocation::kMlpResidDelta ||
         loc == NodeLocation::kFinalResid;
}
inline bool ReadsEmbeddings(NodeLocation loc) {
  return loc == NodeLocation::kAttnActIn || loc == NodeLocation::kMlpActIn;
}
inline bool IsQueryOrKey(NodeLocation loc) {
  return loc == NodeLocation::kAttnQ || loc == NodeLocation::kAttnK;
}

inline Circuit ExplainedSmallCircuit() {
  Circuit c = SmallCircuit();
  CircuitExplanations& ex = c.explanations;
  ex.corpus = "hand-made test contexts";
  ex.top = 2;
  ex.class_names = {"single", "double"};
  // Tokens that must survive the trip into HTML unharmed: markup, an entity, a
  // line break, and a byte that is not UTF-8 on its own.
  ex.prompts = {{"x", " =", " '", "</script>", "&amp;", "'"},
                {"y", " =", " \"", "<b>", "\n", "\xff", "\""}};
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    const NodeLocation loc = c.nodes[i].node.location;
    const float s = 0.1f * static_cast<float>(i);
    NodeExplanation e;
    const std::string own = " q" + std::to_string(i);
    e.top_contexts = {{{"a", " b", own, " \"", "</script>"}, /*marked=*/2, 2.0f + s},
                      {{" '", own, "c"}, /*marked=*/1, 1.5f + s}};
    e.bottom_contexts = {{{"d", " e", "f"}, /*marked=*/0, -1.0f - s}};
    e.histogram_edges = {-2.0f, -1.0f, 0.0f, 1.0f, 2.0f};
    e.histogram_counts = {3, 40, 50, 7};
    e.class_means = {s, -s};
    if (WritesResidual(loc)) {
      e.promoted = {{34, "\"", 1.25f + s}, {6, "'", 0.5f}};
      e.suppressed = {{60, " x", -0.75f}};
    }
    if (ReadsEmbeddings(loc)) e.input_tokens = {{34, "\"", 0.9f}, {11, " =", 0.2f}};
    if (IsQueryOrKey(loc)) {
      e.attention = {{0, {0.1f, 0.1f, 0.6f, 0.1f, 0.05f, 0.05f}},
                     {1, {0.05f, 0.05f, 0.7f, 0.05f, 0.05f, 0.05f, 0.05f}}};
    }
    for (const std::vector<std::string>& p : ex.prompts) {
      std::vector<float> acts;
      for (size_t t = 0; t < p.size(); ++t) acts.push_back(s * (static_cast<float>(t) - 2.5f));
      e.prompt_activations.push_back(acts);
    }
    ex.nodes.push_back(std::move(e));
  }
  return c;
}

// 500 nodes: 5 layers of 94 (10 residual reads and writes per sublayer, 8 q,
// k and v channels, 30 neurons), then 30 final_resid reads; every q/k/v,
// residual write and neuron has two incoming weights. Fixed seed.
inline Circuit SyntheticCircuit(bool explained) {
  using L = NodeLocation;
  Circuit c;
  c.task = "single_double_quote";
  c.n_layer = 5;
  c.total_nodes = 5760;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  auto add = [&](int layer, L loc, int count, int stride) {
    const int64_t first = static_cast<int64_t>(c.nodes.size());
    for (int k = 0; k < count; ++k) {
      c.nodes.push_back({{layer, loc, k * stride}, /*mask_logit=*/unit(rng),
                         /*importance=*/0.5f + 0.5f * unit(rng)});
    }
    return first;
  };
  auto connect = [&](int64_t from, int from_count, int64_t to, int to_count) {
    for (int k = 0; k < to_count; ++k) {
      for (int j = 0; j < 2; ++j) {
        c.edges.push_back({from + (k + j * 3) % from_count, to + k, unit(rng)});
      }
    }
  };
  for (int layer = 0; layer < c.n_layer; ++layer) {
    const int64_t attn_in = add(layer, L::kAttnActIn, 10, 3);
    const int64_t q = add(layer, L::kAttnQ, 8, 2);
    const int64_t k = add(layer, L::kAttnK, 8, 2);
    const int64_t v = add(layer, L::kAttnV, 8, 2);
    const int64_t attn_out = add(layer, L::kAttnResidDelta, 10, 5);
    const int64_t mlp_in = add(layer, L::kMlpActIn, 10, 5);
    const int64_t neurons = add(layer, L::kMlpPostAct, 30, 7);
    const int64_t mlp_out = add(layer, L::kMlpResidDelta, 10, 3);
    connect(attn_in, 10, q, 8);
    connect(attn_in, 10, k, 8);
    connect(attn_in, 10, v, 8);
    connect(v, 8, attn_out, 10);
    connect(mlp_in, 10, neurons, 30);
    connect(neurons, 30, mlp_out, 10);
  }
  add(c.n_layer, L::kFinalResid, 30, 2);
  if (!explained) return c;

  std::vector<std::string> vocab;
  for (int t = 0; t < 2048; ++t) vocab.push_back((t % 3 ? " w" : "t") + std::to_string(t));
  std::uniform_int_distribution<int> token(0, 2047);
  auto window = [&](int n) {
    std::vector<std::string> w;
    for (int t = 0; t < n; ++t) w.push_back(vocab[token(rng)]);
    return w;
  };
  auto scores = [&](float sign) {
    std::vector<TokenScore> out;
    for (int t = 0; t < 8; ++t) {
      const int id = token(rng);
      out.push_back({id, vocab[id], sign * (2.0f - 0.2f * t)});
    }
    return out;
  };
  CircuitExplanations& ex = c.explanations;
  ex.corpus = "synthetic";
  ex.top = 8;
  ex.class_names = {"single", "double"};
  for (int p = 0; p < 6; ++p) ex.prompts.push_back(window(24));
  for (const CircuitNode& n : c.nodes) {
    NodeExplanation e;
    for (int t = 0; t < 8; ++t) {
      e.top_contexts.push_back({window(24), /*marked=*/16, 3.0f - 0.1f * t + unit(rng)});
      e.bottom_contexts.push_back({window(24), /*marked=*/16, -3.0f + 0.1f * t + unit(rng)});
    }
    for (int b = 0; b <= 32; ++b) e.histogram_edges.push_back(-4.0f + 0.25f * b + 0.01f * unit(rng));
    for (int b = 0; b < 32; ++b) e.histogram_counts.push_back(token(rng) * 37);
    e.class_means = {unit(rng), unit(rng)};
    if (WritesResidual(n.node.location)) {
      e.promoted = scores(1.0f);
      e.suppressed = scores(-1.0f);
    }
    if (ReadsEmbeddings(n.node.location)) e.input_tokens = scores(1.0f);
    if (IsQueryOrKey(n.node.location)) {
      for (int p = 0; p < 4; ++p) {
        std::vector<float> w;
        for (int t = 0; t < 24; ++t) w.push_back(0.5f + 0.5f * unit(rng));
        e.attention.push_back({p, w});
      }
    }
    for (int p = 0; p < 6; ++p) {
      std::vector<float> acts;
      for (int t = 0; t < 24; ++t) acts.push_back(unit(rng));
      e.prompt_activations.push_back(acts);
    }
    ex.nodes.push_back(std::move(e));
  }
  return c;
}

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTS_EXPORT_EXPLAINED_CIRCUIT_H_
