// circuit sweep: a batch of pruning runs (the cross product of a spec's lists),
// in this process or across MPI ranks, resumable; see docs/sweeps.md.
#include <mpi.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "args.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/file_util.h"
#include "circuit/core/runtime.h"
#include "circuit/core/status.h"
#include "circuit/core/task.h"
#include "circuit/core/trainer.h"
#include "circuit/export/circuit_file.h"
#include "circuit/prune/audit.h"
#include "circuit/prune/pruner.h"
#include "circuit/prune/settings.h"
#include "circuit/sweep/scheduler.h"
#include "circuit/sweep/spec.h"
#include "command.h"

namespace circuit::cli {
namespace {

// Runs work units in this process. Models stay loaded between units: a rank
// usually gets many units of the same model, and loading costs more than a
// small pruning run.
class PruningUnitRunner {
 public:
  PruningUnitRunner(const SweepSpec& spec, torch::Device device) : spec_(spec), device_(device) {}

  UnitResult Run(const WorkUnit& unit, const std::string& out_dir) {
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

  // The weights digest of every model of the spec, in order ("" for one that
  // cannot be loaded: its units fail with the loader's error when they run).
  std::vector<std::string> ModelDigests(const std::vector<std::string>& models) {
    std::vector<std::string> digests;
    for (const std::string& path : models) {
      absl::StatusOr<const ModelFile*> file = CachedModel(path);
      digests.push_back(file.ok() ? (*file)->digest : "");
    }
    return digests;
  }
  // Frees the loaded models (rank 0 of an MPI sweep only hands out units).
  void ForgetModels() { models_.clear(); }

 private:
  absl::StatusOr<const ModelFile*> CachedModel(const std::string& path) {
    auto it = models_.find(path);
    if (it != models_.end()) return it->second.get();
    CIRCUIT_ASSIGN_OR_RETURN(ModelFile file, LoadModel(path, device_));
    auto owned = std::make_unique<ModelFile>(std::move(file));
    const ModelFile* raw = owned.get();
    models_.emplace(path, std::move(owned));
    return raw;
  }

  absl::Status RunOrError(const WorkUnit& unit, const std::string& out_dir, UnitResult* result) {
    CIRCUIT_ASSIGN_OR_RETURN(const ModelFile* file, CachedModel(unit.model));
    if (!unit.model_digest.empty() && file->digest != unit.model_digest) {
      return absl::FailedPreconditionError(absl::StrCat(
          unit.model, ": model changed since the sweep started (digest ", file->digest,
          ", expected ", unit.model_digest, ")"));
    }

    TaskOptions task_options;
    task_options.n_ctx = file->model.config().n_ctx;
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
    if (spec_.audit) CIRCUIT_RETURN_IF_ERROR(Audit(*file, circuit, task, task_options, o, result));
    return absl::OkStatus();
  }

  // The unit's audit (spec key "audit"): its figures into the row, audit.json
  // beside nothing (the row holds what the report shows). Transfer is left out:
  // it is one more extraction per unit and not in the row.
  absl::Status Audit(const ModelFile& file, const Circuit& circuit, const TaskData& task,
                     const TaskOptions& task_options, const prune::ExtractOptions& extract,
                     UnitResult* result) {
    prune::AuditInputs in;
    in.model = &file.model;
    in.model_file = circuit.model_file;
    in.model_digest = file.digest;
    in.circuit = &circuit;
    in.task = &task;
    in.extract = extract;
    in.extract.means_cache = prune::MeansPathFor(file.path);
    in.tokenizer = &file.tokenizer;
    in.task_options = task_options;
    prune::AuditOptions ao;
    ao.seeds = spec_.audit_seeds;
    ao.transfer = false;
    ao.seed = circuit.seed;
    CIRCUIT_ASSIGN_OR_RETURN(prune::AuditResult a, prune::AuditCircuit(in, ao));
    result->cpr = a.curves.front().cpr;
    result->cmd = a.curves.front().cmd;
    result->jaccard = a.stability.runs > 1 ? a.stability.mean_jaccard : kNoFigure;
    result->control_ratio = prune::ControlRatio(a);
    return absl::OkStatus();
  }

  const SweepSpec& spec_;
  torch::Device device_;
  std::map<std::string, std::unique_ptr<ModelFile>> models_;
};

// Ranks that compute on this machine: those sharing its memory, less rank 0 when
// it is here, since rank 0 only hands out units (and sleeps between messages).
// Collective: every rank calls it.
int WorkersOnThisMachine(const MpiSession& mpi) {
  if (!mpi.active() || mpi.size() == 1) return 1;
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, mpi.rank(), MPI_INFO_NULL, &local);
  int local_size = 1, has_dispatcher = 0;
  const int is_dispatcher = mpi.rank() == 0 ? 1 : 0;
  MPI_Comm_size(local, &local_size);
  MPI_Allreduce(&is_dispatcher, &has_dispatcher, 1, MPI_INT, MPI_MAX, local);
  MPI_Comm_free(&local);
  return std::max(1, local_size - has_dispatcher);
}

std::string SelfPath(const char* argv0) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) return self.string();
  return std::filesystem::absolute(argv0, ec).string();
}

int RunSweepCommand(int argc, char** argv) {
  // MPI only starts under mpirun/srun; it must see argv before anything else.
  MpiSession mpi(&argc, &argv);
  ArgParser parser(
      "circuit sweep SPEC.json --out DIR [options]",
      "Run every pruning unit of a sweep spec (the cross product of its lists; see "
      "docs/sweeps.md), one row per unit in DIR/results.h5 and its circuit in DIR/units/<id>.h5. "
      "Under mpirun or srun, rank 0 hands out units to the other ranks. Finished units are "
      "skipped, so running the same command again resumes a killed sweep. A unit that fails "
      "(a missing model, an unknown task, ...) is recorded with its error and the sweep goes "
      "on. Exit code: 0 when the sweep ran, even if some units failed (the summary counts them; "
      "--retry-failed runs them again); 1 when results.h5 cannot be written; 2 on bad usage or "
      "a bad spec.");
  std::string spec_path, out_dir, device_name = "cpu";
  bool retry_failed = false, emit_slurm = false;
  int slurm_tasks = 4, threads = 0;
  if (const char* env = std::getenv("CIRCUIT_DEVICE"); env != nullptr && *env != '\0') {
    device_name = env;
  }
  if (const char* env = std::getenv("CIRCUIT_THREADS"); env != nullptr) {
    (void)absl::SimpleAtoi(env, &threads);
  }
  parser.Positional("SPEC.json", "the sweep spec", &spec_path);
  parser.Option("out", "output directory (results.h5, units/)", &out_dir);
  parser.Flag("retry-failed", "run units again whose row says they failed", &retry_failed);
  parser.Flag("emit-slurm", "write DIR/sweep.sbatch (srun over --tasks ranks) and exit",
              &emit_slurm);
  parser.Option("tasks", "Slurm tasks (MPI ranks) for --emit-slurm", &slurm_tasks);
  parser.Option(
      "threads",
      "CPU threads per rank; 0 = cores / worker ranks on this machine; env CIRCUIT_THREADS",
      &threads);
  parser.Option("device", std::string(kDeviceHelp) + "; env CIRCUIT_DEVICE", &device_name);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (out_dir.empty()) return Fail("sweep", "--out is required", kExitUsage);
  if (emit_slurm && slurm_tasks < 2)
    return Fail("sweep", "--tasks must be at least 2 (rank 0 only dispatches)", kExitUsage);

  absl::StatusOr<SweepSpec> spec = LoadSweepSpec(spec_path);
  if (!spec.ok()) return Fail("sweep", std::string(spec.status().message()), kExitUsage);
  // A task file without twins is a bad spec, not a failed unit.
  for (const std::string& task : spec->tasks) {
    if (absl::Status s = RequireTwins(task); !s.ok()) {
      return Fail("sweep", std::string(s.message()), kExitUsage);
    }
  }
  absl::StatusOr<torch::Device> device = ParseDevice(device_name);
  if (!device.ok()) return Fail("sweep", std::string(device.status().message()), kExitUsage);

  if (emit_slurm) {
    if (mpi.rank() != 0) return kExitOk;
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) return Fail("sweep", out_dir + ": " + ec.message(), kExitUsage);
    const std::string script_path = out_dir + "/sweep.sbatch";
    {
      std::ofstream out(script_path);
      out << SlurmScript(std::filesystem::absolute(spec_path).string(),
                         std::filesystem::absolute(out_dir).string(), slurm_tasks,
                         SelfPath(argv[0]));
      if (!out) return Fail("sweep", script_path + ": write failed", kExitFailure);
    }
    std::filesystem::permissions(script_path, std::filesystem::perms::owner_exec,
                                 std::filesystem::perm_options::add, ec);
    std::cout << "wrote " << script_path << " (" << EnumerateUnits(*spec).size() << " units on "
              << slurm_tasks << " ranks); submit it with sbatch\n";
    return kExitOk;
  }

  const int workers = WorkersOnThisMachine(mpi);  // collective: before any rank-dependent branch
  if (threads <= 0) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::max(1, cores / workers);
  }
  ConfigureRuntime(threads);
  KeepFreedMemory();

  // One sweep at a time per folder: two would each rewrite results.h5 with
  // only their own rows. Rank 0 is the only writer.
  std::optional<FolderLock> folder_lock;
  if (mpi.rank() == 0) {
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    absl::StatusOr<FolderLock> lock = FolderLock::TryAcquire(out_dir);
    if (!lock.ok()) {
      const int rc = Fail("sweep", std::string(lock.status().message()), kExitFailure);
      if (mpi.size() > 1) MPI_Abort(MPI_COMM_WORLD, rc);  // the workers wait for rank 0
      return rc;
    }
    folder_lock.emplace(*std::move(lock));
  }
  PruningUnitRunner runner(*spec, *device);
  // Units are keyed by each model's content, so every rank reads the digests
  // before enumerating them.
  spec->model_digests = runner.ModelDigests(spec->models);
  if (mpi.active() && mpi.size() > 1 && mpi.rank() == 0) runner.ForgetModels();
  SweepOptions options;
  options.out_dir = out_dir;
  options.retry_failed = retry_failed;
  absl::StatusOr<SweepSummary> summary = RunSweep(
      *spec, options,
      [&runner](const WorkUnit& unit, const std::string& dir) { return runner.Run(unit, dir); });
  if (!summary.ok()) return Fail("sweep", std::string(summary.status().message()), kExitFailure);
  if (mpi.rank() == 0) {
    std::cout << absl::StrFormat(
        "sweep %s: %d units: %d skipped (finished before), %d ran, %d failed; %.1f s on %d "
        "rank%s, %d thread%s each; results in %s/results.h5\n",
        spec->name, summary->total, summary->skipped, summary->ran, summary->failed,
        summary->seconds, summary->ranks, summary->ranks == 1 ? "" : "s", threads,
        threads == 1 ? "" : "s", out_dir);
  }
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(sweep, "sweep", "run a batch of pruning runs from a spec (locally or under MPI)",
                RunSweepCommand);

}  // namespace circuit::cli
