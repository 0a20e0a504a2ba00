// Sweep specs: a JSON file that lists models, tasks and settings; their cross
// product is the set of work units, each with a stable id.
//
//   CIRCUIT_ASSIGN_OR_RETURN(SweepSpec spec, LoadSweepSpec("data/sweeps/example.json"));
//   for (const WorkUnit& unit : EnumerateUnits(spec)) Run(unit);   // unit.id is stable
#ifndef CIRCUIT_SWEEP_SPEC_H_
#define CIRCUIT_SWEEP_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace circuit {

// What a work unit does.
//  extract:         a pruning run; records the circuit and its figures.
//  node_ablation:   a pruning run, then every circuit node's importance (loss when
//                   it alone is also ablated) and the per-location importances.
//  random_baseline: a pruning run, then the loss of random circuits of the same
//                   size per location (averaged over `random_draws` draws).
inline constexpr const char* kStudyKinds[] = {"extract", "node_ablation", "random_baseline"};

// The most work units one spec may describe (the product of its list lengths).
inline constexpr int64_t kMaxSweepUnits = 1000000;

struct SweepSpec {
  std::string name = "sweep";
  std::vector<std::string> studies = {"extract"};
  std::vector<std::string> models;        // checkpoint paths (relative to the spec's folder or cwd)
  std::vector<std::string> tasks;         // task names or file:path.jsonl
  std::vector<double> target_losses = {0.15};
  std::vector<std::string> ablations = {"mean"};    // mean | zero | resample
  std::vector<std::string> penalties = {"log"};     // linear | log
  std::vector<double> penalty_coefs = {0.0};        // 0: the method's default coefficient
  std::vector<std::string> methods = {"masks"};     // masks | attribution
  std::vector<uint64_t> seeds = {0};
  // Settings that apply to every unit.
  int epochs = 0;          // 0: the pruner's default
  double lr = 0.0;         // mask learning rate; 0: the pruner's default
  int batch = 0;           // prompt pairs per mask step; 0: the pruner's default
  double confidence = 0.0; // validation confidence of meeting the target; 0: the pruner's default
  int search = 0;          // pruning settings tried per unit (--search)
  int random_draws = 8;
  int n_train = 0, n_validation = 0, n_test = 0;  // task datapoints per split; 0: default
  // Audit every unit's circuit (`circuit audit`, docs/faithfulness.md) with
  // `audit_seeds` stability runs (0: no stability runs); off by default.
  bool audit = false;
  int audit_seeds = 5;
  std::string source;      // the spec's JSON text, stored in results.h5
  // Weights digest of each model (parallel to `models`), filled by the program
  // that can load them (`circuit sweep`); "" or absent: unknown (a model that
  // cannot be loaded; its units fail with the loader's error). A known digest is
  // part of every unit's id, so a model changed in place runs again.
  std::vector<std::string> model_digests;
};

struct WorkUnit {
  std::string id;  // "<task>-<model stem>-<16 hex>", stable under reordering of the spec's lists
  std::string study, model, task, ablation, penalty, method;
  double target_loss = 0.15, penalty_coef = 0.0;
  uint64_t seed = 0;
  std::string model_digest;  // from SweepSpec::model_digests; "" when unknown
};

// A file's name without folder and extension ("data/models/dense.h5" ->
// "dense"): unit ids, circuit files and report groups name models by it.
std::string FileStem(const std::string& path);

// Parses a spec; errors name the file and the field ("spec.json: tasks[2]: expected a string").
// Two models with the same file stem are an error: unit ids and circuit files
// are named by the stem.
absl::StatusOr<SweepSpec> ParseSweepSpec(const std::string& json_text, const std::string& origin);
absl::StatusOr<SweepSpec> LoadSweepSpec(const std::string& path);

// The cross product, in a deterministic order (models, tasks, studies, targets, ...).
std::vector<WorkUnit> EnumerateUnits(const SweepSpec& spec);

}  // namespace circuit

#endif  // CIRCUIT_SWEEP_SPEC_H_
