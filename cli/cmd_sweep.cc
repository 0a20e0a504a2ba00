// circuit sweep: a batch of pruning runs (the cross product of a spec's lists),
// in this process or across MPI ranks, resumable; see docs/sweeps.md.
#include <mpi.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "args.h"
#include "circuit/core/file_util.h"
#include "circuit/core/model.h"
#include "circuit/core/runtime.h"
#include "circuit/core/task.h"
#include "circuit/core/trainer.h"
#include "circuit/sweep/pruning_runner.h"
#include "circuit/sweep/scheduler.h"
#include "circuit/sweep/spec.h"
#include "command.h"

namespace circuit::cli {
namespace {

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
  const std::string spec_name = spec->name;
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
  SweepOptions options;
  options.out_dir = out_dir;
  options.retry_failed = retry_failed;
  absl::StatusOr<SweepSummary> summary = RunPruningSweep(*std::move(spec), options, *device);
  if (!summary.ok()) return Fail("sweep", std::string(summary.status().message()), kExitFailure);
  if (mpi.rank() == 0) {
    std::cout << absl::StrFormat(
        "sweep %s: %d units: %d skipped (finished before), %d ran, %d failed; %.1f s on %d "
        "rank%s, %d thread%s each; results in %s/results.h5\n",
        spec_name, summary->total, summary->skipped, summary->ran, summary->failed,
        summary->seconds, summary->ranks, summary->ranks == 1 ? "" : "s", threads,
        threads == 1 ? "" : "s", out_dir);
  }
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(sweep, "sweep", "run a batch of pruning runs from a spec (locally or under MPI)",
                RunSweepCommand);

}  // namespace circuit::cli
