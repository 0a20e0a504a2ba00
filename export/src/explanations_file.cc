#include "explanations_file.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"

namespace circuit::internal {
namespace {

std::string Path(const std::string& group, const std::string& name) {
  return absl::StrCat(kExplanationsGroup, "/", group, "/", name);
}

// Offsets of a list of lists, (size + 1) from 0.
template <typename Lists, typename SizeOf>
std::vector<int64_t> Offsets(const Lists& lists, SizeOf size_of) {
  std::vector<int64_t> out = {0};
  for (const auto& l : lists) out.push_back(out.back() + static_cast<int64_t>(size_of(l)));
  return out;
}

// Every node's list of one field, as offsets plus the concatenated entries.
template <typename T>
struct PerNode {
  std::vector<int64_t> offsets = {0};
  std::vector<T> rows;
  void Add(const std::vector<T>& list) {
    rows.insert(rows.end(), list.begin(), list.end());
    offsets.push_back(static_cast<int64_t>(rows.size()));
  }
};

absl::Status WriteContexts(H5Writer& w, const std::string& group, const std::vector<NodeExplanation>& nodes,
                           std::vector<ActivatingContext> NodeExplanation::*field) {
  PerNode<ActivatingContext> per;
  for (const NodeExplanation& n : nodes) per.Add(n.*field);
  std::vector<float> value;
  std::vector<int32_t> marked;
  std::vector<std::string> tokens;
  for (const ActivatingContext& c : per.rows) {
    value.push_back(c.value);
    marked.push_back(c.marked);
    tokens.insert(tokens.end(), c.tokens.begin(), c.tokens.end());
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(Path(group, "offsets"), per.offsets));
  CIRCUIT_RETURN_IF_ERROR(w.WriteFloats(Path(group, "value"), {value.size()}, value));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt32s(Path(group, "marked"), marked));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(
      Path(group, "token_offsets"), Offsets(per.rows, [](const ActivatingContext& c) { return c.tokens.size(); })));
  return w.WriteStrings(Path(group, "tokens"), tokens);
}

absl::Status WriteTokenScores(H5Writer& w, const std::string& group, const std::vector<NodeExplanation>& nodes,
                              std::vector<TokenScore> NodeExplanation::*field) {
  PerNode<TokenScore> per;
  for (const NodeExplanation& n : nodes) per.Add(n.*field);
  std::vector<int32_t> id;
  std::vector<std::string> text;
  std::vector<float> score;
  for (const TokenScore& t : per.rows) {
    id.push_back(t.id);
    text.push_back(t.text);
    score.push_back(t.score);
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(Path(group, "offsets"), per.offsets));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt32s(Path(group, "id"), id));
  CIRCUIT_RETURN_IF_ERROR(w.WriteStrings(Path(group, "text"), text));
  return w.WriteFloats(Path(group, "score"), {score.size()}, score);
}

// Reads offsets for `rows` lists (< 0: any number) into `values` entries and checks them.
absl::StatusOr<std::vector<int64_t>> ReadOffsets(const H5Reader& r, const std::string& dataset, int64_t rows,
                                                 size_t values) {
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> off, r.ReadInt64s(dataset));
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(r.path(), ": ", dataset, ": ", what));
  };
  if (off.empty()) return bad("no offsets (a list of n lists has n + 1)");
  if (rows >= 0 && static_cast<int64_t>(off.size()) != rows + 1) {
    return bad(absl::StrCat("has ", off.size(), " offsets, expected ", rows + 1));
  }
  if (off.front() != 0 || off.back() != static_cast<int64_t>(values)) {
    return bad(absl::StrCat("offsets must run from 0 to ", values, ", got ", off.front(), " to ", off.back()));
  }
  for (size_t i = 1; i < off.size(); ++i) {
    if (off[i] < off[i - 1]) return bad(absl::StrCat("offsets decrease at row ", i));
  }
  return off;
}

template <typename T>
std::vector<T> Slice(const std::vector<T>& v, const std::vector<int64_t>& off, size_t i) {
  return std::vector<T>(v.begin() + off[i], v.begin() + off[i + 1]);
}

absl::Status CheckRows(const H5Reader& r, const std::string& dataset, size_t got, size_t want) {
  if (got == want) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(r.path(), ": ", dataset, ": has ", got, " rows, expected ", want));
}

absl::Status ReadContexts(const H5Reader& r, const std::string& group,
                          std::vector<ActivatingContext> NodeExplanation::*field, CircuitExplanations* e) {
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> value, r.ReadFloats(Path(group, "value")));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int32_t> marked, r.ReadInt32s(Path(group, "marked")));
  CIRCUIT_RETURN_IF_ERROR(CheckRows(r, Path(group, "marked"), marked.size(), value.size()));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> tokens, r.ReadStrings(Path(group, "tokens")));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> token_off,
                           ReadOffsets(r, Path(group, "token_offsets"), value.size(), tokens.size()));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> off,
                           ReadOffsets(r, Path(group, "offsets"), e->nodes.size(), value.size()));
  for (size_t i = 0; i < e->nodes.size(); ++i) {
    for (int64_t row = off[i]; row < off[i + 1]; ++row) {
      ActivatingContext c;
      c.tokens = Slice(tokens, token_off, row);
      c.marked = marked[row];
      c.value = value[row];
      if (c.marked < 0 || c.marked >= static_cast<int32_t>(c.tokens.size())) {
        return absl::InvalidArgumentError(absl::StrCat(r.path(), ": ", Path(group, "marked"), "[", row,
                                                       "]: ", c.marked, " outside its ", c.tokens.size(),
                                                       " tokens"));
      }
      (e->nodes[i].*field).push_back(std::move(c));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadTokenScores(const H5Reader& r, const std::string& group,
                             std::vector<TokenScore> NodeExplanation::*field, CircuitExplanations* e) {
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int32_t> id, r.ReadInt32s(Path(group, "id")));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> text, r.ReadStrings(Path(group, "text")));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> score, r.ReadFloats(Path(group, "score")));
  CIRCUIT_RETURN_IF_ERROR(CheckRows(r, Path(group, "text"), text.size(), id.size()));
  CIRCUIT_RETURN_IF_ERROR(CheckRows(r, Path(group, "score"), score.size(), id.size()));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> off,
                           ReadOffsets(r, Path(group, "offsets"), e->nodes.size(), id.size()));
  for (size_t i = 0; i < e->nodes.size(); ++i) {
    for (int64_t row = off[i]; row < off[i + 1]; ++row) {
      (e->nodes[i].*field).push_back(TokenScore{id[row], text[row], score[row]});
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteExplanations(H5Writer& w, const CircuitExplanations& e, int64_t n_nodes) {
  if (static_cast<int64_t>(e.nodes.size()) != n_nodes) {
    return absl::InvalidArgumentError(absl::StrCat(w.path(), ": explanations for ", e.nodes.size(),
                                                   " nodes, but the circuit has ", n_nodes));
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(kExplanationsGroup, "corpus", e.corpus));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(kExplanationsGroup, "top", static_cast<int64_t>(e.top)));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(kExplanationsGroup, "n_nodes", n_nodes));
  CIRCUIT_RETURN_IF_ERROR(w.WriteStrings(absl::StrCat(kExplanationsGroup, "/class_names"), e.class_names));
  PerNode<std::string> prompts;
  for (const std::vector<std::string>& p : e.prompts) prompts.Add(p);
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(Path("prompts", "offsets"), prompts.offsets));
  CIRCUIT_RETURN_IF_ERROR(w.WriteStrings(Path("prompts", "tokens"), prompts.rows));

  CIRCUIT_RETURN_IF_ERROR(WriteContexts(w, "top_contexts", e.nodes, &NodeExplanation::top_contexts));
  CIRCUIT_RETURN_IF_ERROR(WriteContexts(w, "bottom_contexts", e.nodes, &NodeExplanation::bottom_contexts));
  CIRCUIT_RETURN_IF_ERROR(WriteTokenScores(w, "promoted", e.nodes, &NodeExplanation::promoted));
  CIRCUIT_RETURN_IF_ERROR(WriteTokenScores(w, "suppressed", e.nodes, &NodeExplanation::suppressed));
  CIRCUIT_RETURN_IF_ERROR(WriteTokenScores(w, "input_tokens", e.nodes, &NodeExplanation::input_tokens));

  PerNode<float> edges, means;
  PerNode<int64_t> counts;
  PerNode<AttentionExample> attention;
  PerNode<std::vector<float>> activations;
  for (const NodeExplanation& n : e.nodes) {
    edges.Add(n.histogram_edges);
    counts.Add(n.histogram_counts);
    means.Add(n.class_means);
    attention.Add(n.attention);
    activations.Add(n.prompt_activations);
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(Path("histogram_edges", "offsets"), edges.offsets));
  CIRCUIT_RETURN_IF_ERROR(w.WriteFloats(Path("histogram_edges", "values"), {edges.rows.size()}, edges.rows));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(Path("histogram_counts", "offsets"), counts.offsets));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(Path("histogram_counts", "values"), counts.rows));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(Path("class_means", "offsets"), means.offsets));
  CIRCUIT_RETURN_IF_ERROR(w.WriteFloats(Path("class_means", "values"), {means.rows.size()}, means.rows));

  std::vector<int32_t> prompt;
  std::vector<float> weights;
  for (const AttentionExample& a : attention.rows) {
    prompt.push_back(a.prompt);
    weights.insert(weights.end(), a.weights.begin(), a.weights.end());
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(Path("attention", "offsets"), attention.offsets));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt32s(Path("attention", "prompt"), prompt));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(Path("attention", "weight_offsets"),
                                        Offsets(attention.rows, [](const AttentionExample& a) { return a.weights.size(); })));
  CIRCUIT_RETURN_IF_ERROR(w.WriteFloats(Path("attention", "weights"), {weights.size()}, weights));

  std::vector<float> values;
  for (const std::vector<float>& row : activations.rows) values.insert(values.end(), row.begin(), row.end());
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(Path("prompt_activations", "offsets"), activations.offsets));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(Path("prompt_activations", "value_offsets"),
                                        Offsets(activations.rows, [](const std::vector<float>& v) { return v.size(); })));
  return w.WriteFloats(Path("prompt_activations", "values"), {values.size()}, values);
}

absl::StatusOr<CircuitExplanations> ReadExplanations(const H5Reader& r, int64_t n_nodes) {
  CircuitExplanations e;
  CIRCUIT_ASSIGN_OR_RETURN(const int64_t stored, r.ReadIntAttribute(kExplanationsGroup, "n_nodes"));
  if (stored != n_nodes) {
    return absl::InvalidArgumentError(absl::StrCat(r.path(), ": ", kExplanationsGroup, "@n_nodes: ", stored,
                                                   ", but the circuit has ", n_nodes, " nodes"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(e.corpus, r.ReadStringAttribute(kExplanationsGroup, "corpus"));
  CIRCUIT_ASSIGN_OR_RETURN(const int64_t top, r.ReadIntAttribute(kExplanationsGroup, "top"));
  e.top = static_cast<int32_t>(top);
  CIRCUIT_ASSIGN_OR_RETURN(e.class_names, r.ReadStrings(absl::StrCat(kExplanationsGroup, "/class_names")));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> prompt_tokens, r.ReadStrings(Path("prompts", "tokens")));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> prompt_off,
                           ReadOffsets(r, Path("prompts", "offsets"), /*rows=*/-1, prompt_tokens.size()));
  for (size_t p = 0; p + 1 < prompt_off.size(); ++p) e.prompts.push_back(Slice(prompt_tokens, prompt_off, p));
  e.nodes.resize(n_nodes);

  CIRCUIT_RETURN_IF_ERROR(ReadContexts(r, "top_contexts", &NodeExplanation::top_contexts, &e));
  CIRCUIT_RETURN_IF_ERROR(ReadContexts(r, "bottom_contexts", &NodeExplanation::bottom_contexts, &e));
  CIRCUIT_RETURN_IF_ERROR(ReadTokenScores(r, "promoted", &NodeExplanation::promoted, &e));
  CIRCUIT_RETURN_IF_ERROR(ReadTokenScores(r, "suppressed", &NodeExplanation::suppressed, &e));
  CIRCUIT_RETURN_IF_ERROR(ReadTokenScores(r, "input_tokens", &NodeExplanation::input_tokens, &e));

  CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> edges, r.ReadFloats(Path("histogram_edges", "values")));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> edge_off,
                           ReadOffsets(r, Path("histogram_edges", "offsets"), n_nodes, edges.size()));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> counts, r.ReadInt64s(Path("histogram_counts", "values")));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> count_off,
                           ReadOffsets(r, Path("histogram_counts", "offsets"), n_nodes, counts.size()));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> means, r.ReadFloats(Path("class_means", "values")));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> mean_off,
                           ReadOffsets(r, Path("class_means", "offsets"), n_nodes, means.size()));

  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, r.ReadInt32s(Path("attention", "prompt")));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> weights, r.ReadFloats(Path("attention", "weights")));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> weight_off,
                           ReadOffsets(r, Path("attention", "weight_offsets"), prompt.size(), weights.size()));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> att_off,
                           ReadOffsets(r, Path("attention", "offsets"), n_nodes, prompt.size()));

  CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> values, r.ReadFloats(Path("prompt_activations", "values")));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> value_off,
                           ReadOffsets(r, Path("prompt_activations", "value_offsets"), /*rows=*/-1, values.size()));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> act_off,
                           ReadOffsets(r, Path("prompt_activations", "offsets"), n_nodes, value_off.size() - 1));

  for (int64_t i = 0; i < n_nodes; ++i) {
    NodeExplanation& n = e.nodes[i];
    n.histogram_edges = Slice(edges, edge_off, i);
    n.histogram_counts = Slice(counts, count_off, i);
    n.class_means = Slice(means, mean_off, i);
    for (int64_t row = att_off[i]; row < att_off[i + 1]; ++row) {
      n.attention.push_back(AttentionExample{prompt[row], Slice(weights, weight_off, row)});
    }
    for (int64_t row = act_off[i]; row < act_off[i + 1]; ++row) {
      n.prompt_activations.push_back(Slice(values, value_off, row));
    }
  }
  return e;
}

}  // namespace circuit::internal
