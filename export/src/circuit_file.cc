#include "circuit/export/circuit_file.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "circuit/core/arch.h"
#include "circuit/core/bdh_config.h"
#include "circuit/core/config.h"
#include "circuit/core/h5.h"
#include "circuit/core/status.h"
#include "explanations_file.h"

namespace circuit {
namespace {

absl::Status Invalid(const std::string& path, const std::string& object, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", object, ": ", what));
}

absl::Status CheckLength(const std::string& path, const std::string& dataset, size_t got,
                         int64_t want, const char* what) {
  if (static_cast<int64_t>(got) == want) return absl::OkStatus();
  return Invalid(path, dataset,
                 absl::StrCat("has ", got, " rows, expected ", want, " (", what, ")"));
}

// /extract: the settings a circuit was extracted and verified with (additive to
// format_version 1; files without the group read as "not recorded").
constexpr char kSettingsGroup[] = "/extract";

absl::Status WriteSettings(H5Writer& w, const ExtractSettings& s) {
  const std::pair<const char*, int64_t> ints[] = {
      {"n_train", s.n_train},       {"n_validation", s.n_validation}, {"n_test", s.n_test},
      {"task_seed", s.task_seed},   {"batch", s.batch},               {"epochs", s.epochs},
      {"search", s.search},         {"tie_qk", s.tie_qk},             {"calibrate", s.calibrate}};
  for (const auto& [name, value] : ints)
    CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(kSettingsGroup, name, value));
  const std::pair<const char*, double> doubles[] = {
      {"penalty_coef", s.penalty_coef},
      {"lr", s.lr},
      {"heaviside_temp", s.heaviside_temp},
      {"warmup_frac", s.warmup_frac},
      {"confidence", s.confidence},
      {"calibration_scale", s.calibration_scale},
      {"calibration_shift", s.calibration_shift}};
  for (const auto& [name, value] : doubles)
    CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(kSettingsGroup, name, value));
  return absl::OkStatus();
}

// Missing attributes keep their "not recorded" value; present ones must read.
absl::Status ReadSettings(const H5Reader& r, ExtractSettings* s) {
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_settings, r.Exists(kSettingsGroup));
  if (!has_settings) return absl::OkStatus();
  const std::pair<const char*, int64_t*> ints[] = {
      {"n_train", &s->n_train},     {"n_validation", &s->n_validation}, {"n_test", &s->n_test},
      {"task_seed", &s->task_seed}, {"batch", &s->batch},               {"epochs", &s->epochs},
      {"search", &s->search},       {"tie_qk", &s->tie_qk},             {"calibrate", &s->calibrate}};
  for (const auto& [name, value] : ints) {
    CIRCUIT_ASSIGN_OR_RETURN(const bool has, r.HasAttribute(kSettingsGroup, name));
    if (!has) continue;
    CIRCUIT_ASSIGN_OR_RETURN(*value, r.ReadIntAttribute(kSettingsGroup, name));
  }
  const std::pair<const char*, double*> doubles[] = {
      {"penalty_coef", &s->penalty_coef},
      {"lr", &s->lr},
      {"heaviside_temp", &s->heaviside_temp},
      {"warmup_frac", &s->warmup_frac},
      {"confidence", &s->confidence},
      {"calibration_scale", &s->calibration_scale},
      {"calibration_shift", &s->calibration_shift}};
  for (const auto& [name, value] : doubles) {
    CIRCUIT_ASSIGN_OR_RETURN(const bool has, r.HasAttribute(kSettingsGroup, name));
    if (!has) continue;
    CIRCUIT_ASSIGN_OR_RETURN(*value, r.ReadDoubleAttribute(kSettingsGroup, name));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteCircuitFile(const std::string& path, const Circuit& c) {
  if (c.loss_vs_k_k.size() != c.loss_vs_k_loss.size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": loss_vs_k has ", c.loss_vs_k_k.size(),
                                                   " k values but ", c.loss_vs_k_loss.size(),
                                                   " losses"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(H5Writer w, H5Writer::Create(path));
  const std::pair<const char*, std::string> strings[] = {
      {"format", kCircuitFormat}, {"task", c.task},
      {"model", c.model_file},    {"model_digest", c.model_digest},
      {"ablation", c.ablation},   {"method", c.method},
      {"penalty", c.penalty},     {"tie_note", c.tie_note},
      {"arch", c.arch},           {"edge_definition", c.edge_definition}};
  for (const auto& [name, value] : strings)
    CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", name, value));
  const std::pair<const char*, int64_t> ints[] = {
      {"format_version", kCircuitFormatVersion},
      {"seed", static_cast<int64_t>(c.seed)},  // two's complement; read back as uint64
      {"n_layer", c.n_layer},
      {"n_nodes", static_cast<int64_t>(c.nodes.size())},
      {"n_edges", static_cast<int64_t>(c.edges.size())},
      {"total_nodes", c.total_nodes},
      {"refined", c.refined ? 1 : 0},
      {"refine_removed", c.refine_removed},
      {"tied_nodes", c.tied_nodes},
      {"edge_candidates", c.edge_candidates}};
  for (const auto& [name, value] : ints)
    CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", name, value));
  const std::pair<const char*, double> doubles[] = {
      {"target_loss", c.target_loss},
      {"full_model_loss", c.full_model_loss},
      {"circuit_loss", c.circuit_loss},
      {"necessity_loss", c.necessity_loss},
      {"random_baseline_loss", c.random_baseline_loss},
      {"accuracy", c.accuracy},
      {"minimality", c.minimality},
      {"edge_loss", c.edge_loss}};
  for (const auto& [name, value] : doubles)
    CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", name, value));

  std::vector<int32_t> layer, index;
  std::vector<std::string> location;
  std::vector<float> mask_logit, importance;
  for (const CircuitNode& n : c.nodes) {
    layer.push_back(n.node.layer);
    location.emplace_back(LocationName(n.node.location));
    index.push_back(n.node.index);
    mask_logit.push_back(n.mask_logit);
    importance.push_back(n.importance);
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt32s("/nodes/layer", layer));
  CIRCUIT_RETURN_IF_ERROR(w.WriteStrings("/nodes/location", location));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt32s("/nodes/index", index));
  CIRCUIT_RETURN_IF_ERROR(w.WriteFloats("/nodes/mask_logit", {mask_logit.size()}, mask_logit));
  CIRCUIT_RETURN_IF_ERROR(w.WriteFloats("/nodes/importance", {importance.size()}, importance));

  std::vector<int64_t> src, dst;
  std::vector<float> weight;
  for (const CircuitEdge& e : c.edges) {
    src.push_back(e.src);
    dst.push_back(e.dst);
    weight.push_back(e.weight);
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s("/edges/src", src));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s("/edges/dst", dst));
  CIRCUIT_RETURN_IF_ERROR(w.WriteFloats("/edges/weight", {weight.size()}, weight));

  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s("/loss_vs_k/k", c.loss_vs_k_k));
  CIRCUIT_RETURN_IF_ERROR(w.WriteDoubles("/loss_vs_k/loss", c.loss_vs_k_loss));

  std::vector<std::string> names;
  std::vector<double> losses;
  for (const auto& [name, loss] : c.location_importance) {
    names.push_back(name);
    losses.push_back(loss);
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteStrings("/location_importance/name", names));
  CIRCUIT_RETURN_IF_ERROR(w.WriteDoubles("/location_importance/loss", losses));
  if (c.explanations.present()) {
    CIRCUIT_RETURN_IF_ERROR(
        internal::WriteExplanations(w, c.explanations, static_cast<int64_t>(c.nodes.size())));
  }
  CIRCUIT_RETURN_IF_ERROR(WriteSettings(w, c.settings));
  if (!c.node_scores.empty()) {
    CIRCUIT_RETURN_IF_ERROR(
        w.WriteFloats("/ranking/node_score", {c.node_scores.size()}, c.node_scores));
  }
  return w.Commit();
}

absl::StatusOr<Circuit> ReadCircuitFile(const std::string& path) {
  CIRCUIT_ASSIGN_OR_RETURN(H5Reader r, H5Reader::Open(path));
  CIRCUIT_RETURN_IF_ERROR(r.CheckFormat(kCircuitFormat, kCircuitFormatVersion));
  Circuit c;
  CIRCUIT_ASSIGN_OR_RETURN(c.task, r.ReadStringAttribute("/", "task"));
  CIRCUIT_ASSIGN_OR_RETURN(c.model_file, r.ReadStringAttribute("/", "model"));
  CIRCUIT_ASSIGN_OR_RETURN(c.model_digest, r.ReadStringAttribute("/", "model_digest"));
  CIRCUIT_ASSIGN_OR_RETURN(c.ablation, r.ReadStringAttribute("/", "ablation"));
  CIRCUIT_ASSIGN_OR_RETURN(c.method, r.ReadStringAttribute("/", "method"));
  CIRCUIT_ASSIGN_OR_RETURN(c.penalty, r.ReadStringAttribute("/", "penalty"));
  CIRCUIT_ASSIGN_OR_RETURN(const int64_t seed, r.ReadIntAttribute("/", "seed"));
  c.seed = static_cast<uint64_t>(seed);
  CIRCUIT_ASSIGN_OR_RETURN(const int64_t n_layer, r.ReadIntAttribute("/", "n_layer"));
  if (n_layer < 0 || n_layer > (int64_t{1} << 20)) {
    return Invalid(path, "/@n_layer", absl::StrCat("out of range: ", n_layer));
  }
  c.n_layer = static_cast<int32_t>(n_layer);
  CIRCUIT_ASSIGN_OR_RETURN(const int64_t n_nodes, r.ReadIntAttribute("/", "n_nodes"));
  CIRCUIT_ASSIGN_OR_RETURN(const int64_t n_edges, r.ReadIntAttribute("/", "n_edges"));
  CIRCUIT_ASSIGN_OR_RETURN(c.total_nodes, r.ReadIntAttribute("/", "total_nodes"));
  CIRCUIT_ASSIGN_OR_RETURN(c.target_loss, r.ReadDoubleAttribute("/", "target_loss"));
  CIRCUIT_ASSIGN_OR_RETURN(c.full_model_loss, r.ReadDoubleAttribute("/", "full_model_loss"));
  CIRCUIT_ASSIGN_OR_RETURN(c.circuit_loss, r.ReadDoubleAttribute("/", "circuit_loss"));
  CIRCUIT_ASSIGN_OR_RETURN(c.necessity_loss, r.ReadDoubleAttribute("/", "necessity_loss"));
  CIRCUIT_ASSIGN_OR_RETURN(c.random_baseline_loss,
                           r.ReadDoubleAttribute("/", "random_baseline_loss"));
  CIRCUIT_ASSIGN_OR_RETURN(c.accuracy, r.ReadDoubleAttribute("/", "accuracy"));
  // Refinement and ranking attributes; files written before them lack them.
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_minimality, r.HasAttribute("/", "minimality"));
  if (has_minimality) {
    CIRCUIT_ASSIGN_OR_RETURN(c.minimality, r.ReadDoubleAttribute("/", "minimality"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_refined, r.HasAttribute("/", "refined"));
  if (has_refined) {
    CIRCUIT_ASSIGN_OR_RETURN(const int64_t refined, r.ReadIntAttribute("/", "refined"));
    c.refined = refined != 0;
  }
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_removed, r.HasAttribute("/", "refine_removed"));
  if (has_removed) {
    CIRCUIT_ASSIGN_OR_RETURN(c.refine_removed, r.ReadIntAttribute("/", "refine_removed"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_tied, r.HasAttribute("/", "tied_nodes"));
  if (has_tied) {
    CIRCUIT_ASSIGN_OR_RETURN(c.tied_nodes, r.ReadIntAttribute("/", "tied_nodes"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_tie_note, r.HasAttribute("/", "tie_note"));
  if (has_tie_note) {
    CIRCUIT_ASSIGN_OR_RETURN(c.tie_note, r.ReadStringAttribute("/", "tie_note"));
  }
  // Files written before BDH existed are GPT circuits with the GPT's edges.
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_arch, r.HasAttribute("/", "arch"));
  c.arch = kArchGpt;
  if (has_arch) {
    CIRCUIT_ASSIGN_OR_RETURN(c.arch, r.ReadStringAttribute("/", "arch"));
  }
  if (!IsKnownArch(c.arch)) {
    return Invalid(path, "/@arch", absl::StrCat("unknown architecture '", c.arch, "'"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_edge_definition, r.HasAttribute("/", "edge_definition"));
  if (has_edge_definition) {
    CIRCUIT_ASSIGN_OR_RETURN(c.edge_definition, r.ReadStringAttribute("/", "edge_definition"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_edge_candidates, r.HasAttribute("/", "edge_candidates"));
  if (has_edge_candidates) {
    CIRCUIT_ASSIGN_OR_RETURN(c.edge_candidates, r.ReadIntAttribute("/", "edge_candidates"));
    CIRCUIT_ASSIGN_OR_RETURN(c.edge_loss, r.ReadDoubleAttribute("/", "edge_loss"));
  }
  const SiteLayout arch_sites =
      c.arch == kArchBdh ? BdhConfig{}.Layout() : ModelConfig{}.Layout();  // which locations

  // Nodes.
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int32_t> layer, r.ReadInt32s("/nodes/layer"));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> location, r.ReadStrings("/nodes/location"));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int32_t> index, r.ReadInt32s("/nodes/index"));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> mask_logit, r.ReadFloats("/nodes/mask_logit"));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> importance, r.ReadFloats("/nodes/importance"));
  CIRCUIT_RETURN_IF_ERROR(CheckLength(path, "/nodes/layer", layer.size(), n_nodes, "n_nodes"));
  CIRCUIT_RETURN_IF_ERROR(
      CheckLength(path, "/nodes/location", location.size(), n_nodes, "n_nodes"));
  CIRCUIT_RETURN_IF_ERROR(CheckLength(path, "/nodes/index", index.size(), n_nodes, "n_nodes"));
  CIRCUIT_RETURN_IF_ERROR(
      CheckLength(path, "/nodes/mask_logit", mask_logit.size(), n_nodes, "n_nodes"));
  CIRCUIT_RETURN_IF_ERROR(
      CheckLength(path, "/nodes/importance", importance.size(), n_nodes, "n_nodes"));
  c.nodes.resize(n_nodes);
  for (int64_t i = 0; i < n_nodes; ++i) {
    Node& node = c.nodes[i].node;
    if (!ParseNodeLocation(location[i], &node.location)) {
      return Invalid(path, absl::StrCat("/nodes/location[", i, "]"),
                     absl::StrCat("unknown location '", location[i], "'"));
    }
    if (!arch_sites.Has(node.location)) {
      return Invalid(path, absl::StrCat("/nodes/location[", i, "]"),
                     absl::StrCat("'", location[i], "' is not a location of a ", c.arch,
                                  " model"));
    }
    node.layer = layer[i];
    node.index = index[i];
    const bool final = node.location == NodeLocation::kFinalResid;
    if (final ? node.layer != c.n_layer : (node.layer < 0 || node.layer >= c.n_layer)) {
      return Invalid(path, absl::StrCat("/nodes/layer[", i, "]"),
                     absl::StrCat("layer ", node.layer, " out of range for ", location[i],
                                  " (n_layer ", c.n_layer, ")"));
    }
    if (node.index < 0) {
      return Invalid(path, absl::StrCat("/nodes/index[", i, "]"),
                     absl::StrCat("negative index ", node.index));
    }
    if (i > 0 && !(c.nodes[i - 1].node < node)) {
      return Invalid(
          path, absl::StrCat("/nodes[", i, "]"),
          absl::StrCat(NodeLabel(node), " is out of (layer, location, index) order or repeated"));
    }
    c.nodes[i].mask_logit = mask_logit[i];
    c.nodes[i].importance = importance[i];
  }

  // Edges.
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> src, r.ReadInt64s("/edges/src"));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> dst, r.ReadInt64s("/edges/dst"));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> weight, r.ReadFloats("/edges/weight"));
  CIRCUIT_RETURN_IF_ERROR(CheckLength(path, "/edges/src", src.size(), n_edges, "n_edges"));
  CIRCUIT_RETURN_IF_ERROR(CheckLength(path, "/edges/dst", dst.size(), n_edges, "n_edges"));
  CIRCUIT_RETURN_IF_ERROR(CheckLength(path, "/edges/weight", weight.size(), n_edges, "n_edges"));
  c.edges.resize(n_edges);
  for (int64_t i = 0; i < n_edges; ++i) {
    for (const auto& [name, v] :
         {std::pair<const char*, int64_t>{"src", src[i]}, {"dst", dst[i]}}) {
      if (v < 0 || v >= n_nodes) {
        return Invalid(path, absl::StrCat("/edges/", name, "[", i, "]"),
                       absl::StrCat("node row ", v, " out of range [0, ", n_nodes, ")"));
      }
    }
    c.edges[i] = CircuitEdge{src[i], dst[i], weight[i]};
  }

  // Figures.
  CIRCUIT_ASSIGN_OR_RETURN(c.loss_vs_k_k, r.ReadInt64s("/loss_vs_k/k"));
  CIRCUIT_ASSIGN_OR_RETURN(c.loss_vs_k_loss, r.ReadDoubles("/loss_vs_k/loss"));
  CIRCUIT_RETURN_IF_ERROR(CheckLength(path, "/loss_vs_k/loss", c.loss_vs_k_loss.size(),
                                      static_cast<int64_t>(c.loss_vs_k_k.size()), "/loss_vs_k/k"));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> names,
                           r.ReadStrings("/location_importance/name"));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<double> losses, r.ReadDoubles("/location_importance/loss"));
  CIRCUIT_RETURN_IF_ERROR(CheckLength(path, "/location_importance/loss", losses.size(),
                                      static_cast<int64_t>(names.size()),
                                      "/location_importance/name"));
  for (size_t i = 0; i < names.size(); ++i) c.location_importance[names[i]] = losses[i];
  CIRCUIT_ASSIGN_OR_RETURN(const bool explained, r.Exists(internal::kExplanationsGroup));
  if (explained) {  // optional: `circuit explain` adds it
    CIRCUIT_ASSIGN_OR_RETURN(c.explanations, internal::ReadExplanations(r, n_nodes));
  }
  CIRCUIT_RETURN_IF_ERROR(ReadSettings(r, &c.settings));
  CIRCUIT_ASSIGN_OR_RETURN(const bool ranked, r.Exists("/ranking/node_score"));
  if (ranked) {
    // The shape is checked before anything is read: one score per node of the model.
    if (c.total_nodes < 0) return Invalid(path, "/@total_nodes", "negative");
    CIRCUIT_ASSIGN_OR_RETURN(c.node_scores,
                             r.ReadFloats("/ranking/node_score",
                                          {static_cast<H5Shape::value_type>(c.total_nodes)}));
  }
  return c;
}

}  // namespace circuit
