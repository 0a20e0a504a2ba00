// The BDH training loop (circuit/core/bdh_train.h). Batches come from the GPT
// trainer's window samplers, so both architectures see the same tokens for the
// same seed and step.
#include "circuit/core/bdh_train.h"

#include <chrono>
#include <cmath>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "circuit/core/bdh.h"
#include "circuit/core/bdh_checkpoint.h"
#include "circuit/core/optimizer.h"
#include "circuit/core/runtime.h"
#include "circuit/core/status.h"
#include "train/train_corpus.h"

namespace circuit {
namespace {

using Clock = std::chrono::steady_clock;

// The learning rate of step `step` (0-based): constant, then the cooldown's
// linear decay, which reaches 0 after the last step.
double LrAt(const BdhTrainOptions& o, int64_t step) {
  const double decay_steps = o.cooldown * static_cast<double>(o.steps);
  const double left = static_cast<double>(o.steps - step);
  return decay_steps > 0 && left < decay_steps ? o.lr * left / decay_steps : o.lr;
}

absl::Status CheckOptions(const BdhTrainOptions& o) {
  if (o.out.empty()) return absl::InvalidArgumentError("no output path (out) given");
  if (o.corpus_dir.empty()) return absl::InvalidArgumentError("no corpus directory given");
  CIRCUIT_RETURN_IF_ERROR(o.config.Validate());
  if (o.steps < 1)
    return absl::InvalidArgumentError(absl::StrCat("steps = ", o.steps, " must be >= 1"));
  if (o.batch < 1)
    return absl::InvalidArgumentError(absl::StrCat("batch = ", o.batch, " must be >= 1"));
  if (o.val_windows < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("val_windows = ", o.val_windows, " must be >= 1"));
  }
  if (!(o.lr > 0) || !std::isfinite(o.lr)) {
    return absl::InvalidArgumentError(absl::StrCat("lr = ", o.lr, " must be > 0"));
  }
  if (!(o.cooldown >= 0 && o.cooldown <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cooldown = ", o.cooldown, " must be a fraction of the steps in [0, 1]"));
  }
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight_decay = ", o.weight_decay, " must be >= 0"));
  }
  if (o.eval_every < 0 || o.save_every < 0) {
    return absl::InvalidArgumentError("eval_every and save_every must be >= 0");
  }
  return absl::OkStatus();
}

double ValidationLoss(const BdhModel& model, const torch::Tensor& windows, int batch) {
  torch::NoGradGuard no_grad;
  const int64_t n = windows.size(0);
  double sum = 0;
  for (int64_t i = 0; i < n; i += batch) {
    torch::Tensor chunk = windows.slice(0, i, std::min(n, i + batch));
    sum += model.Loss(chunk).item<double>() * static_cast<double>(chunk.size(0));
  }
  return sum / static_cast<double>(n);
}

// The corpus checks need only the vocabulary and the window length.
ModelConfig WindowConfig(const BdhConfig& c) {
  ModelConfig window_config;
  window_config.vocab_size = c.vocab_size;
  window_config.n_ctx = c.n_ctx;
  return window_config;
}

}  // namespace

absl::StatusOr<double> BdhValidationLoss(const BdhModel& model, const std::string& corpus_dir,
                                         int windows, int batch) {
  if (windows < 1 || batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("validation windows (", windows, ") and batch (", batch, ") must be >= 1"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(
      internal::TrainCorpus corpus,
      internal::OpenTrainCorpus(corpus_dir, /*tokenizer_dir=*/"", WindowConfig(model.config())));
  return ValidationLoss(model, corpus.val->FixedWindows(windows).to(model.device()), batch);
}

absl::StatusOr<BdhTrainResult> TrainBdh(const BdhTrainOptions& given) {
  CIRCUIT_RETURN_IF_ERROR(CheckOptions(given));
  KeepFreedMemory();
  BdhTrainOptions o = given;  // with init_model, its config
  try {
    std::optional<BdhModelFile> init;
    std::string init_from;
    if (!given.init_model.empty()) {
      CIRCUIT_ASSIGN_OR_RETURN(init, LoadBdhModel(given.init_model, given.device));
      o.config = init->model.config();
      init_from = internal::InitFromText(given.init_model, init->digest, init->training);
    }
    CIRCUIT_ASSIGN_OR_RETURN(
        internal::TrainCorpus corpus,
        internal::OpenTrainCorpus(o.corpus_dir, o.tokenizer_dir, WindowConfig(o.config)));
    if (init) {
      CIRCUIT_RETURN_IF_ERROR(internal::RequireCorpusTokenizer(corpus, init->tokenizer,
                                                               given.init_model, o.corpus_dir));
    }
    CIRCUIT_ASSIGN_OR_RETURN(BdhModel model, init ? absl::StatusOr<BdhModel>(std::move(init->model))
                                                  : BdhModel::Create(o.config, o.seed, o.device));
    torch::manual_seed(o.seed);  // dropout masks
    std::vector<torch::Tensor> params;
    for (NamedTensor& p : model.mutable_parameters()) {
      p.tensor.requires_grad_(true);
      params.push_back(p.tensor);
    }
    Adam adam(params, AdamOptions{o.beta1, o.beta2, o.eps});
    const torch::Tensor val = corpus.val->FixedWindows(o.val_windows).to(o.device);

    TrainingInfo info;
    info.seed = o.seed;
    info.dense = true;
    info.corpus_digest = corpus.digest;
    info.command = o.command;
    info.init_from = init_from;
    info.hyperparameters = {{"lr", o.lr},
                            {"cooldown", o.cooldown},
                            {"steps", static_cast<double>(o.steps)},
                            {"batch", o.batch},
                            {"weight_decay", o.weight_decay},
                            {"beta1", o.beta1},
                            {"beta2", o.beta2},
                            {"eps", o.eps},
                            {"dropout", o.config.dropout},
                            {"n_ctx", o.config.n_ctx},
                            {"val_windows", o.val_windows}};
    const Clock::time_point start = Clock::now();
    auto save = [&](int64_t step) -> absl::Status {
      for (const NamedTensor& p : model.parameters()) {
        if (!torch::isfinite(p.tensor).all().item<bool>()) {
          return absl::AbortedError(absl::StrCat("step ", step, ": ", p.name,
                                                 " has NaN or infinite values (diverged; try a "
                                                 "smaller --lr)"));
        }
      }
      info.steps = step;
      info.tokens = step * o.batch * o.config.n_ctx;
      info.seconds = SecondsSince(start);
      info.final_loss = RecentMeanLoss(info.curve_loss);
      info.final_val_loss = info.val_loss.empty() ? 0.0 : info.val_loss.back();
      return SaveBdhModel(o.out, model, *corpus.tokenizer, info);
    };

    BdhTrainResult result;
    result.model_path = o.out;
    result.initial_val_loss = ValidationLoss(model, val, o.batch);
    const int64_t tokens_per_step = int64_t{o.batch} * o.config.n_ctx;
    double step_seconds = 0;
    int64_t step = 0;
    while (step < o.steps) {
      if (o.stop != nullptr && o.stop->load()) {
        result.interrupted = true;
        break;
      }
      const Clock::time_point t0 = Clock::now();
      torch::Tensor batch = corpus.train->RandomBatch(o.seed, step, o.batch).to(o.device);
      torch::Tensor loss = model.Loss(batch, /*train=*/true);
      const double loss_value = loss.item<double>();
      if (!std::isfinite(loss_value)) {
        return absl::AbortedError(absl::StrCat("step ", step + 1, ": training loss is ", loss_value,
                                               " (diverged; try a smaller --lr)"));
      }
      for (torch::Tensor& p : params) p.mutable_grad() = torch::Tensor();
      loss.backward();
      const double lr = LrAt(o, step);
      adam.Step(lr);
      DecayWeights(params, o.weight_decay * lr);
      step_seconds += SecondsSince(t0);
      ++step;
      info.curve_step.push_back(step);
      info.curve_loss.push_back(loss_value);

      TrainProgress p;
      p.step = step;
      p.steps = o.steps;
      p.loss = loss_value;
      p.lr = lr;
      p.density = p.embed_density = std::nan("");  // dense weights: no density to report
      if ((o.eval_every > 0 && step % o.eval_every == 0) || step == o.steps) {
        p.val_loss = ValidationLoss(model, val, o.batch);
        info.val_step.push_back(step);
        info.val_loss.push_back(p.val_loss);
      }
      if (o.save_every > 0 && step % o.save_every == 0 && step < o.steps) {
        CIRCUIT_RETURN_IF_ERROR(save(step));
        p.saved = true;
      }
      p.elapsed_seconds = SecondsSince(start);
      p.tokens_per_second = static_cast<double>(step * tokens_per_step) / step_seconds;
      p.eta_seconds =
          p.elapsed_seconds / static_cast<double>(step) * static_cast<double>(o.steps - step);
      if (o.on_progress) o.on_progress(p);
    }
    CIRCUIT_RETURN_IF_ERROR(save(step));
    result.steps_done = step;
    result.final_loss = info.final_loss;
    if (!info.val_loss.empty()) result.final_val_loss = info.val_loss.back();
    result.seconds = SecondsSince(start);
    result.tokens_per_second =
        step_seconds > 0 ? static_cast<double>(step * tokens_per_step) / step_seconds : 0;
    return result;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("training failed: ", e.what_without_backtrace()));
  }
}

}  // namespace circuit
