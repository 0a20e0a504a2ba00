// Training a BDH model on a built corpus: the same token windows, validation
// windows and tokenizer as the GPT's trainer (circuit/core/trainer.h), dense
// weights, and the reference's recipe: AdamW (Adam, then decoupled weight
// decay on every tensor), constant learning rate, dropout on the gated neurons.
// A small loop of its own: the GPT trainer's step is built around weight
// sparsity (top-k projection, annealing, sparse Adam state), which BDH lacks.
//
//   BdhTrainOptions o;
//   o.corpus_dir = "corpus/";  o.out = "bdh.h5";  o.steps = 500;
//   CIRCUIT_ASSIGN_OR_RETURN(BdhTrainResult r, TrainBdh(o));
//
// The model (SaveBdhModel, with TrainingInfo) is written every `save_every`
// steps, at the end, and when `stop` is raised. There is no resumable state
// file yet (a stopped run keeps its model, not its optimiser).
#ifndef CIRCUIT_CORE_BDH_TRAIN_H_
#define CIRCUIT_CORE_BDH_TRAIN_H_

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

#include "absl/status/statusor.h"
#include "circuit/core/bdh_config.h"
#include "circuit/core/trainer.h"  // TrainProgress

namespace circuit {

struct BdhTrainOptions {
  BdhConfig config;
  std::string corpus_dir;                         // a built corpus (train.bin, val.bin)
  std::string tokenizer_dir;                      // "" = the corpus's tokenizer
  std::string out;                                // the model checkpoint
  // Start from this BDH model's weights and shape (`config` is then ignored)
  // with a fresh optimiser: a longer training in stages, as the GPT's --init.
  // Its tokenizer must be the corpus's. Batches follow (seed, step) from step
  // 0 again: give another seed to draw other windows.
  std::string init_model;
  int64_t steps = 3000;                           // the reference's MAX_ITERS
  int batch = 32;                                 // windows of n_ctx + 1 tokens per step
  double lr = 1e-3;                               // constant, as the reference
  // The last `cooldown` fraction of the steps decays lr linearly to 0 (0: the
  // reference's constant lr; 1: decay over the whole run, e.g. a last stage
  // after --init that settles the weights a constant lr keeps moving).
  double cooldown = 0;
  double weight_decay = 0.1;                      // decoupled, times lr, on every tensor (AdamW)
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // torch.optim.AdamW's defaults
  uint64_t seed = 0;                              // initialisation, batches and dropout
  int64_t eval_every = 100;  // validation loss every N steps and at the end; 0: at the end
  int64_t save_every = 500;  // checkpoint every N steps; 0: at the end (and on stop)
  int val_windows = 64;
  torch::Device device = torch::kCPU;
  std::string command;                                    // provenance
  const std::atomic<bool>* stop = nullptr;                // polled before every step; not owned
  std::function<void(const TrainProgress&)> on_progress;  // after every step; may be empty
};

struct BdhTrainResult {
  int64_t steps_done = 0;
  bool interrupted = false;
  double initial_val_loss = std::numeric_limits<double>::quiet_NaN();  // before step 1
  double final_loss = 0.0;  // mean training loss of the last (up to) 20 steps
  double final_val_loss = std::numeric_limits<double>::quiet_NaN();
  double seconds = 0.0;
  double tokens_per_second = 0.0;
  std::string model_path;
};

// Errors: bad options or corpus (InvalidArgument, naming the field or file), a
// non-finite loss (Aborted, naming the step), I/O.
absl::StatusOr<BdhTrainResult> TrainBdh(const BdhTrainOptions& options);

class BdhModel;
// The validation loss training reports: mean next-token loss over `windows`
// evenly spaced windows of n_ctx + 1 tokens of the corpus's val split, in
// batches of `batch`. Errors: a corpus that is missing, broken, or of another
// vocabulary, or shorter than one window.
absl::StatusOr<double> BdhValidationLoss(const BdhModel& model, const std::string& corpus_dir,
                                         int windows = 64, int batch = 32);

}  // namespace circuit

#endif  // CIRCUIT_CORE_BDH_TRAIN_H_
