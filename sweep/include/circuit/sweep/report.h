// Reports over a finished (or partly finished) sweep: circuit sizes per model,
// task and setting; the geometric mean of edges across tasks; the sparse-vs-dense
// ratio at matched target loss (the paper's headline comparison); a chart.
//
//   CIRCUIT_ASSIGN_OR_RETURN(SweepReport report, BuildSweepReport("out/sweep"));
//   std::cout << report.table;
//   CIRCUIT_RETURN_IF_ERROR(WriteSweepReport(report, "out/sweep"));  // report.csv, report.svg
#ifndef CIRCUIT_SWEEP_REPORT_H_
#define CIRCUIT_SWEEP_REPORT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/sweep/results.h"

namespace circuit {

// One (model, setting) group: units that differ only by task (and seed).
struct ReportGroup {
  std::string model;      // file stem
  bool dense = false;     // from the model file's /training@dense
  std::string arch = "gpt";  // the model file's arch (gpt, bdh)
  std::string setting;    // "target 0.15, mean, log, masks"
  double target_loss = 0;
  std::map<std::string, double> edges_by_task;  // mean over seeds of units that met the target
  std::map<std::string, double> nodes_by_task;  // the same for nodes
  std::map<std::string, double> loss_by_task;   // circuit (test) loss, mean over seeds
  double geomean_edges = 0;  // over tasks with a circuit; 0 when none
  int failed = 0;
  int not_met = 0;  // units that ran but missed the target (whole model kept; no size)
  // Audited units only (spec key "audit"): mean over seeds of the audit's
  // figures {cpr, cmd, jaccard, control_ratio} per task (NaN figures skipped).
  std::map<std::string, std::vector<double>> audit_by_task;
};

// The paper's headline: how much larger a dense model's circuits are than the
// sparse models' at the same setting (target loss, ablation, penalty, method), over
// the tasks where both reached the target. For a BDH model the ratio is of
// nodes: its edges are defined differently (docs/bdh.md), its nodes the same way.
struct DenseSparseRatio {
  std::string dense_model;  // file stem
  double ratio = 0;  // geomean of its edges (BDH: nodes) / the sparse models', same tasks
  int n_tasks = 0;   // tasks with a circuit from both
};

struct SweepReport {
  std::vector<ReportGroup> groups;
  // setting -> one ratio per dense GPT model that shares a solved task with a sparse one.
  std::map<std::string, std::vector<DenseSparseRatio>> dense_over_sparse;
  // setting -> one ratio (of nodes) per BDH model, against the sparse GPT models.
  std::map<std::string, std::vector<DenseSparseRatio>> bdh_over_sparse;
  std::string table;  // the text table (what `circuit report` prints)
  std::string csv;    // one row per (model, setting, task)
  std::string svg;    // circuit size vs target loss per model, log scale
};

absl::StatusOr<SweepReport> BuildSweepReport(const std::string& sweep_dir);
// Writes report.csv and report.svg into `sweep_dir` (atomically).
absl::Status WriteSweepReport(const SweepReport& report, const std::string& sweep_dir);

}  // namespace circuit

#endif  // CIRCUIT_SWEEP_REPORT_H_
