#include "circuit/export/describe.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace circuit {

std::string MinimalityText(const Circuit& c) {
  std::string out = std::isnan(c.minimality)
                        ? std::string("not measured")
                        : absl::StrFormat("%.3f of the nodes are needed (single removal breaks "
                                          "the target on validation)", c.minimality);
  if (c.refined) absl::StrAppendFormat(&out, "; refined: %d nodes removed", c.refine_removed);
  return out;
}

std::string DescribeCircuit(const Circuit& c) {
  std::string out;
  absl::StrAppendFormat(&out, "circuit     task %s\n", c.task);
  absl::StrAppendFormat(&out, "model       %s (digest %s), %d layers\n", c.model_file,
                        c.model_digest.empty() ? "unknown" : c.model_digest, c.n_layer);
  absl::StrAppendFormat(&out, "method      %s, %s ablation, %s penalty, seed %d\n", c.method,
                        c.ablation, c.penalty, c.seed);
  const double percent =
      c.total_nodes > 0 ? 100.0 * static_cast<double>(c.nodes.size()) / c.total_nodes : 0.0;
  absl::StrAppendFormat(&out, "size        %d nodes of %d (%.3f%%), %d edges (weights)\n",
                        c.nodes.size(), c.total_nodes, percent, c.edges.size());
  absl::StrAppendFormat(&out,
                        "loss        circuit %.4f (target %.4g), full model %.4f, necessity %.4f, "
                        "random %.4f (nats/prompt)\n",
                        c.circuit_loss, c.target_loss, c.full_model_loss, c.necessity_loss,
                        c.random_baseline_loss);
  absl::StrAppendFormat(&out, "accuracy    %.3f\n", c.accuracy);
  absl::StrAppendFormat(&out, "minimality  %s\n", MinimalityText(c));
  if (!c.tie_note.empty()) absl::StrAppendFormat(&out, "ranking     %s\n", c.tie_note);

  // Nodes per location, in computation order of locations.
  std::map<NodeLocation, int64_t> per_location;
  for (const CircuitNode& n : c.nodes) ++per_location[n.node.location];
  out += "nodes per location:\n";
  for (const auto& [location, count] : per_location) {
    absl::StrAppendFormat(&out, "  %-18s %d\n", LocationName(location), count);
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
      return c.nodes[a].importance > c.nodes[b].importance;
    });
    const size_t shown = std::min<size_t>(10, order.size());
    absl::StrAppendFormat(&out, "top %d nodes by importance (loss when also ablated):\n", shown);
    for (size_t i = 0; i < shown; ++i) {
      const CircuitNode& n = c.nodes[order[i]];
      absl::StrAppendFormat(&out, "  %-28s %.4f  (mask logit %.3f)\n", NodeLabel(n.node),
                            n.importance, n.mask_logit);
    }
  }
  return out;
}

}  // namespace circuit
