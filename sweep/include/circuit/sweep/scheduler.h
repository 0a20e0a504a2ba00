// Runs every work unit of a sweep, once. Under mpirun/srun (more than one rank)
// rank 0 hands out units dynamically to the other ranks and is the only writer
// of results.h5; with one process the units run in turn. Finished units (rows in
// results.h5) are skipped, so a killed sweep resumes where it stopped.
//
//   SweepOptions options{.out_dir = "out/sweep"};
//   CIRCUIT_ASSIGN_OR_RETURN(SweepSummary s, RunSweep(spec, options, RunWorkUnit));
#ifndef CIRCUIT_SWEEP_SCHEDULER_H_
#define CIRCUIT_SWEEP_SCHEDULER_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "circuit/sweep/results.h"
#include "circuit/sweep/spec.h"

namespace circuit {

struct SweepOptions {
  std::string out_dir;
  bool retry_failed = false;  // run units again whose row says they failed
  bool progress = true;       // a line per finished unit on stderr (rank 0)
};

struct SweepSummary {
  int64_t total = 0;     // units in the spec
  int64_t skipped = 0;   // already finished before this run
  int64_t ran = 0;       // finished in this run
  int64_t failed = 0;    // of those, failed
  int ranks = 1;
  double seconds = 0;
};

// Runs one unit; never throws; a failure is a row with ok == false.
using UnitRunner = std::function<UnitResult(const WorkUnit& unit, const std::string& out_dir)>;

// Call between MPI_Init and MPI_Finalize when launched by mpirun/srun (see MpiSession).
absl::StatusOr<SweepSummary> RunSweep(const SweepSpec& spec, const SweepOptions& options,
                                      const UnitRunner& run);

// Initialises MPI only when this process was started by mpirun or srun
// (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment); finalises on
// destruction. Without a launcher everything runs in this one process.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool active() const { return active_; }

 private:
  bool active_ = false;
  int rank_ = 0, size_ = 1;
};

// A Slurm batch script that runs the same sweep on `tasks` ranks through srun.
std::string SlurmScript(const std::string& spec_path, const std::string& out_dir, int tasks,
                        const std::string& circuit_binary);

}  // namespace circuit

#endif  // CIRCUIT_SWEEP_SCHEDULER_H_
