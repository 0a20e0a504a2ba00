// Runs a sweep's pruning units in this process: each unit builds its task,
// extracts the circuit (prune::ExtractCircuit), writes it to
// <out>/units/<id>.h5 and, when the spec asks, audits it. RunPruningSweep is
// the whole of `circuit sweep` without its command line: a program linking
// circuit::sweep runs a sweep (or its share of an MPI one) by itself.
//
//   CIRCUIT_ASSIGN_OR_RETURN(SweepSpec spec, LoadSweepSpec("study.json"));
//   CIRCUIT_ASSIGN_OR_RETURN(SweepSummary s,
//                            RunPruningSweep(spec, {.out_dir = "out/study"}, torch::kCPU));
#ifndef CIRCUIT_SWEEP_PRUNING_RUNNER_H_
#define CIRCUIT_SWEEP_PRUNING_RUNNER_H_

#include <c10/core/Device.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/sweep/scheduler.h"

namespace circuit {

struct AnyModelFile;

// Runs units one at a time. Models stay loaded between units: a rank usually
// gets many units of the same model, and loading costs more than a small
// pruning run.
class PruningUnitRunner {
 public:
  PruningUnitRunner(const SweepSpec& spec, c10::Device device);
  ~PruningUnitRunner();
  PruningUnitRunner(const PruningUnitRunner&) = delete;
  PruningUnitRunner& operator=(const PruningUnitRunner&) = delete;

  // Never throws: a failure (of the unit or a foreign exception) is a row with ok false.
  UnitResult Run(const WorkUnit& unit, const std::string& out_dir);
  // The weights digest of every model, in order ("" for one that cannot be
  // loaded: its units fail with the loader's error when they run).
  std::vector<std::string> ModelDigests(const std::vector<std::string>& models);
  // Frees the loaded models (rank 0 of an MPI sweep only hands out units).
  void ForgetModels();

 private:
  absl::StatusOr<const AnyModelFile*> CachedModel(const std::string& path);
  absl::Status RunOrError(const WorkUnit& unit, const std::string& out_dir, UnitResult* result);

  const SweepSpec& spec_;
  c10::Device device_;
  std::map<std::string, std::unique_ptr<AnyModelFile>> models_;
};

// Keys the spec's units by its models' digests, then RunSweep with a
// PruningUnitRunner. Under MPI (between MPI_Init and MPI_Finalize, see
// MpiSession) every rank calls it; rank 0 only hands out units.
absl::StatusOr<SweepSummary> RunPruningSweep(SweepSpec spec, const SweepOptions& options,
                                             c10::Device device);

}  // namespace circuit

#endif  // CIRCUIT_SWEEP_PRUNING_RUNNER_H_
