#include "circuit/prune/audit_json.h"

#include <cmath>

#include "circuit/prune/audit.h"
#include "nlohmann/json.hpp"

namespace circuit::prune {
namespace {

constexpr char kDefinition[] =
    "f = (L(empty) - L(C_n)) / (L(empty) - L(M)) on the test split (per-prompt task loss, "
    "nats, uncalibrated; L(empty): every node ablated; L(M): the full model), C_n = the top "
    "n = floor(fraction * total_nodes) nodes of the ranking. CPR = trapezoidal area under f "
    "and CMD = trapezoidal area under |1 - f|, both over the linear fraction axis at MIB's "
    "grid {0.001, ..., 0.5, 1} (x = the requested fraction), as MIB's evaluation.py "
    "computes area_under and area_from_1; the point at the circuit's own size is shown but "
    "not integrated.";

// NaN -> null, so that the JSON never holds a number that is not one.
nlohmann::json Num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

nlohmann::json CurveJson(const FaithfulnessCurve& c) {
  nlohmann::json points = nlohmann::json::array();
  for (const CurvePoint& p : c.points) {
    points.push_back({{"fraction", p.fraction}, {"nodes", p.nodes}, {"loss", Num(p.loss)},
                      {"f", Num(p.f)}, {"on_grid", p.on_grid}});
  }
  return {{"ranking", c.ranking}, {"curve", points}, {"cpr", Num(c.cpr)}, {"cmd", Num(c.cmd)}};
}

nlohmann::json TransferJson(const Transfer& t) {
  return {{"families", {{"extracted_on", t.extracted_on}, {"held_out", nlohmann::json::array({t.held_out})}}},
          {"n_nodes", t.n_nodes},
          {"met_target", t.met_target},
          {"in_family_loss", Num(t.in_family_loss)},
          {"held_out_loss", Num(t.held_out_loss)},
          {"full_model_in_family_loss", Num(t.full_model_in_family_loss)},
          {"full_model_held_out_loss", Num(t.full_model_held_out_loss)}};
}

}  // namespace

std::string AuditJson(const std::string& circuit_path, const Circuit& c, const AuditResult& a,
                      const AuditOptions& o) {
  nlohmann::json j;
  j["circuit"] = circuit_path;
  j["task"] = c.task;
  j["model"] = c.model_file;
  j["model_digest"] = c.model_digest;
  j["method"] = c.method;
  j["n_nodes"] = a.circuit_nodes;
  j["total_nodes"] = a.total_nodes;
  j["target_loss"] = c.target_loss;
  j["loss"] = {{"full_model", Num(a.full_loss)}, {"empty", Num(a.empty_loss)},
               {"circuit", Num(a.circuit_loss)}};
  nlohmann::json f = CurveJson(a.curves.front());
  f["definition"] = kDefinition;
  f["ranking_recomputed"] = a.ranking_recomputed;
  f["random_draws"] = o.random_rankings;
  f["by_ranking"] = nlohmann::json::object();
  for (const FaithfulnessCurve& curve : a.curves) f["by_ranking"][curve.ranking] = CurveJson(curve);
  j["faithfulness"] = f;
  j["controls"] = nlohmann::json::object();
  for (const ControlResult& r : a.controls) {
    j["controls"][r.name] = {{"n_nodes", r.n_nodes}, {"n_edges", r.n_edges},
                             {"circuit_loss", Num(r.circuit_loss)}, {"met_target", r.met_target}};
  }
  j["control_ratio"] = Num(ControlRatio(a));
  j["completeness"] = {{"subsets", a.completeness.subsets}, {"mean", Num(a.completeness.mean)},
                       {"max", Num(a.completeness.max)}};
  if (a.stability.runs > 0) {
    j["stability"] = {{"runs", a.stability.runs}, {"seeds", o.seeds}, {"resamples", o.seeds},
                      {"joint", a.stability.joint},
                      {"mean_jaccard", Num(a.stability.mean_jaccard)},
                      {"min_jaccard", Num(a.stability.min_jaccard)},
                      {"core", a.stability.core}, {"run_nodes", a.stability.run_nodes}};
  } else {
    j["stability"] = nullptr;
  }
  if (a.transfer.computed) {
    j["transfer"] = TransferJson(a.transfer);
  } else {
    j["transfer"] = nullptr;
    j["transfer_note"] = a.transfer.note;
  }
  if (!a.transfer.other_task.empty()) {
    j["other_task"] = {{"task", a.transfer.other_task},
                       {"circuit_loss", Num(a.transfer.other_task_loss)},
                       {"full_model_loss", Num(a.transfer.full_model_other_task_loss)}};
  }
  j["verdict"] = a.verdict;
  j["evaluations"] = a.evaluations;
  j["extractions"] = a.extractions;
  j["time_seconds"] = a.seconds;
  j["time_parts"] = nlohmann::json::object();
  for (const auto& [name, seconds] : a.part_seconds) j["time_parts"][name] = seconds;
  j["time_extractions"] = nlohmann::json::array();
  for (const ExtractionTime& e : a.extraction_times) {
    j["time_extractions"].push_back(
        {{"what", e.what}, {"seconds", e.seconds}, {"tie_break", e.tie_break}, {"masks", e.masks},
         {"discretize", e.discretize}, {"refine", e.refine}, {"test_loss", e.finish},
         {"discretize_evaluations", e.discretize_evaluations},
         {"refine_evaluations", e.refine_evaluations}, {"nodes", e.nodes},
         {"met_target", e.met_target}});
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace circuit::prune
