// The sweep's pruning units, run in this process (pruning_runner.h).
#include "circuit/sweep/pruning_runner.h"

#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <exception>

#include "absl/strings/str_cat.h"
#include "circuit/core/any_model.h"
#include "circuit/core/status.h"
#include "circuit/core/task.h"
#include "circuit/export/circuit_file.h"
#include "circuit/prune/audit.h"
#include "circuit/prune/pruner.h"
#include "circuit/prune/settings.h"

namespace circuit {
namespace {

// The unit's audit (spec key "audit"): its figures into the row, no audit.json
// (the row holds what the report shows). Transfer is left out: it is one more
// extraction per unit and not in the row.
absl::Status AuditUnit(const SweepSpec& spec, const AnyModelFile& file, const Circuit& circuit,
                       const TaskData& task, const TaskOptions& task_options,
                       const prune::ExtractOptions& extract, UnitResult* result) {
  prune::AuditInputs in;
  in.model = file.model.get();
  in.model_file = circuit.model_file;
  in.model_digest = file.digest;
  in.circuit = &circuit;
  in.task = &task;
  in.extract = extract;
  in.extract.means_cache = prune::MeansPathFor(file.path);
  in.tokenizer = &file.tokenizer;
  in.task_options = task_options;
  prune::AuditOptions ao;
  ao.seeds = spec.audit_seeds;
  ao.transfer = false;
  ao.seed = circuit.seed;
  CIRCUIT_ASSIGN_OR_RETURN(prune::AuditResult a, prune::AuditCircuit(in, ao));
  result->cpr = a.curves.front().cpr;
  result->cmd = a.curves.front().cmd;
  result->jaccard = a.stability.runs > 1 ? a.stability.mean_jaccard : kNoFigure;
  result->control_ratio = prune::ControlRatio(a);
  return absl::OkStatus();
}

}  // namespace

PruningUnitRunner::PruningUnitRunner(const SweepSpec& spec, c10::Device device)
    : spec_(spec), device_(device) {}

PruningUnitRunner::~PruningUnitRunner() = default;

UnitResult PruningUnitRunner::Run(const WorkUnit& unit, const std::string& out_dir) {
  UnitResult result;
  result.unit = unit;
  // A unit must never take the sweep down: foreign exceptions become failure rows too.
  try {
    absl::Status s = RunOrError(unit, out_dir, &result);
    if (!s.ok()) {
      result.ok = false;
      result.error = std::string(s.message());
    }
  } catch (const std::exception& e) {
    result.ok = false;
    result.error = absl::StrCat("exception: ", e.what());
  } catch (...) {
    result.ok = false;
    result.error = "unknown exception";
  }
  return result;
}

std::vector<std::string> PruningUnitRunner::ModelDigests(const std::vector<std::string>& models) {
  std::vector<std::string> digests;
  for (const std::string& path : models) {
    absl::StatusOr<const AnyModelFile*> file = CachedModel(path);
    digests.push_back(file.ok() ? (*file)->digest : "");
  }
  return digests;
}

void PruningUnitRunner::ForgetModels() { models_.clear(); }

absl::StatusOr<const AnyModelFile*> PruningUnitRunner::CachedModel(const std::string& path) {
  auto it = models_.find(path);
  if (it != models_.end()) return it->second.get();
  CIRCUIT_ASSIGN_OR_RETURN(AnyModelFile file, LoadAnyModel(path, device_));
  auto owned = std::make_unique<AnyModelFile>(std::move(file));
  const AnyModelFile* raw = owned.get();
  models_.emplace(path, std::move(owned));
  return raw;
}

absl::Status PruningUnitRunner::RunOrError(const WorkUnit& unit, const std::string& out_dir,
                                           UnitResult* result) {
  CIRCUIT_ASSIGN_OR_RETURN(const AnyModelFile* file, CachedModel(unit.model));
  if (!unit.model_digest.empty() && file->digest != unit.model_digest) {
    return absl::FailedPreconditionError(absl::StrCat(
        unit.model, ": model changed since the sweep started (digest ", file->digest,
        ", expected ", unit.model_digest, ")"));
  }

  TaskOptions task_options;
  task_options.n_ctx = file->model->n_ctx();
  task_options.seed = unit.seed;
  if (spec_.n_train > 0) task_options.n_train = spec_.n_train;
  // As `circuit extract --pairs`: validation and test get a quarter each by default.
  const int quarter = std::max(8, task_options.n_train / 4);
  task_options.n_validation = spec_.n_validation > 0 ? spec_.n_validation : quarter;
  task_options.n_test = spec_.n_test > 0 ? spec_.n_test : quarter;
  CIRCUIT_ASSIGN_OR_RETURN(TaskData task, BuildTask(unit.task, file->tokenizer, task_options));

  prune::ExtractOptions o;
  o.target_loss = unit.target_loss;
  CIRCUIT_ASSIGN_OR_RETURN(o.ablation, prune::ParseAblation(unit.ablation));
  CIRCUIT_ASSIGN_OR_RETURN(o.masks.penalty, prune::ParsePenalty(unit.penalty));
  CIRCUIT_ASSIGN_OR_RETURN(o.method, prune::ParseMethod(unit.method));
  // 0 in the spec: the method's default coefficient (the pruner's -1).
  o.masks.penalty_coef = unit.penalty_coef > 0 ? unit.penalty_coef : -1.0;
  if (spec_.epochs > 0) o.masks.epochs = spec_.epochs;
  if (spec_.lr > 0) o.masks.lr = spec_.lr;
  if (spec_.batch > 0) o.masks.batch = spec_.batch;
  if (spec_.confidence > 0) o.confidence = spec_.confidence;
  o.search = spec_.search;
  o.seed = unit.seed;
  o.node_importance = unit.study == "node_ablation";
  o.random_draws = unit.study == "random_baseline" ? spec_.random_draws : 0;
  CIRCUIT_RETURN_IF_ERROR(prune::ValidateMaskTrainOptions(o.masks));

  torch::manual_seed(unit.seed);
  prune::ExtractStats stats;
  CIRCUIT_ASSIGN_OR_RETURN(Circuit circuit,
                           prune::ExtractCircuit(*file, task, o, /*progress=*/nullptr, &stats));
  prune::RecordTaskOptions(task_options, &circuit);
  const std::string circuit_file = absl::StrCat("units/", unit.id, ".h5");
  CIRCUIT_RETURN_IF_ERROR(WriteCircuitFile(out_dir + "/" + circuit_file, circuit));
  result->circuit_file = circuit_file;

  result->ok = true;
  result->met_target = stats.met_target;
  result->prune_seconds = stats.seconds;
  result->n_nodes = static_cast<int64_t>(circuit.nodes.size());
  result->n_edges = static_cast<int64_t>(circuit.edges.size());
  result->total_nodes = circuit.total_nodes;
  result->full_model_loss = circuit.full_model_loss;
  result->circuit_loss = circuit.circuit_loss;
  result->necessity_loss = circuit.necessity_loss;
  result->random_baseline_loss = circuit.random_baseline_loss;
  result->accuracy = circuit.accuracy;
  if (spec_.audit) {
    CIRCUIT_RETURN_IF_ERROR(AuditUnit(spec_, *file, circuit, task, task_options, o, result));
  }
  return absl::OkStatus();
}

absl::StatusOr<SweepSummary> RunPruningSweep(SweepSpec spec, const SweepOptions& options,
                                             c10::Device device) {
  PruningUnitRunner runner(spec, device);
  // Units are keyed by each model's content, so every rank reads the digests
  // before enumerating them.
  spec.model_digests = runner.ModelDigests(spec.models);
  int mpi_on = 0, rank = 0, size = 1;
  MPI_Initialized(&mpi_on);
  if (mpi_on) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
  }
  if (size > 1 && rank == 0) runner.ForgetModels();
  return RunSweep(spec, options, [&runner](const WorkUnit& unit, const std::string& dir) {
    return runner.Run(unit, dir);
  });
}

}  // namespace circuit
