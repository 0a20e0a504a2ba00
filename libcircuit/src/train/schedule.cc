#include "circuit/core/schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace circuit {
namespace {

absl::Status Range(const char* field, double value, double lo, double hi, bool lo_open) {
  const bool ok = (lo_open ? value > lo : value >= lo) && value <= hi && std::isfinite(value);
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, " = ", value, " is outside ",
                                                 lo_open ? "(" : "[", lo, ", ", hi, "]"));
}

}  // namespace

absl::Status TrainSchedule::Validate() const {
  if (steps < 1) return absl::InvalidArgumentError(absl::StrCat("steps = ", steps, " must be >= 1"));
  if (!(lr > 0) || !std::isfinite(lr)) {
    return absl::InvalidArgumentError(absl::StrCat("lr = ", lr, " must be > 0"));
  }
  for (absl::Status s : {Range("warmup", warmup, 0, 1, false),
                         Range("anneal_start", anneal_start, 0, 1, false),
                         Range("anneal_end", anneal_end, 0, 1, false),
                         Range("density", density, 0, 1, true),
                         Range("embed_density", embed_density, 0, 1, true)}) {
    if (!s.ok()) return s;
  }
  if (anneal_end < anneal_start) {
    return absl::InvalidArgumentError(absl::StrCat("anneal_end = ", anneal_end,
                                                   " is before anneal_start = ", anneal_start));
  }
  if (WarmupSteps() >= steps) {
    return absl::InvalidArgumentError(
        absl::StrCat("warmup = ", warmup, " leaves no steps to decay over"));
  }
  return absl::OkStatus();
}

double TrainSchedule::AnnealProgress(int64_t step) const {
  // Positions as fractions of training; a zero-length ramp is a jump at anneal_end.
  const double p = static_cast<double>(step) / static_cast<double>(steps);
  if (p >= anneal_end) return 1.0;
  if (p <= anneal_start) return 0.0;
  return (p - anneal_start) / (anneal_end - anneal_start);
}

double TrainSchedule::HiddenDensity(int64_t step) const {
  if (dense) return 1.0;
  return 1.0 + (density - 1.0) * AnnealProgress(step);
}

double TrainSchedule::EmbedDensity(int64_t step) const {
  if (dense) return 1.0;
  return 1.0 + (embed_density - 1.0) * AnnealProgress(step);
}

int64_t TrainSchedule::WarmupSteps() const {
  return static_cast<int64_t>(std::floor(warmup * static_cast<double>(steps)));
}

double TrainSchedule::BaseFactor(int64_t step) const {
  const int64_t w = WarmupSteps();
  if (step < w) return static_cast<double>(step + 1) / static_cast<double>(w);
  const int64_t decay = std::max<int64_t>(1, steps - w);
  return std::max(0.0, static_cast<double>(steps - step) / static_cast<double>(decay));
}

double TrainSchedule::LearningRate(int64_t step) const {
  const double sparsity_factor = dense ? 1.0 : std::sqrt(density / HiddenDensity(step));
  return lr * BaseFactor(step) * sparsity_factor;
}

}  // namespace circuit
