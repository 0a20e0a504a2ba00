// Weight-sparse training (PAPER.md §2): next-token cross-entropy on random
// windows of a token corpus; per step: backward, global gradient-RMS
// normalisation, Adam (eps 0.1), top-k projection of every sparse tensor to the
// annealed density, then decoupled weight decay. `dense` trains the same
// architecture without weight sparsity (the baseline of §2.6).
//
//   TrainOptions o;
//   o.corpus_dir = "corpus/";  o.out = "model.h5";  o.schedule.steps = 2000;
//   CIRCUIT_ASSIGN_OR_RETURN(TrainResult r, Train(o));
//   std::cout << r.final_val_loss << "\n";
//
// Checkpoints: the model (SaveModel, with TrainingInfo) at `out`, and the
// complete resumable state (weights, Adam moments, step, curves, options) at
// `out + ".state"`; both are written atomically every `save_every` steps and
// when `stop` is raised. A finished run removes the state file. Resuming from
// the state reproduces an uninterrupted run bit for bit (same device and threads).
#ifndef CIRCUIT_CORE_TRAINER_H_
#define CIRCUIT_CORE_TRAINER_H_

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/config.h"
#include "circuit/core/optimizer.h"
#include "circuit/core/schedule.h"
#include "circuit/core/sparsity.h"

namespace circuit {

// What the trainer reports after every step (for progress lines).
struct TrainProgress {
  int64_t step = 0;   // steps completed
  int64_t steps = 0;  // total
  double loss = 0.0;  // training loss of this step, nats/token
  double val_loss = std::numeric_limits<double>::quiet_NaN();  // set on evaluation steps
  double lr = 0.0;
  double density = 1.0;        // hidden-matrix density after this step (NaN: dense, BDH)
  double embed_density = 1.0;  // embedding density after this step (NaN: dense, BDH)
  double tokens_per_second = 0.0;  // training throughput of this run so far
  double elapsed_seconds = 0.0;    // this run
  double eta_seconds = 0.0;
  bool saved = false;  // a checkpoint was written after this step
};

struct TrainOptions {
  ModelConfig config;          // the architecture (ignored on resume: the checkpoint's)
  std::string corpus_dir;      // a built corpus (train.bin, val.bin; circuit/core/corpus.h)
  std::string tokenizer_dir;   // encoder.json + vocab.bpe; "" = the corpus's tokenizer
  std::string out;             // model checkpoint; training state at out + ".state"
  bool resume = false;         // continue from out + ".state" with its stored options
  // Start from this model's weights instead of a fresh initialisation (its
  // architecture and tokenizer; `config` is ignored), with a fresh optimiser and
  // this run's schedule: a longer training of an existing model. "" = fresh.
  std::string init_model;

  TrainSchedule schedule;      // steps, lr, warmup, annealing, densities, dense
  SparsityOptions sparsity;
  AdamOptions adam;
  int batch = 32;              // sequences of n_ctx + 1 tokens per step
  double weight_decay = 0.1;   // decoupled, lr-scaled, after projection; 2-D tensors but the bigram table
  uint64_t seed = 0;           // initialisation and batch sampling
  int64_t eval_every = 100;    // validation loss every N steps (and at the end); 0: only at the end
  int64_t save_every = 500;    // checkpoint every N steps; 0: only at the end and on stop
  int val_windows = 64;        // fixed validation windows (evenly spaced over val.bin)
  torch::Device device = torch::kCPU;

  std::string command;         // recorded as provenance
  // Polled before every step; when true the trainer saves a checkpoint and
  // returns with interrupted = true. Not owned; may be null.
  const std::atomic<bool>* stop = nullptr;
  // > 0: stop the same way once this many steps of the schedule are done (a
  // time-boxed run of a longer schedule; --resume continues it). Not stored.
  int64_t stop_after = 0;
  // Called after every step. May be empty.
  std::function<void(const TrainProgress&)> on_progress;
};

// Where the time went, in seconds, summed over this run's steps.
struct TrainTimings {
  double data = 0, forward = 0, backward = 0, optimizer = 0, projection = 0;
  double eval = 0, checkpoint = 0;
};

struct TrainResult {
  int64_t start_step = 0;   // 0, or the step a resume started from
  int64_t steps_done = 0;   // steps completed in total
  bool interrupted = false; // stopped early through `stop` (checkpoint saved)
  double final_loss = 0.0;  // mean training loss of the last (up to) 20 steps
  double final_val_loss = std::numeric_limits<double>::quiet_NaN();
  double seconds = 0.0;     // wall time of this run
  double tokens_per_second = 0.0;  // training tokens / (time in training steps)
  TrainTimings timings;
  std::vector<std::pair<std::string, double>> density;  // final nonzero fraction per tensor
  std::string model_path;
  std::string state_path;   // empty once training finished (the state file is removed)
};

// Trains (or resumes) and writes the checkpoints. Errors: bad options or corpus
// (InvalidArgument, naming the field or file), a non-finite loss (
// Aborted, naming the step; the last checkpoint is kept), I/O failures.
absl::StatusOr<TrainResult> Train(const TrainOptions& options);

// Makes glibc malloc keep freed memory for reuse (no mmap for large blocks, no
// trimming of the heap, one arena for all threads). A training step allocates
// and frees tensors of tens of MB; by default each is a fresh mmap whose pages
// fault in again on first touch, which made steps 2-20x slower on the
// project's VM. Process-wide and idempotent; Train() calls it. The heap then
// stays at its peak size.
void KeepFreedMemory();

// The path of the training-state file for a model checkpoint: out + ".state".
std::string TrainStatePath(const std::string& out);

}  // namespace circuit

#endif  // CIRCUIT_CORE_TRAINER_H_
