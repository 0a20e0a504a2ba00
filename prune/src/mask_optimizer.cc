// The mask-training loop.
#include "circuit/prune/mask_optimizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "circuit/core/runtime.h"
#include "circuit/core/status.h"
#include "circuit/core/task_eval.h"

namespace circuit::prune {
namespace {

using Clock = std::chrono::steady_clock;
// Pairs per part of a step's batch, on average: the parts run on the threads
// side by side (docs/performance.md, "Mask steps in parts, constant
// sublayers skipped").
constexpr int64_t kPartPairs = 8;

double Sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

// Splits pairs of the given token lengths, in order, into `parts` runs of at
// least one pair whose largest padded size (pairs × longest) is smallest;
// returns the runs' first indices and the end. A part runs in the time of its
// padded size, and a step in the time of its largest part.
std::vector<int64_t> BalancedParts(const std::vector<int64_t>& length, int64_t parts) {
  const int64_t n = static_cast<int64_t>(length.size());
  auto padded = [&](int64_t begin, int64_t end) {
    return (end - begin) * *std::max_element(length.begin() + begin, length.begin() + end);
  };
  // best[p][j]: the smallest largest part of the first j pairs in p parts.
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  std::vector<std::vector<int64_t>> best(parts + 1, std::vector<int64_t>(n + 1, kNone)),
      cut(parts + 1, std::vector<int64_t>(n + 1, 0));
  best[0][0] = 0;
  for (int64_t p = 1; p <= parts; ++p) {
    for (int64_t j = p; j <= n; ++j) {
      for (int64_t i = p - 1; i < j; ++i) {
        if (best[p - 1][i] == kNone) continue;
        const int64_t cost = std::max(best[p - 1][i], padded(i, j));
        if (cost < best[p][j]) best[p][j] = cost, cut[p][j] = i;
      }
    }
  }
  std::vector<int64_t> bounds(parts + 1, n);
  for (int64_t p = parts, j = n; p > 0; --p) j = bounds[p - 1] = cut[p][j];
  return bounds;
}

// Linear warmup over the first `warmup` steps, then linear decay to 0 at `steps`.
double LrAt(const MaskTrainOptions& o, int64_t step, int64_t steps) {
  const int64_t warmup = static_cast<int64_t>(std::floor(o.warmup_frac * steps));
  if (step < warmup) return o.lr * (step + 1) / static_cast<double>(warmup);
  const int64_t rest = steps - warmup;
  return o.lr * (1.0 - static_cast<double>(step - warmup) / static_cast<double>(rest));
}

// Tokens of the longer prompt of pair p (examples 2p and 2p + 1).
size_t PairLength(const std::vector<TaskExample>& examples, int64_t p) {
  return std::max(examples[2 * p].tokens.size(), examples[2 * p + 1].tokens.size());
}

}  // namespace

absl::StatusOr<Penalty> ParsePenalty(const std::string& name) {
  if (name == "log") return Penalty::kLog;
  if (name == "linear") return Penalty::kLinear;
  return absl::InvalidArgumentError(
      absl::StrCat("penalty: unknown value '", name, "' (expected log or linear)"));
}

std::string PenaltyName(Penalty penalty) { return penalty == Penalty::kLog ? "log" : "linear"; }

double DefaultPenaltyCoef(Penalty penalty) { return penalty == Penalty::kLog ? 0.0048 : 1e-4; }

absl::StatusOr<MaskPreset> ParseMaskPreset(const std::string& name) {
  if (name == "auto") return MaskPreset::kAuto;
  if (name == "small") return MaskPreset::kSmall;
  if (name == "paper") return MaskPreset::kPaper;
  return absl::InvalidArgumentError(
      absl::StrCat("preset: unknown value '", name, "' (expected auto, small or paper)"));
}

std::string MaskPresetName(MaskPreset preset) {
  switch (preset) {
    case MaskPreset::kAuto: return "auto";
    case MaskPreset::kSmall: return "small";
    case MaskPreset::kPaper: return "paper";
  }
  return "auto";
}

MaskPreset ResolveMaskPreset(MaskPreset preset, int64_t total_nodes) {
  if (preset != MaskPreset::kAuto) return preset;
  return total_nodes < kSmallModelNodes ? MaskPreset::kSmall : MaskPreset::kPaper;
}

MaskTrainOptions MaskPresetOptions(MaskPreset preset, int64_t total_nodes) {
  MaskTrainOptions o;
  if (ResolveMaskPreset(preset, total_nodes) == MaskPreset::kSmall) {
    o.penalty = Penalty::kLinear;
    o.penalty_coef = 1e-3;
    o.lr = 0.02;
    o.batch = 16;
    o.epochs = 4;
  }
  return o;
}

absl::Status ValidateMaskTrainOptions(const MaskTrainOptions& o) {
  auto bad = [](const char* field, double value, const char* want) {
    return absl::InvalidArgumentError(
        absl::StrCat("mask options: ", field, " = ", value, " (", want, ")"));
  };
  if (!(o.lr > 0)) return bad("lr", o.lr, "must be > 0");
  if (!(o.weight_decay >= 0)) return bad("weight_decay", o.weight_decay, "must be >= 0");
  if (!(o.beta1 >= 0 && o.beta1 < 1)) return bad("beta1", o.beta1, "must be in [0, 1)");
  if (!(o.inv_beta2 > 0 && o.inv_beta2 <= 1)) return bad("inv_beta2", o.inv_beta2, "must be in (0, 1]");
  if (!(o.heaviside_temp > 0)) return bad("heaviside_temp", o.heaviside_temp, "must be > 0");
  if (!(o.init.scale >= 0)) return bad("init_scale", o.init.scale, "must be >= 0");
  if (!std::isfinite(o.init.bias)) return bad("init_bias", o.init.bias, "must be finite");
  if (!std::isfinite(o.penalty_coef)) return bad("penalty_coef", o.penalty_coef, "must be finite");
  if (o.epochs < 1) return bad("epochs", o.epochs, "must be >= 1");
  if (o.batch < 1) return bad("batch", o.batch, "must be >= 1");
  if (!(o.warmup_frac >= 0 && o.warmup_frac < 1)) return bad("warmup_frac", o.warmup_frac, "must be in [0, 1)");
  if (!(o.grad_clip_rms >= 0)) return bad("grad_clip_rms", o.grad_clip_rms, "must be >= 0");
  return absl::OkStatus();
}

absl::StatusOr<MaskTrainResult> TrainMasks(const TapModel& model, const NodeIndex& index,
                                           const MaskUnits& units,
                                           const std::vector<torch::Tensor>& means,
                                           const std::vector<TaskExample>& train,
                                           const MaskTrainOptions& options, uint64_t seed,
                                           const ProgressFn& progress) {
  CIRCUIT_RETURN_IF_ERROR(ValidateMaskTrainOptions(options));
  const int64_t n_pairs = static_cast<int64_t>(train.size()) / 2;
  if (n_pairs < 1) return absl::InvalidArgumentError("mask training: the train split has no pairs");
  const double coef =
      options.penalty_coef < 0 ? DefaultPenaltyCoef(options.penalty) : options.penalty_coef;
  const int64_t steps_per_epoch = (n_pairs + options.batch - 1) / options.batch;
  const int64_t steps = steps_per_epoch * options.epochs;

  NodeMask mask(index, units, options.init, seed, model.device());
  torch::optim::AdamW adamw({mask.tau()}, torch::optim::AdamWOptions(options.lr)
                                              .betas({options.beta1, 1.0 - options.inv_beta2})
                                              .weight_decay(options.weight_decay));
  auto order_gen = at::detail::createCPUGenerator(seed ^ 0x9e3779b97f4a7c15ULL);
  const double clip = options.grad_clip_rms;
  const double sqrt_units = std::sqrt(static_cast<double>(units.n_units));

  MaskTrainResult result;
  const Clock::time_point start = Clock::now();
  double epoch_loss = 0.0;
  int64_t step = 0;
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    // A random order, then pairs sorted by length within pools of 8 batches and
    // the batches shuffled: batches of similar lengths waste little compute on
    // padding (prompts vary 2-3x in length), and the order stays random.
    torch::Tensor order = torch::randperm(n_pairs, order_gen, torch::kInt64);  // (n_pairs)
    std::vector<int64_t> pairs(order.data_ptr<int64_t>(), order.data_ptr<int64_t>() + n_pairs);
    const int64_t pool = 8 * static_cast<int64_t>(options.batch);
    for (int64_t start = 0; start < n_pairs; start += pool) {
      std::stable_sort(pairs.begin() + start, pairs.begin() + std::min(n_pairs, start + pool),
                       [&](int64_t a, int64_t b) { return PairLength(train, a) < PairLength(train, b); });
    }
    torch::Tensor batch_order = torch::randperm(steps_per_epoch, order_gen, torch::kInt64);
    epoch_loss = 0.0;
    for (int64_t s = 0; s < steps_per_epoch; ++s, ++step) {
      const int64_t b = batch_order[s].item<int64_t>();
      std::vector<TaskExample> batch_examples;
      std::vector<int64_t> lengths;  // per pair, its longer prompt's tokens
      for (int64_t i = b * options.batch; i < std::min(n_pairs, (b + 1) * options.batch); ++i) {
        batch_examples.push_back(train[2 * pairs[i]]);      // the prompt
        batch_examples.push_back(train[2 * pairs[i] + 1]);  // its twin
        lengths.push_back(static_cast<int64_t>(PairLength(train, pairs[i])));
      }
      for (auto& group : adamw.param_groups()) {
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(LrAt(options, step, steps));
      }

      // The batch in runs of pairs of about equal padded size (one per
      // kPartPairs pairs, BalancedParts), each part's forward and
      // backward to a detached copy of the gates on its own thread (ParallelFor),
      // the parts' gradients summed in part order, then one backward from the
      // gates to tau (with the penalty's). The parts do not depend on the
      // thread count, so neither do the masks.
      Clock::time_point t = Clock::now();
      torch::Tensor gates = mask.NodeGates(options.heaviside_temp);  // (N), graph to tau
      const torch::Tensor leaf = gates.detach().requires_grad_(true);
      std::vector<torch::Tensor> site_gates = SplitBySite(leaf, index);
      Taps taps(index.layout());
      std::vector<torch::Tensor> values;
      AddGates(&taps, &site_gates, &means, options.ablation, &values);
      const int64_t n_prompts = static_cast<int64_t>(batch_examples.size());
      const int64_t n_pairs_here = static_cast<int64_t>(lengths.size());
      const int64_t n_parts = (n_pairs_here + kPartPairs - 1) / kPartPairs;
      const std::vector<int64_t> bounds = BalancedParts(lengths, n_parts);
      std::vector<torch::Tensor> part_grads(n_parts), part_losses(n_parts);
      std::vector<double> part_forward(n_parts), part_backward(n_parts);
      ParallelFor(n_parts, [&](int64_t i) {
        const Clock::time_point t0 = Clock::now();
        const int64_t begin = 2 * bounds[i], end = 2 * bounds[i + 1];
        const TaskBatch batch = MakeTaskBatch(
            std::vector<TaskExample>(batch_examples.begin() + begin, batch_examples.begin() + end),
            model.device());
        const torch::Tensor logits = BatchAnswerLogits(
            model, batch, TwinSplit(model, batch, options.ablation), options.ablation, &taps);  // (b, V)
        // Weighted so that the parts' losses sum to the batch's mean.
        const torch::Tensor loss =
            TaskLoss(logits, batch) * (static_cast<double>(end - begin) / n_prompts);
        part_forward[i] = SecondsSince(t0);
        const Clock::time_point t1 = Clock::now();
        part_grads[i] = torch::autograd::grad({loss}, {leaf})[0];
        part_losses[i] = loss.detach();
        part_backward[i] = SecondsSince(t1);
      });
      torch::Tensor task_grad = part_grads[0], task_loss = part_losses[0];
      for (int64_t i = 1; i < n_parts; ++i) {
        task_grad = task_grad + part_grads[i];
        task_loss = task_loss + part_losses[i];
      }
      torch::Tensor k = gates.sum();
      torch::Tensor penalty = options.penalty == Penalty::kLog ? coef * torch::log1p(k) : coef * k;
      adamw.zero_grad();
      torch::autograd::backward({gates, penalty}, {task_grad, torch::ones_like(penalty)});
      // The parts' wall time split between forward and backward in proportion
      // to their summed seconds.
      const double wall = SecondsSince(t), fwd = Sum(part_forward), bwd = Sum(part_backward);
      result.forward_seconds += fwd + bwd > 0 ? wall * fwd / (fwd + bwd) : 0.0;
      result.backward_seconds += fwd + bwd > 0 ? wall * bwd / (fwd + bwd) : 0.0;

      if (clip > 0) {
        torch::NoGradGuard no_grad;
        torch::Tensor& g = mask.tau().mutable_grad();
        const double rms = g.norm().item<double>() / sqrt_units;
        if (rms > clip) g.mul_(clip / rms);
      }
      adamw.step();
      mask.Clamp();
      epoch_loss += task_loss.item<double>() / steps_per_epoch;
      if (progress) progress("masks", static_cast<double>(step + 1) / steps);
    }
  }
  result.steps = step;
  result.seconds = SecondsSince(start);
  result.final_task_loss = epoch_loss;
  result.tau = mask.tau().detach().to(torch::kCPU).clone();
  result.final_kept = mask.NodeKeep().sum().item<double>();
  return result;
}

}  // namespace circuit::prune
