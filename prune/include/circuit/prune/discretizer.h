// Discretization (PAPER.md §4.8): rank mask units by score, then find the
// smallest k whose circuit (top-k units kept, the rest ablated) has validation
// task loss <= target, by a coarse log-spaced sweep followed by bisection. The
// evaluated points form the loss-vs-k curve. With a confidence above 0.5 the
// target must hold for the loss's upper confidence bound (mean + z standard
// errors), so that the circuit also meets it on held-out prompts.
//
//   std::vector<int64_t> order = RankUnits(tau);                 // best first
//   auto loss_at = [&](int64_t k) {
//     TaskScore s = eval.Score(KeepTop(order, k));
//     return LossEstimate{s.loss, s.loss_std_error};
//   };
//   DiscretizeResult r = Discretize(loss_at, order.size(), /*hint=*/n_active, {});
//   // r.units, r.loss, r.met_target, r.curve_units / r.curve_loss
#ifndef CIRCUIT_PRUNE_DISCRETIZER_H_
#define CIRCUIT_PRUNE_DISCRETIZER_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"

namespace circuit::prune {

// Unit indices sorted by descending score; ties keep the lower index first. scores: (U).
std::vector<int64_t> RankUnits(const torch::Tensor& scores);
// The same with ties, and near-ties within TieTolerance(scores), broken by a
// second signal (descending; e.g. attribution scores under trained masks), then
// by index. second: (U), or undefined for RankUnits(scores).
std::vector<int64_t> RankUnits(const torch::Tensor& scores, const torch::Tensor& second);

// Scores closer than this count as tied: 1e-3 of their range (max - min), and
// never less than 1e-9 (so that exact ties always do).
double TieTolerance(const torch::Tensor& scores);

// The block of (near-)tied units that a cut after the top k of `order` passes
// through: units whose score is within TieTolerance of the last kept unit's.
// Empty (tied_kept == 0) when no left-out unit is tied with a kept one. Counts
// are weighted by weight[unit] (e.g. its nodes; empty: 1 each).
struct TieAtCut {
  int64_t tied_kept = 0;  // kept units in the block
  int64_t tied_left = 0;  // left-out units in the block
  double score = 0.0;     // the last kept unit's score
  double tolerance = 0.0;
};
TieAtCut FindTieAtCut(const torch::Tensor& scores, const std::vector<int64_t>& order, int64_t k,
                      const std::vector<int64_t>& weight = {});

// The z of a one-sided normal confidence bound: P(Z <= z) = confidence, for
// confidence in [0.5, 1) (0.5 -> 0, 0.9 -> 1.2816, 0.95 -> 1.6449).
double ConfidenceZ(double confidence);
// OK for a confidence in [0.5, 1), else an error naming the value.
absl::Status ValidateConfidence(double confidence);

// A loss measured on a sample of prompts: its mean and the standard error of the mean.
struct LossEstimate {
  double loss = 0.0;
  double std_error = 0.0;
};

struct DiscretizeOptions {
  double target_loss = 0.15;  // per prompt, nats
  double z = 0.0;             // k meets the target when loss + z * std_error <= target_loss
  int sweep_points = 8;       // log-spaced k in [1, upper] evaluated before bisecting
};

struct DiscretizeResult {
  int64_t units = 0;        // the smallest k found meeting the target (all units when never met)
  double loss = 0.0;        // loss at `units`
  double loss_bound = 0.0;  // loss + z * std_error at `units`, what met the target
  bool met_target = false;  // false: even the largest k tried stays above the target
  std::vector<int64_t> curve_units;  // every evaluated k, ascending ...
  std::vector<double> curve_loss;    // ... and its loss
  int64_t evaluations = 0;
};

// loss_at(k): task loss with the top-k units kept, k in [0, n_units]; assumed
// roughly non-increasing in k (the result is the smallest evaluated k meeting
// the target either way). `hint` is the first upper bound tried (e.g. the units
// still active after training); when its loss exceeds the target, n_units is
// tried. Each k is evaluated at most once.
DiscretizeResult Discretize(const std::function<LossEstimate(int64_t)>& loss_at, int64_t n_units,
                            int64_t hint, const DiscretizeOptions& options);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_DISCRETIZER_H_
