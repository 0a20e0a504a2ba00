#include "circuit/export/describe.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "circuit/core/arch.h"

namespace circuit {
namespace {

// A token as code would write it in double quotes: "'", "\"", ")\n".
std::string Quoted(const std::string& token) {
  std::string out = "\"";
  for (char ch : token) {
    switch (ch) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      default: out += ch;
    }
  }
  return out + "\"";
}

// Up to `n` tokens, quoted and space-separated, skipping repeats.
std::string TokenList(const std::vector<std::string>& tokens, size_t n) {
  std::vector<std::string> seen;
  for (const std::string& t : tokens) {
    if (seen.size() == n) break;
    if (std::find(seen.begin(), seen.end(), t) == seen.end()) seen.push_back(t);
  }
  std::vector<std::string> quoted;
  for (const std::string& t : seen) quoted.push_back(Quoted(t));
  return absl::StrJoin(quoted, " ");
}

std::vector<std::string> Texts(const std::vector<TokenScore>& scores) {
  std::vector<std::string> out;
  for (const TokenScore& s : scores) out.push_back(s.text);
  return out;
}

}  // namespace

std::string ExplanationLine(const CircuitNode& node, const NodeExplanation& e) {
  std::vector<std::string> marked;
  for (const ActivatingContext& c : e.top_contexts) marked.push_back(c.tokens[c.marked]);
  std::string line = absl::StrFormat("%-24s top %s", NodeLabel(node.node),
                                     marked.empty() ? "-" : TokenList(marked, 4));
  if (!e.promoted.empty()) {
    absl::StrAppend(&line, " | promotes ", TokenList(Texts(e.promoted), 3), ", suppresses ",
                    TokenList(Texts(e.suppressed), 2));
  } else if (!e.input_tokens.empty()) {
    absl::StrAppend(&line, " | reads ", TokenList(Texts(e.input_tokens), 3));
  }
  if (!e.class_means.empty()) {
    std::vector<std::string> means;
    for (float m : e.class_means) means.push_back(absl::StrFormat("%.2f", m));
    absl::StrAppend(&line, " | answer means ", absl::StrJoin(means, " / "));
  }
  return line;
}

std::string DescribeExplanations(const Circuit& c) {
  const CircuitExplanations& e = c.explanations;
  if (!e.present() || e.nodes.size() != c.nodes.size()) return "";
  std::vector<std::string> classes;
  for (const std::string& name : e.class_names) classes.push_back(Quoted(name));
  std::string out = absl::StrFormat("explanations (contexts: %s; answer means by class %s):\n", e.corpus,
                                    classes.empty() ? "-" : absl::StrJoin(classes, " / "));
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    absl::StrAppend(&out, "  ", ExplanationLine(c.nodes[i], e.nodes[i]), "\n");
  }
  return out;
}

int64_t WeightEdges(const Circuit& c) {
  if (c.arch != kArchBdh) return static_cast<int64_t>(c.edges.size());
  int64_t n = 0;
  for (const CircuitEdge& e : c.edges) {
    const NodeLocation dst = c.nodes[e.dst].node.location;
    n += dst == NodeLocation::kBdhXNeuron || dst == NodeLocation::kBdhYNeuron ||
         dst == NodeLocation::kBdhResidIn || dst == NodeLocation::kFinalResid;
  }
  return n;
}

std::string MinimalityText(const Circuit& c) {
  std::string out = std::isnan(c.minimality)
                        ? std::string("not measured")
                        : absl::StrFormat("%.3f of the nodes are needed (single removal breaks "
                                          "the target on the selection pairs)", c.minimality);
  if (c.refined) absl::StrAppendFormat(&out, "; refined: %d nodes removed", c.refine_removed);
  return out;
}

std::string DescribeCircuit(const Circuit& c) {
  std::string out;
  absl::StrAppendFormat(&out, "circuit     task %s\n", c.task);
  absl::StrAppendFormat(&out, "model       %s (digest %s), %d layers%s\n", c.model_file,
                        c.model_digest.empty() ? "unknown" : c.model_digest, c.n_layer,
                        c.arch == kArchBdh ? ", BDH" : "");
  absl::StrAppendFormat(&out, "method      %s, %s ablation, %s penalty, seed %d\n", c.method,
                        c.ablation, c.penalty, c.seed);
  const double percent =
      c.total_nodes > 0 ? 100.0 * static_cast<double>(c.nodes.size()) / c.total_nodes : 0.0;
  absl::StrAppendFormat(&out, "size        %d nodes of %d (%.3f%%), %d edges (%s)\n",
                        c.nodes.size(), c.total_nodes, percent, c.edges.size(),
                        c.arch == kArchBdh ? "weights and links" : "weights");
  absl::StrAppendFormat(&out,
                        "loss        circuit %.4f (target %.4g), full model %.4f, necessity %.4f, "
                        "random %.4f (nats/prompt)\n",
                        c.circuit_loss, c.target_loss, c.full_model_loss, c.necessity_loss,
                        c.random_baseline_loss);
  if (c.edge_candidates >= 0) {
    absl::StrAppendFormat(&out,
                          "edges       by attribution: %d of the %d weights between kept nodes, "
                          "circuit loss %.4f with only them (test)\n",
                          WeightEdges(c), c.edge_candidates, c.edge_loss);
  }
  absl::StrAppendFormat(&out, "accuracy    %.3f\n", c.accuracy);
  absl::StrAppendFormat(&out, "minimality  %s\n", MinimalityText(c));
  if (!c.tie_note.empty()) absl::StrAppendFormat(&out, "ranking     %s\n", c.tie_note);

  // Nodes per location, in computation order of locations (final_resid last).
  std::map<std::pair<bool, NodeLocation>, int64_t> per_location;
  for (const CircuitNode& n : c.nodes) {
    ++per_location[{n.node.location == NodeLocation::kFinalResid, n.node.location}];
  }
  out += "nodes per location:\n";
  for (const auto& [key, count] : per_location) {
    absl::StrAppendFormat(&out, "  %-18s %d\n", LocationName(key.second), count);
  }
  if (!c.location_importance.empty()) {
    out += "loss when a whole location is ablated:\n";
    for (const auto& [name, loss] : c.location_importance) {
      absl::StrAppendFormat(&out, "  %-22s %.4f\n", name, loss);
    }
  }
  if (!c.nodes.empty()) {
    std::vector<size_t> order(c.nodes.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      // NaN (importance not computed) sorts last.
      auto key = [](float v) { return std::isnan(v) ? -INFINITY : v; };
      return key(c.nodes[a].importance) > key(c.nodes[b].importance);
    });
    const size_t shown = std::min<size_t>(10, order.size());
    absl::StrAppendFormat(&out, "top %d nodes by importance (loss when also ablated):\n", shown);
    for (size_t i = 0; i < shown; ++i) {
      const CircuitNode& n = c.nodes[order[i]];
      absl::StrAppendFormat(&out, "  %-28s %.4f  (mask logit %.3f)\n", NodeLabel(n.node),
                            n.importance, n.mask_logit);
    }
  }
  return out + DescribeExplanations(c);
}

}  // namespace circuit
