// The settings a circuit records about its own extraction (Circuit::settings,
// /extract in the circuit file), and the options rebuilt from them, so that
// `circuit ablate` and `circuit audit` score a circuit on the very test split
// it was verified on and re-run the very extraction it came from.
//
//   RecordTaskOptions(task_options, &circuit);          // after ExtractCircuit
//   CIRCUIT_ASSIGN_OR_RETURN(TaskOptions t, TaskOptionsFor(circuit, n_ctx));  // later
//   CIRCUIT_ASSIGN_OR_RETURN(ExtractOptions o, ExtractOptionsFor(circuit));
#ifndef CIRCUIT_PRUNE_SETTINGS_H_
#define CIRCUIT_PRUNE_SETTINGS_H_

#include "absl/status/statusor.h"
#include "circuit/core/any_model.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/circuit.h"
#include "circuit/core/task.h"
#include "circuit/prune/calibration.h"
#include "circuit/prune/pruner.h"

namespace circuit::prune {

// Writes the extraction options (resolved penalty coefficient, mask training,
// confidence, search, tie_qk, calibrate) and the calibration at the chosen k
// (NaN when calibration is off) into *settings.
void RecordExtractOptions(const ExtractOptions& options, const LogitCalibration& calibration,
                          ExtractSettings* settings);

// Records the options the task was built with (datapoints per split, seed).
void RecordTaskOptions(const TaskOptions& options, Circuit* circuit);

// The task options the circuit's splits came from. Unrecorded values fall back
// to what `circuit extract` uses: 512 train pairs, a quarter of that (at least
// 8) for validation and test, the circuit's seed. n_train > 0 replaces the
// recorded sizes: that many train pairs, validation and test by extract's rule.
// Errors: recorded counts beyond 2^20 pairs (a hostile file).
absl::StatusOr<TaskOptions> TaskOptionsFor(const Circuit& circuit, int n_ctx, int n_train = -1);

// Loads the model at `model_path` and checks that it is the one the circuit
// was extracted from, by weights digest. Errors: the loader's, or
// "C.h5 was extracted from default.h5 (digest d1), not m.h5 (digest d2); pass --model".
absl::StatusOr<AnyModelFile> LoadCircuitModel(const Circuit& circuit, const std::string& circuit_path,
                                           const std::string& model_path, torch::Device device);

// The extraction options the circuit came from, defaults where unrecorded.
// Errors: a method, penalty or ablation name the tools do not know.
absl::StatusOr<ExtractOptions> ExtractOptionsFor(const Circuit& circuit);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_SETTINGS_H_
