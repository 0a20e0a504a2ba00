// circuit audit: faithfulness curves (MIB's CPR/CMD), completeness, controls,
// stability and a verdict for an extracted circuit (docs/faithfulness.md).
// Writes audit.json beside the circuit and prints a short report (or, with
// --json, the same object).
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "args.h"
#include "circuit/core/file_util.h"
#include "circuit/core/runtime.h"
#include "circuit/core/trainer.h"
#include "circuit/export/circuit_file.h"
#include "circuit/prune/audit.h"
#include "circuit/prune/audit_json.h"
#include "circuit/prune/audit_run.h"
#include "command.h"
#include "progress.h"

namespace circuit::cli {
namespace {

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
  prune::AuditRequest request;
  prune::AuditOptions& o = request.options;
  bool json = false;
  parser.Option("circuit", "circuit file written by circuit extract", &circuit_path);
  parser.Option("seeds", "stability: extraction seeds (the circuit is the first) and as many "
                "resamples of the train prompts; 0: skip", &o.seeds);
  parser.Flag("json", "print the audit.json object instead of the report", &json);
  bool separate = false;
  parser.Flag("separate-stability", "stability: seeds and resamples as separate runs (twice the "
              "extractions) instead of varying both in each run", &separate);
  parser.Option("task", "also score the circuit on this task's test split (same candidate "
                "tokens; e.g. single_double_quote@print)", &request.other_task);
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

  ConfigureRuntime(common.threads);
  KeepFreedMemory();
  absl::StatusOr<torch::Device> device = ParseDevice(common.device);
  if (!device.ok()) return usage_error(device.status());
  request.device = *device;
  request.model_path = common.model;
  o.joint_stability = !separate;
  absl::StatusOr<prune::PreparedAudit> prepared =
      prune::PrepareAudit(*std::move(circuit), circuit_path, request);
  if (!prepared.ok()) return usage_error(prepared.status());

  absl::StatusOr<prune::AuditResult> a = prune::RunPreparedAudit(*prepared, StageProgress("audit"));
  ClearProgress();
  if (!a.ok()) return Fail("audit", std::string(a.status().message()), kExitFailure);

  const std::string j = prune::AuditJson(circuit_path, prepared->circuit, *a, prepared->options);
  const std::string out =
      (std::filesystem::path(circuit_path).parent_path() / "audit.json").string();
  if (absl::Status s = WriteFileAtomically(out, j + "\n"); !s.ok()) {
    return Fail("audit", std::string(s.message()), kExitFailure);
  }
  if (json) {
    std::cout << j << "\n";
  } else {
    PrintReport(prepared->circuit, *a, out);
  }
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(audit, "audit", "audit a circuit: faithfulness, controls, stability, verdict",
                RunAudit);

}  // namespace circuit::cli
