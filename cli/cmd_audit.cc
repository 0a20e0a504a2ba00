// circuit audit: faithfulness curves (MIB's CPR/CMD), completeness, controls,
// stability and a verdict for an extracted circuit (docs/faithfulness.md).
// Writes audit.json beside the circuit and prints a short report (or, with
// --json, the same object).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "args.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/file_util.h"
#include "circuit/core/runtime.h"
#include "circuit/core/task.h"
#include "circuit/core/trainer.h"
#include "circuit/export/circuit_file.h"
#include "circuit/prune/audit.h"
#include "circuit/prune/settings.h"
#include "command.h"
#include "nlohmann/json.hpp"

namespace circuit::cli {
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

// Non-UTF-8 bytes from a file (a task or path name) are replaced, not fatal.
std::string Dump(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json CurveJson(const prune::FaithfulnessCurve& c) {
  nlohmann::json points = nlohmann::json::array();
  for (const prune::CurvePoint& p : c.points) {
    points.push_back({{"fraction", p.fraction}, {"nodes", p.nodes}, {"loss", Num(p.loss)},
                      {"f", Num(p.f)}, {"on_grid", p.on_grid}});
  }
  return {{"ranking", c.ranking}, {"curve", points}, {"cpr", Num(c.cpr)}, {"cmd", Num(c.cmd)}};
}

nlohmann::json AuditJson(const std::string& circuit_path, const Circuit& c,
                         const prune::AuditResult& a, const prune::AuditOptions& o) {
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
  for (const prune::FaithfulnessCurve& curve : a.curves) f["by_ranking"][curve.ranking] = CurveJson(curve);
  j["faithfulness"] = f;
  j["controls"] = nlohmann::json::object();
  for (const prune::ControlResult& r : a.controls) {
    j["controls"][r.name] = {{"n_nodes", r.n_nodes}, {"n_edges", r.n_edges},
                             {"circuit_loss", Num(r.circuit_loss)}, {"met_target", r.met_target}};
  }
  j["control_ratio"] = Num(prune::ControlRatio(a));
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
    const prune::Transfer& t = a.transfer;
    j["transfer"] = {{"families", {{"extracted_on", t.extracted_on}, {"held_out", nlohmann::json::array({t.held_out})}}},
                     {"n_nodes", t.n_nodes},
                     {"met_target", t.met_target},
                     {"in_family_loss", Num(t.in_family_loss)},
                     {"held_out_loss", Num(t.held_out_loss)},
                     {"full_model_in_family_loss", Num(t.full_model_in_family_loss)},
                     {"full_model_held_out_loss", Num(t.full_model_held_out_loss)}};
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
  for (const prune::ExtractionTime& e : a.extraction_times) {
    j["time_extractions"].push_back(
        {{"what", e.what}, {"seconds", e.seconds}, {"tie_break", e.tie_break}, {"masks", e.masks},
         {"discretize", e.discretize}, {"refine", e.refine}, {"test_loss", e.finish},
         {"discretize_evaluations", e.discretize_evaluations},
         {"refine_evaluations", e.refine_evaluations}, {"nodes", e.nodes},
         {"met_target", e.met_target}});
  }
  return j;
}

void PrintReport(const Circuit& c, const prune::AuditResult& a, const std::string& written) {
  std::cout << absl::StrFormat("audit of the %s circuit (%d of %d nodes, %s) in %s\n", c.task,
                               a.circuit_nodes, a.total_nodes, c.method, c.model_file);
  std::cout << absl::StrFormat("  loss         full model %.4f, circuit %.4f, all ablated %.4f\n",
                               a.full_loss, a.circuit_loss, a.empty_loss);
  for (const prune::FaithfulnessCurve& curve : a.curves) {
    std::cout << absl::StrFormat("  %-12s CPR %.3f  CMD %.3f   f:", curve.ranking, curve.cpr,
                                 curve.cmd);
    for (const prune::CurvePoint& p : curve.points) {
      std::cout << absl::StrFormat(p.on_grid ? " %.2f" : " [%.2f]", p.f);
    }
    std::cout << "\n";
  }
  for (const prune::ControlResult& r : a.controls) {
    std::cout << absl::StrFormat("  control      %-12s %5d nodes, loss %.4f, target %s\n", r.name,
                                 r.n_nodes, r.circuit_loss, r.met_target ? "met" : "missed");
  }
  std::cout << absl::StrFormat("  completeness mean %.4f, max %.4f over %d subsets\n",
                               a.completeness.mean, a.completeness.max, a.completeness.subsets);
  if (a.transfer.computed) {
    std::cout << absl::StrFormat(
        "  transfer     held-out family '%s': circuit %.4f (full model %.4f); in-family %.4f "
        "(full %.4f); %d nodes\n",
        a.transfer.held_out, a.transfer.held_out_loss, a.transfer.full_model_held_out_loss,
        a.transfer.in_family_loss, a.transfer.full_model_in_family_loss, a.transfer.n_nodes);
  }
  if (!a.transfer.other_task.empty()) {
    std::cout << absl::StrFormat("  other task   %s: circuit %.4f (full model %.4f)\n",
                                 a.transfer.other_task, a.transfer.other_task_loss,
                                 a.transfer.full_model_other_task_loss);
  }
  if (a.stability.runs > 0) {
    std::cout << absl::StrFormat(
        "  stability    %d runs (%s): Jaccard mean %.3f, min %.3f; %d core nodes\n",
        a.stability.runs, a.stability.joint ? "seed and resample varied together" : "seeds, then resamples",
        a.stability.mean_jaccard, a.stability.min_jaccard, a.stability.core.size());
  }
  std::cout << absl::StrFormat("  time         %.1f s (%d evaluations, %d extractions):", a.seconds,
                               a.evaluations, a.extractions);
  for (const auto& [name, seconds] : a.part_seconds) {
    std::cout << absl::StrFormat(" %s %.0f s,", name, seconds);
  }
  std::cout << "\n";
  std::cout << "  verdict      " << a.verdict << "\n";
  std::cout << "  wrote        " << written << "\n";
}

int RunAudit(int argc, char** argv) {
  ArgParser parser("circuit audit --circuit DIR/circuit.h5 [options]",
                   "Audit a circuit: faithfulness over MIB's node-fraction grid (CPR, CMD) for its "
                   "ranking, the other method's and random ones; completeness; the same "
                   "extraction on shuffled answers, a random-init model and a constant target; "
                   "stability over seeds and resampled prompts; and a verdict. Writes audit.json "
                   "beside the circuit. See docs/faithfulness.md.");
  CommonOptions common;
  AddCommonOptions(parser, &common);
  std::string circuit_path;
  prune::AuditOptions o;
  bool json = false;
  parser.Option("circuit", "circuit file written by circuit extract", &circuit_path);
  parser.Option("seeds", "stability: extraction seeds (the circuit is the first) and as many "
                "resamples of the train prompts; 0: skip", &o.seeds);
  parser.Flag("json", "print the audit.json object instead of the report", &json);
  bool separate = false;
  parser.Flag("separate-stability", "stability: seeds and resamples as separate runs (twice the "
              "extractions) instead of varying both in each run", &separate);
  std::string task_name;
  parser.Option("task", "also score the circuit on this task's test split (same candidate "
                "tokens; e.g. single_double_quote@print)", &task_name);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (circuit_path.empty()) return Fail("audit", "--circuit is required", kExitUsage);
  if (o.seeds < 0 || o.seeds > 100) {
    return Fail("audit", absl::StrCat("--seeds must be in [0, 100], got ", o.seeds), kExitUsage);
  }
  auto usage_error = [](const absl::Status& s) {
    return Fail("audit", std::string(s.message()), kExitUsage);
  };
  absl::StatusOr<Circuit> circuit = ReadCircuitFile(circuit_path);
  if (!circuit.ok()) return usage_error(circuit.status());
  absl::StatusOr<prune::ExtractOptions> extract = prune::ExtractOptionsFor(*circuit);
  if (!extract.ok()) return usage_error(extract.status());

  ConfigureRuntime(common.threads);
  KeepFreedMemory();
  absl::StatusOr<torch::Device> device = ParseDevice(common.device);
  if (!device.ok()) return usage_error(device.status());
  absl::StatusOr<ModelFile> file =
      prune::LoadCircuitModel(*circuit, circuit_path, common.model, *device);
  if (!file.ok()) return usage_error(file.status());
  absl::StatusOr<TaskOptions> task_options =
      prune::TaskOptionsFor(*circuit, file->model.config().n_ctx);
  if (!task_options.ok()) return usage_error(task_options.status());
  absl::StatusOr<TaskData> task = BuildTask(circuit->task, file->tokenizer, *task_options);
  if (!task.ok()) return usage_error(task.status());
  if (!task->paired) {
    return Fail("audit", absl::StrCat("task ", circuit->task,
                                      ": every line needs a twin (shuffled answers and resampling "
                                      "work on pairs)"),
                kExitUsage);
  }
  absl::StatusOr<TaskData> other;
  if (!task_name.empty()) {
    // Another task: its candidates must be the circuit's, or the scores mean nothing.
    other = BuildTask(task_name, file->tokenizer, *task_options);
    if (!other.ok()) return usage_error(other.status());
    if (other->candidates != task->candidates) {
      return Fail("audit",
                  absl::StrFormat("--task %s: its candidates (%s) are not the circuit's task's (%s)",
                                  task_name, absl::CEscape(absl::StrJoin(other->candidates, " vs ")),
                                  absl::CEscape(absl::StrJoin(task->candidates, " vs "))),
                  kExitUsage);
    }
  }
  o.joint_stability = !separate;
  extract->means_cache = prune::MeansPathFor(file->path);
  o.seed = circuit->seed;

  prune::AuditInputs in;
  in.model = &file->model;
  in.model_file = circuit->model_file;
  in.model_digest = file->digest;
  in.circuit = &*circuit;
  in.task = &*task;
  in.extract = *extract;
  in.tokenizer = &file->tokenizer;
  in.task_options = *task_options;
  if (!task_name.empty()) in.other_task = &*other;
  prune::ProgressFn progress = nullptr;
  if (isatty(fileno(stderr))) {
    progress = [](const std::string& stage, double f) {
      std::fprintf(stderr, "\r  %-40.40s %3.0f%%", stage.c_str(), 100.0 * f);
      std::fflush(stderr);
    };
  }
  absl::StatusOr<prune::AuditResult> a = prune::AuditCircuit(in, o, progress);
  if (progress) std::fprintf(stderr, "\r%50s\r", "");
  if (!a.ok()) return Fail("audit", std::string(a.status().message()), kExitFailure);

  const nlohmann::json j = AuditJson(circuit_path, *circuit, *a, o);
  const std::string out =
      (std::filesystem::path(circuit_path).parent_path() / "audit.json").string();
  if (absl::Status s = WriteFileAtomically(out, Dump(j) + "\n"); !s.ok()) {
    return Fail("audit", std::string(s.message()), kExitFailure);
  }
  if (json) {
    std::cout << Dump(j) << "\n";
  } else {
    PrintReport(*circuit, *a, out);
  }
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(audit, "audit", "audit a circuit: faithfulness, controls, stability, verdict",
                RunAudit);

}  // namespace circuit::cli
