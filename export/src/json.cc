#include "circuit/export/json.h"

#include "circuit/graph/analysis.h"
#include "nlohmann/json.hpp"

namespace circuit {

std::string CircuitToJson(const Circuit& c, const graph::CircuitGraph* graph) {
  using nlohmann::json;
  json j;
  j["format"] = "circuit.json";
  j["format_version"] = 1;
  j["task"] = c.task;
  j["model"] = {{"file", c.model_file}, {"digest", c.model_digest}};
  j["ablation"] = c.ablation;
  j["method"] = c.method;
  j["penalty"] = c.penalty;
  j["seed"] = c.seed;
  j["n_layer"] = c.n_layer;
  j["total_nodes"] = c.total_nodes;
  j["figures"] = {{"target_loss", c.target_loss},
                  {"full_model_loss", c.full_model_loss},
                  {"circuit_loss", c.circuit_loss},
                  {"necessity_loss", c.necessity_loss},
                  {"random_baseline_loss", c.random_baseline_loss},
                  {"accuracy", c.accuracy},
                  {"n_nodes", c.nodes.size()},
                  {"n_edges", c.edges.size()},
                  {"loss_vs_k", {{"k", c.loss_vs_k_k}, {"loss", c.loss_vs_k_loss}}},
                  {"location_importance", c.location_importance},
                  {"minimality", c.minimality},  // NaN (not computed) is written as null
                  {"refined", c.refined},
                  {"refine_removed", c.refine_removed},
                  {"tied_nodes", c.tied_nodes},
                  {"edge_definition", c.edge_definition},
                  {"edge_candidates", c.edge_candidates},  // -1: every weight between kept nodes
                  {"edge_loss", c.edge_loss},
                  {"tie_note", c.tie_note}};
  json nodes = json::array();
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    const CircuitNode& n = c.nodes[i];
    nodes.push_back({{"id", i},
                     {"layer", n.node.layer},
                     {"location", std::string(LocationName(n.node.location))},
                     {"index", n.node.index},
                     {"label", NodeLabel(n.node)},
                     {"mask_logit", n.mask_logit},
                     {"importance", n.importance}});
  }
  j["nodes"] = std::move(nodes);
  json edges = json::array();
  for (const CircuitEdge& e : c.edges) {
    edges.push_back({{"src", e.src}, {"dst", e.dst}, {"weight", e.weight}, {"kind", "weight"}});
  }
  if (graph != nullptr) {
    const graph::Graph& gr = graph->graph();
    for (const graph::Edge& e : boost::make_iterator_range(boost::edges(gr))) {
      if (gr[e].kind != graph::EdgeKind::kResidual) continue;
      edges.push_back({{"src", gr[boost::source(e, gr)].row},
                       {"dst", gr[boost::target(e, gr)].row},
                       {"weight", gr[e].weight},
                       {"kind", "residual"}});
    }
    const graph::Components components = graph::ConnectedComponents(*graph);
    const graph::DegreeStats degrees = graph::Degrees(*graph, /*include_residual=*/false);
    json paths = json::array();
    for (const graph::Path& p : graph::StrongestPaths(*graph, 10)) {
      json rows = json::array();
      for (graph::Vertex v : p.vertices) rows.push_back((*graph)[v].row);
      paths.push_back({{"nodes", rows}, {"strength", p.strength}});
    }
    j["graph"] = {{"n_weight_edges", graph->num_weight_edges()},
                  {"n_residual_edges", graph->num_residual_edges()},
                  {"components", components.count},
                  {"component_sizes", components.sizes},
                  {"weight_degree",
                   {{"in_mean", degrees.in_mean},
                    {"out_mean", degrees.out_mean},
                    {"in_max", degrees.in_max},
                    {"out_max", degrees.out_max}}},
                  {"strongest_paths", paths}};
  }
  j["edges"] = std::move(edges);
  // Strings from a file (task, model names) may not be UTF-8: replace, never throw.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace circuit
