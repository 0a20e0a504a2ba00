// The weight-sparse training schedules of PAPER.md §2.4, as pure functions of
// the step: L0 annealing (dense -> target density, linear in the fraction) and
// the "sharkfin" learning rate (warmup, linear decay to 0, times
// sqrt(L0_final / L0(t))). Torch-free, so the trainer, tests and docs agree.
//
//   TrainSchedule s;
//   s.steps = 2000;
//   double f = s.HiddenDensity(/*step=*/500);   // fraction of nonzeros kept at step 500
//   double lr = s.LearningRate(/*step=*/500);
#ifndef CIRCUIT_CORE_SCHEDULE_H_
#define CIRCUIT_CORE_SCHEDULE_H_

#include <cstdint>

#include "absl/status/status.h"

namespace circuit {

// Steps are counted from 0 to steps - 1; the value at step t applies to the
// update made at step t. Fractions of training (anneal_*, warmup) are of `steps`.
struct TrainSchedule {
  int64_t steps = 1;          // total optimiser steps
  double lr = 0.01;           // base (peak) learning rate
  double warmup = 0.01;       // linear warmup over this fraction of the steps
  double anneal_start = 0.01; // L0 annealing starts (dense before this point)
  double anneal_end = 0.5;    // ... and reaches the target density here
  double density = 1.0 / 16;  // final fraction of nonzeros in hidden matrices
  double embed_density = 0.25;  // final fraction in wte / lm_head
  bool dense = false;         // no weight sparsity: densities stay 1, no sqrt factor

  // Checks ranges (0 < density <= 1, 0 <= anneal_start <= anneal_end <= 1, ...);
  // the message names the field and value.
  absl::Status Validate() const;

  // How far annealing has gone at `step`: 0 before anneal_start, 1 from
  // anneal_end on, linear in between.
  double AnnealProgress(int64_t step) const;
  // Fraction of nonzeros kept in hidden matrices at `step`: 1 -> density.
  double HiddenDensity(int64_t step) const;
  // Fraction kept in the embedding/unembedding, annealed in lock-step: 1 -> embed_density.
  double EmbedDensity(int64_t step) const;
  // Warmup-then-linear-decay factor in (0, 1]: (t+1)/W during the W warmup
  // steps, then (steps - t) / (steps - W), reaching 1/(steps - W) at the last step.
  double BaseFactor(int64_t step) const;
  // lr * BaseFactor(t) * sqrt(density / HiddenDensity(t)) (the sparsity factor is 1 when dense).
  double LearningRate(int64_t step) const;

  int64_t WarmupSteps() const;  // floor(warmup * steps)
};

}  // namespace circuit

#endif  // CIRCUIT_CORE_SCHEDULE_H_
