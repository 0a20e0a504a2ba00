// The MPI protocol is three tags: a worker sends kResult (an empty payload the
// first time), rank 0 answers kWork with a unit index or kStop. Rank 0 polls with
// MPI_Test and short sleeps instead of a blocking receive, because OpenMPI's
// blocking receive spins and would steal a core from the workers.
#include "circuit/sweep/scheduler.h"

#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "circuit/core/status.h"

namespace circuit {
namespace {

constexpr int kTagResult = 1;
constexpr int kTagWork = 2;
constexpr int kTagStop = 3;

// What a worker sends back: the row, or (should it not parse) a failed row.
UnitResult FromWorker(const std::string& payload, const WorkUnit& unit, int worker) {
  absl::StatusOr<UnitResult> r = ResultFromJson(payload);
  if (r.ok() && r->unit.id == unit.id) {
    r->unit = unit;  // rank 0's copy, with the settings that rows do not store
    return *std::move(r);
  }
  UnitResult failed{unit, false};
  failed.rank = worker;
  failed.error = absl::StrCat("rank ", worker, " sent a malformed result: ",
                              r.ok() ? "for another unit" : r.status().message());
  return failed;
}

void Report(const SweepOptions& options, const UnitResult& r, int64_t done, int64_t todo) {
  if (!options.progress) return;
  if (r.ok) {
    std::cerr << absl::StrFormat("[%d/%d] %s: %d nodes, %d edges, loss %.3f%s (%.1f s, rank %d)\n",
                                 done, todo, r.unit.id, r.n_nodes, r.n_edges, r.circuit_loss,
                                 r.met_target ? "" : ", target NOT met: whole model kept",
                                 r.seconds, r.rank);
  } else {
    std::cerr << absl::StrFormat("[%d/%d] %s: FAILED: %s\n", done, todo, r.unit.id, r.error);
  }
}

UnitResult RunOne(const UnitRunner& run, const WorkUnit& unit, const std::string& out_dir,
                  int rank) {
  const auto start = std::chrono::steady_clock::now();
  UnitResult r = run(unit, out_dir);
  r.unit = unit;
  r.rank = rank;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace

MpiSession::MpiSession(int* argc, char*** argv) {
  const bool launched = std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr ||
                        std::getenv("PMI_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr;
  if (!launched) return;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) MPI_Init(argc, argv);
  active_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() {
  if (active_) MPI_Finalize();
}

absl::StatusOr<SweepSummary> RunSweep(const SweepSpec& spec, const SweepOptions& options,
                                      const UnitRunner& run) {
  const auto start = std::chrono::steady_clock::now();
  int initialized = 0, rank = 0, size = 1;
  MPI_Initialized(&initialized);
  if (initialized) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
  }
  const std::vector<WorkUnit> units = EnumerateUnits(spec);
  SweepSummary summary;
  summary.total = static_cast<int64_t>(units.size());
  summary.ranks = size;

  std::error_code ec;
  std::filesystem::create_directories(options.out_dir + "/units", ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(options.out_dir, ": cannot create: ", ec.message()));
  }

  if (rank != 0) {  // a worker
    std::string payload;  // empty: "give me work"
    while (true) {
      MPI_Send(payload.data(), static_cast<int>(payload.size()), MPI_CHAR, 0, kTagResult,
               MPI_COMM_WORLD);
      int index = -1;
      MPI_Status status;
      MPI_Recv(&index, 1, MPI_INT, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &status);
      if (status.MPI_TAG == kTagStop) break;
      payload = ResultToJson(RunOne(run, units[index], options.out_dir, rank));
    }
    return summary;
  }

  absl::StatusOr<ResultsFile> results =
      ResultsFile::Open(options.out_dir + "/results.h5", spec.name, spec.source);
  if (!results.ok()) {
    // Rank 0 cannot go on: release the workers before failing.
    for (int w = 1; w < size; ++w) {
      MPI_Status status;
      int count = 0;
      MPI_Probe(w, kTagResult, MPI_COMM_WORLD, &status);
      MPI_Get_count(&status, MPI_CHAR, &count);
      std::string ignored(count, '\0');
      MPI_Recv(ignored.data(), count, MPI_CHAR, w, kTagResult, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      int none = -1;
      MPI_Send(&none, 1, MPI_INT, w, kTagStop, MPI_COMM_WORLD);
    }
    return results.status();
  }
  if (options.retry_failed) results->ForgetFailures();
  std::vector<int> todo;
  for (int i = 0; i < static_cast<int>(units.size()); ++i) {
    if (!results->Has(units[i].id)) todo.push_back(i);
  }
  summary.skipped = summary.total - static_cast<int64_t>(todo.size());
  if (options.progress && summary.skipped > 0) {
    std::cerr << "sweep: " << summary.skipped << " of " << summary.total
              << " units already finished, skipping them\n";
  }
  absl::Status write_error = absl::OkStatus();
  auto record = [&](UnitResult r) {
    ++summary.ran;
    if (!r.ok) ++summary.failed;
    Report(options, r, summary.ran, static_cast<int64_t>(todo.size()));
    if (absl::Status s = results->Append(std::move(r)); !s.ok() && write_error.ok()) {
      write_error = s;
    }
  };

  if (size == 1) {
    for (int index : todo) {
      record(RunOne(run, units[index], options.out_dir, 0));
      if (!write_error.ok()) return write_error;
    }
  } else {
    size_t next = 0;
    int running = size - 1;
    std::vector<int> assigned(size, -1);
    while (running > 0) {
      int flag = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, kTagResult, MPI_COMM_WORLD, &flag, &status);
      if (!flag) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        continue;
      }
      int count = 0;
      MPI_Get_count(&status, MPI_CHAR, &count);
      std::string payload(count, '\0');
      const int worker = status.MPI_SOURCE;
      MPI_Recv(payload.data(), count, MPI_CHAR, worker, kTagResult, MPI_COMM_WORLD,
               MPI_STATUS_IGNORE);
      if (!payload.empty()) record(FromWorker(payload, units[assigned[worker]], worker));
      if (next < todo.size() && write_error.ok()) {
        assigned[worker] = todo[next++];
        MPI_Send(&assigned[worker], 1, MPI_INT, worker, kTagWork, MPI_COMM_WORLD);
      } else {
        int none = -1;
        MPI_Send(&none, 1, MPI_INT, worker, kTagStop, MPI_COMM_WORLD);
        --running;
      }
    }
    if (!write_error.ok()) return write_error;
  }
  CIRCUIT_RETURN_IF_ERROR(results->Close());
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

std::string SlurmScript(const std::string& spec_path, const std::string& out_dir, int tasks,
                        const std::string& circuit_binary) {
  return absl::StrCat(
      "#!/bin/bash\n"
      "# Generated by `circuit sweep --emit-slurm`. Submit with: sbatch <this file>\n"
      "#SBATCH --job-name=circuit-sweep\n"
      "#SBATCH --ntasks=", tasks, "\n",
      "#SBATCH --cpus-per-task=2\n"
      "#SBATCH --output=", out_dir, "/slurm-%j.log\n"
      "set -euo pipefail\n"
      "export CIRCUIT_THREADS=${SLURM_CPUS_PER_TASK:-2}\n"
      "# Rank 0 hands out units; re-submitting resumes where a killed job stopped.\n"
      "srun ", circuit_binary, " sweep ", spec_path, " --out ", out_dir, "\n");
}

}  // namespace circuit
