// Model checkpoints in HDF5 (format "circuit.model", DESIGN.md): config as root
// attributes, every tensor as float32 under /weights/<release state-dict key>,
// the tokenizer under /tokenizer/, provenance under /training/.
//
//   CIRCUIT_RETURN_IF_ERROR(SaveModel("model.h5", model, tokenizer, training));
//   CIRCUIT_ASSIGN_OR_RETURN(ModelFile file, LoadModel("model.h5"));
//   file.model.Forward(tokens);
#ifndef CIRCUIT_CORE_CHECKPOINT_H_
#define CIRCUIT_CORE_CHECKPOINT_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/arch.h"  // kModelFormat, kModelFormatVersion
#include "circuit/core/config.h"
#include "circuit/core/model.h"
#include "circuit/core/tokenizer.h"

namespace circuit {

// Where a model came from (/training/ in the file). All fields optional.
struct TrainingInfo {
  int64_t steps = 0;
  int64_t tokens = 0;
  uint64_t seed = 0;
  bool dense = false;           // trained without weight sparsity (baseline)
  double final_loss = 0.0;      // last training loss, nats/token
  double final_val_loss = 0.0;  // last validation loss, nats/token
  double seconds = 0.0;         // wall time of training
  std::string corpus_digest;
  std::string command;          // the command line that trained it
  // Set when training started from another model (TrainOptions::init_model):
  // "<file> digest <d>, <steps> steps, <tokens> tokens"; steps, tokens and
  // seconds above count this run only.
  std::string init_from;
  std::map<std::string, double> hyperparameters;  // lr, pfrac, afrac, ...
  std::vector<int64_t> curve_step;  // training curve
  std::vector<double> curve_loss;
  std::vector<int64_t> val_step;    // validation curve
  std::vector<double> val_loss;
};

// TrainingInfo::final_loss as the trainers report it: the mean of the last
// (up to) 20 losses of the training curve; 0 for an empty curve.
double RecentMeanLoss(const std::vector<double>& curve_loss);

struct ModelFile {
  Model model;
  Tokenizer tokenizer;
  TrainingInfo training;
  std::string path;
  std::string digest;  // of the weights; names the model in circuits and caches
};

// Writes atomically (temp file + rename). Matrices are stored chunked and
// deflated, which keeps weight-sparse models small.
absl::Status SaveModel(const std::string& path, const Model& model, const Tokenizer& tokenizer,
                       const TrainingInfo& training);

// Loads and validates every attribute, dataset name, shape and dtype; errors
// name the file, the object and the mismatch.
absl::StatusOr<ModelFile> LoadModel(const std::string& path, torch::Device device = torch::kCPU);

// Reads only the config (fast; no tensors).
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path);

// Fraction of nonzero entries per parameter, in state-dict order.
std::vector<std::pair<std::string, double>> ParameterDensity(const Model& model);

// Digest of all weights (names, shapes and bytes).
std::string WeightsDigest(const Model& model);

}  // namespace circuit

#endif  // CIRCUIT_CORE_CHECKPOINT_H_
