// The viewer's JSON data: the drawn nodes and edges, and the nodes'
// explanations with every token text stored once (contexts of ~24 tokens,
// repeated across nodes, dominate the size otherwise).
#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_format.h"
#include "circuit/export/view.h"
#include "nlohmann/json.hpp"

namespace circuit {
namespace {

using nlohmann::json;

// 4 significant digits: the page shows 3 or 4, and the file stays small.
json Rounded(double v) {
  if (!std::isfinite(v)) return nullptr;
  return std::stod(absl::StrFormat("%.4g", v));
}

template <typename T>
json RoundedList(const std::vector<T>& values) {
  json out = json::array();
  for (const T& v : values) out.push_back(Rounded(static_cast<double>(v)));
  return out;
}

class TokenTable {
 public:
  int Id(const std::string& text) {
    auto [it, added] = ids_.try_emplace(text, static_cast<int>(texts_.size()));
    if (added) texts_.push_back(text);
    return it->second;
  }
  json Ids(const std::vector<std::string>& tokens) {
    json out = json::array();
    for (const std::string& t : tokens) out.push_back(Id(t));
    return out;
  }
  const std::vector<std::string>& texts() const { return texts_; }

 private:
  std::unordered_map<std::string, int> ids_;
  std::vector<std::string> texts_;
};

json Contexts(const std::vector<ActivatingContext>& contexts, TokenTable& tokens) {
  json out = json::array();
  for (const ActivatingContext& c : contexts) {
    out.push_back({Rounded(c.value), c.marked, tokens.Ids(c.tokens)});
  }
  return out;
}

json Scores(const std::vector<TokenScore>& scores, TokenTable& tokens) {
  json out = json::array();
  for (const TokenScore& s : scores) out.push_back({tokens.Id(s.text), Rounded(s.score)});
  return out;
}

json NodeExplanationJson(const NodeExplanation& e, TokenTable& tokens) {
  json j = json::object();
  if (!e.top_contexts.empty()) j["top"] = Contexts(e.top_contexts, tokens);
  if (!e.bottom_contexts.empty()) j["bottom"] = Contexts(e.bottom_contexts, tokens);
  if (!e.histogram_counts.empty()) {
    j["hist"] = {RoundedList(e.histogram_edges), e.histogram_counts};
  }
  if (!e.class_means.empty()) j["means"] = RoundedList(e.class_means);
  if (!e.promoted.empty()) j["promoted"] = Scores(e.promoted, tokens);
  if (!e.suppressed.empty()) j["suppressed"] = Scores(e.suppressed, tokens);
  if (!e.input_tokens.empty()) j["inputs"] = Scores(e.input_tokens, tokens);
  if (!e.attention.empty()) {
    json attention = json::array();
    for (const AttentionExample& a : e.attention) {
      attention.push_back({a.prompt, RoundedList(a.weights)});
    }
    j["attention"] = std::move(attention);
  }
  if (!e.prompt_activations.empty()) {
    // Percent of the largest |activation|: the panel shows them as colours,
    // and as integers they take half the room (they are the largest list).
    double scale = 0;
    for (const std::vector<float>& p : e.prompt_activations) {
      for (float v : p) {
        if (std::isfinite(v)) scale = std::max(scale, std::abs(static_cast<double>(v)));
      }
    }
    json acts = json::array();
    for (const std::vector<float>& p : e.prompt_activations) {
      json row = json::array();
      for (float v : p) {
        if (!std::isfinite(v)) {
          row.push_back(nullptr);
        } else {
          row.push_back(scale > 0 ? static_cast<int>(std::lround(100 * v / scale)) : 0);
        }
      }
      acts.push_back(std::move(row));
    }
    j["acts"] = std::move(acts);
    j["acts_scale"] = Rounded(scale);
  }
  return j;
}

}  // namespace

std::string CircuitViewData(const Circuit& circuit, const graph::CircuitGraph& graph,
                            const DotOptions& options) {
  const graph::Graph& gr = graph.graph();
  const CircuitExplanations& ex = circuit.explanations;
  const bool explained = ex.present() && ex.nodes.size() == circuit.nodes.size();
  TokenTable tokens;
  json nodes = json::array();
  json node_explanations = json::array();
  for (graph::Vertex v : boost::make_iterator_range(boost::vertices(gr))) {
    const graph::VertexProps& p = gr[v];
    nodes.push_back({{"row", p.row},
                     {"label", NodeLabel(p.node())},
                     {"layer", p.layer},
                     {"location", std::string(LocationName(p.location))},
                     {"index", p.index},
                     {"importance", Rounded(p.importance)},
                     {"mask_logit", Rounded(p.mask_logit)}});
    if (explained) node_explanations.push_back(NodeExplanationJson(ex.nodes[p.row], tokens));
  }
  json edges = json::array();
  for (const graph::Edge& e : boost::make_iterator_range(boost::edges(gr))) {
    if (gr[e].kind == graph::EdgeKind::kResidual && !options.residual_edges) continue;
    edges.push_back({gr[boost::source(e, gr)].row, gr[boost::target(e, gr)].row,
                     Rounded(gr[e].weight), static_cast<int>(gr[e].kind)});
  }
  json explanations = nullptr;
  if (explained) {
    json prompts = json::array();
    for (const std::vector<std::string>& p : ex.prompts) prompts.push_back(tokens.Ids(p));
    explanations = {{"corpus", ex.corpus},
                    {"top", ex.top},
                    {"class_names", ex.class_names},
                    {"prompts", std::move(prompts)},
                    {"nodes", std::move(node_explanations)}};
  }
  json j = {{"format", "circuit.view"},
            {"format_version", 1},
            {"title", options.title},
            {"task", circuit.task},
            {"ablation", circuit.ablation},
            {"circuit_loss", Rounded(circuit.circuit_loss)},
            {"total_nodes", circuit.total_nodes},
            {"nodes", std::move(nodes)},
            {"edges", std::move(edges)},
            {"tokens", tokens.texts()},
            {"explanations", std::move(explanations)}};
  // Decoded tokens may split a UTF-8 character: replace invalid bytes, never throw.
  return j.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

}  // namespace circuit
