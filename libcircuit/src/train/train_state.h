// The resumable state of a training run (format "circuit.train_state"): step,
// options, corpus digest, every weight, Adam's moments and the curves so far.
// Self-contained, so a crash between writing it and the model file never
// leaves a pair that disagrees. Private to the trainer.
#ifndef CIRCUIT_CORE_SRC_TRAIN_STATE_H_
#define CIRCUIT_CORE_SRC_TRAIN_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/model.h"
#include "circuit/core/trainer.h"

namespace circuit::internal {

inline constexpr int64_t kTrainStateFormatVersion = 1;

struct TrainState {
  int64_t step = 0;       // steps completed
  int64_t tokens = 0;     // training tokens seen
  double seconds = 0.0;   // wall time of all runs so far
  // The options that define the run: schedule, sparsity, adam, batch,
  // weight_decay, seed, val_windows, eval_every (other fields are not stored).
  TrainOptions options;
  std::string corpus_digest;
  std::string init_from;                // TrainingInfo::init_from, "" for a fresh start
  std::vector<NamedTensor> weights;     // every model tensor, state-dict order
  int64_t adam_step = 0;
  std::vector<NamedTensor> exp_avg;     // per trainable tensor, by name
  std::vector<NamedTensor> exp_avg_sq;
  std::vector<int64_t> curve_step;
  std::vector<double> curve_loss;
  std::vector<int64_t> val_step;
  std::vector<double> val_loss;
};

// Writes atomically (H5Writer). Tensors are copied to the CPU as float32.
absl::Status SaveTrainState(const std::string& path, const TrainState& state);
// Reads and validates; errors name the file and the object.
absl::StatusOr<TrainState> LoadTrainState(const std::string& path);

}  // namespace circuit::internal

#endif  // CIRCUIT_CORE_SRC_TRAIN_STATE_H_
