#include "circuit/prune/settings.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"
#include "circuit/prune/discretizer.h"

namespace circuit::prune {
namespace {

bool Recorded(double v) { return !std::isnan(v); }
bool Recorded(int64_t v) { return v >= 0; }

// Recorded counts come from a file: bound them before anything allocates.
absl::Status CheckCount(const char* name, int64_t v, int64_t max) {
  if (v <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("circuit /extract@", name, ": ", v, " is out of range (at most ", max, ")"));
}
constexpr int64_t kMaxPairs = 1 << 20;
constexpr int64_t kMaxCount = 1 << 24;

}  // namespace

void RecordExtractOptions(const ExtractOptions& o, const LogitCalibration& calibration,
                          ExtractSettings* s) {
  s->penalty_coef =
      o.masks.penalty_coef < 0 ? DefaultPenaltyCoef(o.masks.penalty) : o.masks.penalty_coef;
  s->lr = o.masks.lr;
  s->batch = o.masks.batch;
  s->epochs = o.masks.epochs;
  s->heaviside_temp = o.masks.heaviside_temp;
  s->warmup_frac = o.masks.warmup_frac;
  s->confidence = o.confidence;
  s->search = o.search;
  s->tie_qk = o.tie_qk ? 1 : 0;
  s->calibrate = o.calibrate ? 1 : 0;
  s->calibration_scale = o.calibrate ? calibration.scale : ExtractSettings::kUnset;
  s->calibration_shift = o.calibrate ? calibration.shift : ExtractSettings::kUnset;
}

void RecordTaskOptions(const TaskOptions& t, Circuit* c) {
  c->settings.n_train = t.n_train;
  c->settings.n_validation = t.n_validation;
  c->settings.n_test = t.n_test;
  c->settings.task_seed = static_cast<int64_t>(t.seed);
}

absl::StatusOr<TaskOptions> TaskOptionsFor(const Circuit& c, int n_ctx, int n_train) {
  const ExtractSettings& s = c.settings;
  CIRCUIT_RETURN_IF_ERROR(CheckCount("n_train", s.n_train, kMaxPairs));
  CIRCUIT_RETURN_IF_ERROR(CheckCount("n_validation", s.n_validation, kMaxPairs));
  CIRCUIT_RETURN_IF_ERROR(CheckCount("n_test", s.n_test, kMaxPairs));
  // Unrecorded (or replaced) sizes follow extract's rule (PruningSplits).
  const uint64_t seed = Recorded(s.task_seed) ? static_cast<uint64_t>(s.task_seed) : c.seed;
  if (n_train > 0) return PruningSplits(n_train, n_ctx, seed);
  TaskOptions t = PruningSplits(Recorded(s.n_train) ? static_cast<int>(s.n_train) : TaskOptions().n_train,
                                n_ctx, seed);
  if (Recorded(s.n_validation)) t.n_validation = static_cast<int>(s.n_validation);
  if (Recorded(s.n_test)) t.n_test = static_cast<int>(s.n_test);
  return t;
}

absl::StatusOr<AnyModelFile> LoadCircuitModel(const Circuit& c, const std::string& circuit_path,
                                              const std::string& model_path, torch::Device device) {
  CIRCUIT_ASSIGN_OR_RETURN(AnyModelFile file, LoadAnyModel(model_path, device));
  if (file.digest != c.model_digest) {
    return absl::InvalidArgumentError(absl::StrCat(
        circuit_path, " was extracted from ", c.model_file, " (digest ", c.model_digest, "), not ",
        file.path, " (digest ", file.digest, "); pass --model"));
  }
  return file;
}

absl::StatusOr<ExtractOptions> ExtractOptionsFor(const Circuit& c) {
  const ExtractSettings& s = c.settings;
  ExtractOptions o;
  CIRCUIT_ASSIGN_OR_RETURN(o.method, ParseMethod(c.method));
  CIRCUIT_ASSIGN_OR_RETURN(o.ablation, ParseAblation(c.ablation));
  CIRCUIT_ASSIGN_OR_RETURN(o.masks.penalty, ParsePenalty(c.penalty));
  o.masks.ablation = o.ablation;
  o.seed = c.seed;
  o.target_loss = c.target_loss;
  CIRCUIT_RETURN_IF_ERROR(CheckCount("batch", s.batch, kMaxCount));
  CIRCUIT_RETURN_IF_ERROR(CheckCount("epochs", s.epochs, kMaxCount));
  CIRCUIT_RETURN_IF_ERROR(CheckCount("search", s.search, kMaxCount));
  if (Recorded(s.penalty_coef)) o.masks.penalty_coef = s.penalty_coef;
  if (Recorded(s.lr)) o.masks.lr = s.lr;
  if (Recorded(s.batch)) o.masks.batch = static_cast<int>(s.batch);
  if (Recorded(s.epochs)) o.masks.epochs = static_cast<int>(s.epochs);
  if (Recorded(s.heaviside_temp)) o.masks.heaviside_temp = s.heaviside_temp;
  if (Recorded(s.warmup_frac)) o.masks.warmup_frac = s.warmup_frac;
  if (Recorded(s.confidence)) o.confidence = s.confidence;
  if (Recorded(s.search)) o.search = static_cast<int>(s.search);
  if (Recorded(s.tie_qk)) o.tie_qk = s.tie_qk != 0;
  if (Recorded(s.calibrate)) o.calibrate = s.calibrate != 0;
  CIRCUIT_RETURN_IF_ERROR(ValidateMaskTrainOptions(o.masks));
  CIRCUIT_RETURN_IF_ERROR(ValidateConfidence(o.confidence));
  return o;
}

}  // namespace circuit::prune
