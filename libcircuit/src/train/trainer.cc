// The training loop of PAPER.md §2.2. Everything that decides the next step
// (weights, Adam moments, step; batches are a pure function of seed and step)
// goes into the state file, which is what makes resumes exact.
#include "circuit/core/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/model.h"
#include "circuit/core/runtime.h"
#include "circuit/core/status.h"
#include "train/train_corpus.h"
#include "train/train_data.h"
#include "train/train_state.h"

namespace circuit {
namespace {

using Clock = std::chrono::steady_clock;
using internal::TrainState;

absl::Status CheckOptions(const TrainOptions& o) {
  if (o.out.empty()) return absl::InvalidArgumentError("no output path (out) given");
  if (o.corpus_dir.empty()) return absl::InvalidArgumentError("no corpus directory given");
  if (o.resume) return absl::OkStatus();  // the rest comes from the state file
  CIRCUIT_RETURN_IF_ERROR(o.config.Validate());
  CIRCUIT_RETURN_IF_ERROR(o.schedule.Validate());
  if (o.batch < 1) return absl::InvalidArgumentError(absl::StrCat("batch = ", o.batch, " must be >= 1"));
  if (o.val_windows < 1) {
    return absl::InvalidArgumentError(absl::StrCat("val_windows = ", o.val_windows, " must be >= 1"));
  }
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) {
    return absl::InvalidArgumentError(absl::StrCat("weight_decay = ", o.weight_decay, " must be >= 0"));
  }
  if (o.eval_every < 0 || o.save_every < 0) {
    return absl::InvalidArgumentError("eval_every and save_every must be >= 0");
  }
  if (o.sparsity.min_per_channel < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_per_channel = ", o.sparsity.min_per_channel, " must be >= 0"));
  }
  return absl::OkStatus();
}

// Copies the options a state file stores into `into`, keeping the run-local ones.
TrainOptions WithStoredOptions(const TrainOptions& stored, const TrainOptions& given) {
  TrainOptions o = given;
  o.schedule = stored.schedule;
  o.sparsity = stored.sparsity;
  o.adam = stored.adam;
  o.batch = stored.batch;
  o.weight_decay = stored.weight_decay;
  o.seed = stored.seed;
  o.val_windows = stored.val_windows;
  o.eval_every = stored.eval_every;
  return o;
}

class Trainer {
 public:
  // init_from: TrainingInfo::init_from of the run ("" for a fresh start).
  Trainer(TrainOptions options, Model model, Tokenizer tokenizer, internal::TrainCorpus corpus,
          std::string init_from)
      : o_(std::move(options)),
        model_(std::move(model)),
        tokenizer_(std::move(tokenizer)),
        corpus_(std::move(corpus)),
        init_from_(std::move(init_from)) {}

  absl::Status Setup(const TrainState* resume);
  absl::StatusOr<TrainResult> Run();

 private:
  double Step(int64_t step);  // returns the loss (before the update)
  void Project(int64_t step);
  double ValidationLoss();
  absl::Status Save(bool final_save);
  std::string KeptMessage() const;  // "; the checkpoint of step N is kept in ..." or ""
  TrainingInfo Info() const;
  void Sync() const {
    if (o_.device.is_cuda()) torch::cuda::synchronize();
  }

  TrainOptions o_;
  Model model_;
  Tokenizer tokenizer_;
  internal::TrainCorpus corpus_;
  std::string init_from_;
  std::vector<NamedTensor> trainable_;     // all but final_logits_bias
  std::vector<torch::Tensor> decayed_;     // 2-D, but not the bigram table
  std::vector<std::pair<SparseParameter, torch::Tensor>> sparse_;
  std::optional<Adam> adam_;
  torch::Tensor val_windows_;  // (val_windows, n_ctx + 1)

  int64_t step_ = 0;           // steps completed
  int64_t last_saved_ = 0;     // step of the last resumable checkpoint
  int64_t tokens_ = 0;
  double seconds_before_ = 0;  // wall time of earlier runs (resume)
  Clock::time_point start_;
  std::vector<int64_t> curve_step_, val_step_;
  std::vector<double> curve_loss_, val_loss_;
  TrainTimings t_;
};

absl::Status Trainer::Setup(const TrainState* resume) {
  for (NamedTensor& p : model_.mutable_parameters()) {
    if (p.name == "final_logits_bias") continue;  // a buffer in the release, zero
    p.tensor.requires_grad_(true);
    trainable_.push_back(p);
    if (p.tensor.dim() == 2 && p.name != "bigram_table") decayed_.push_back(p.tensor);
  }
  if (!o_.schedule.dense) {
    for (const SparseParameter& sp : SparsityPlan(model_.config(), o_.sparsity)) {
      sparse_.push_back({sp, model_.Parameter(sp.name)});
    }
  }
  std::vector<torch::Tensor> params;
  for (const NamedTensor& p : trainable_) params.push_back(p.tensor);
  adam_.emplace(std::move(params), o_.adam);
  if (resume != nullptr) {
    std::map<std::string, torch::Tensor> m, v;
    for (const NamedTensor& t : resume->exp_avg) m[t.name] = t.tensor;
    for (const NamedTensor& t : resume->exp_avg_sq) v[t.name] = t.tensor;
    std::vector<torch::Tensor> ms, vs;
    for (const NamedTensor& p : trainable_) {
      if (!m.count(p.name) || !v.count(p.name)) {
        return absl::InvalidArgumentError(
            absl::StrCat(TrainStatePath(o_.out), ": no Adam moments for '", p.name, "'"));
      }
      ms.push_back(m[p.name]);
      vs.push_back(v[p.name]);
    }
    CIRCUIT_RETURN_IF_ERROR(Annotate(adam_->Restore(resume->adam_step, ms, vs), TrainStatePath(o_.out)));
    step_ = resume->step;
    last_saved_ = resume->step;
    tokens_ = resume->tokens;
    seconds_before_ = resume->seconds;
    curve_step_ = resume->curve_step;
    curve_loss_ = resume->curve_loss;
    val_step_ = resume->val_step;
    val_loss_ = resume->val_loss;
  }
  val_windows_ = corpus_.val->FixedWindows(o_.val_windows).to(o_.device);
  return absl::OkStatus();
}

void Trainer::Project(int64_t step) {
  const double hidden = o_.schedule.HiddenDensity(step);
  const double embed = o_.schedule.EmbedDensity(step);
  for (const auto& [sp, w] : sparse_) {
    const double f = sp.group == SparsityGroup::kHidden ? hidden : embed;
    if (f >= 1.0) continue;
    ProjectTopK(w, KeepCount(w.numel(), f), sp.axis, sp.min_per_channel);
  }
}

double Trainer::Step(int64_t step) {
  Clock::time_point t0 = Clock::now();
  torch::Tensor batch =
      corpus_.train->RandomBatch(o_.seed, step, o_.batch).to(o_.device);  // (B, n_ctx + 1)
  t_.data += SecondsSince(t0);

  t0 = Clock::now();
  torch::Tensor loss = model_.Loss(batch);
  const double loss_value = loss.item<double>();
  t_.forward += SecondsSince(t0);
  if (!std::isfinite(loss_value)) return loss_value;

  t0 = Clock::now();
  for (NamedTensor& p : trainable_) p.tensor.mutable_grad() = torch::Tensor();
  loss.backward();
  Sync();
  t_.backward += SecondsSince(t0);

  t0 = Clock::now();
  NormalizeGradients(adam_->params());
  const double lr = o_.schedule.LearningRate(step);
  adam_->Step(lr);
  Sync();
  t_.optimizer += SecondsSince(t0);

  t0 = Clock::now();
  Project(step);
  Sync();
  t_.projection += SecondsSince(t0);

  // Decoupled weight decay after the projection (it keeps zeros zero).
  t0 = Clock::now();
  DecayWeights(decayed_, o_.weight_decay * lr);
  Sync();
  t_.optimizer += SecondsSince(t0);
  return loss_value;
}

double Trainer::ValidationLoss() {
  torch::NoGradGuard no_grad;
  const int64_t n = val_windows_.size(0);
  double sum = 0;
  for (int64_t i = 0; i < n; i += o_.batch) {
    torch::Tensor chunk = val_windows_.slice(0, i, std::min(n, i + o_.batch));
    sum += model_.Loss(chunk).item<double>() * static_cast<double>(chunk.size(0));
  }
  return sum / static_cast<double>(n);
}

TrainingInfo Trainer::Info() const {
  TrainingInfo info;
  info.steps = step_;
  info.tokens = tokens_;
  info.seed = o_.seed;
  info.dense = o_.schedule.dense;
  info.final_loss = RecentMeanLoss(curve_loss_);
  info.final_val_loss = val_loss_.empty() ? 0.0 : val_loss_.back();
  info.seconds = seconds_before_ + SecondsSince(start_);
  info.corpus_digest = corpus_.digest;
  info.command = o_.command;
  info.init_from = init_from_;
  const TrainSchedule& s = o_.schedule;
  info.hyperparameters = {
      {"lr", s.lr}, {"steps", static_cast<double>(s.steps)}, {"warmup", s.warmup},
      {"anneal_start", s.anneal_start}, {"anneal_end", s.anneal_end},
      {"density", s.dense ? 1.0 : s.density}, {"embed_density", s.dense ? 1.0 : s.embed_density},
      {"batch", o_.batch}, {"n_ctx", model_.config().n_ctx}, {"weight_decay", o_.weight_decay},
      {"beta1", o_.adam.beta1}, {"beta2", o_.adam.beta2}, {"eps", o_.adam.eps},
      {"min_per_channel", o_.sparsity.min_per_channel},
      {"sparsify_biases", o_.sparsity.sparsify_biases ? 1.0 : 0.0},
      {"sparsify_wpe", o_.sparsity.sparsify_wpe ? 1.0 : 0.0},
      {"val_windows", o_.val_windows}};
  info.curve_step = curve_step_;
  info.curve_loss = curve_loss_;
  info.val_step = val_step_;
  info.val_loss = val_loss_;
  return info;
}

std::string Trainer::KeptMessage() const {
  if (last_saved_ == 0) return "";
  return absl::StrCat("; the checkpoint of step ", last_saved_, " is kept in ", o_.out,
                      " (resume with --resume)");
}

absl::Status Trainer::Save(bool final_save) {
  Clock::time_point t0 = Clock::now();
  const std::string state_path = TrainStatePath(o_.out);
  // Never overwrite a good checkpoint with a diverged model.
  for (const NamedTensor& p : model_.parameters()) {
    if (!torch::isfinite(p.tensor).all().item<bool>()) {
      return absl::AbortedError(absl::StrCat("step ", step_, ": ", p.name,
                                             " has NaN or infinite values (diverged; try a "
                                             "smaller --lr)", KeptMessage()));
    }
  }
  if (!final_save) {
    TrainState s;
    s.step = step_;
    s.init_from = init_from_;
    s.tokens = tokens_;
    s.seconds = seconds_before_ + SecondsSince(start_);
    s.options = o_;
    s.corpus_digest = corpus_.digest;
    s.weights = model_.parameters();
    s.adam_step = adam_->step();
    for (size_t i = 0; i < trainable_.size(); ++i) {
      s.exp_avg.push_back({trainable_[i].name, adam_->exp_avg()[i]});
      s.exp_avg_sq.push_back({trainable_[i].name, adam_->exp_avg_sq()[i]});
    }
    s.curve_step = curve_step_;
    s.curve_loss = curve_loss_;
    s.val_step = val_step_;
    s.val_loss = val_loss_;
    CIRCUIT_RETURN_IF_ERROR(internal::SaveTrainState(state_path, s));
    last_saved_ = step_;
  }
  CIRCUIT_RETURN_IF_ERROR(SaveModel(o_.out, model_, tokenizer_, Info()));
  if (final_save) std::remove(state_path.c_str());  // finished: nothing left to resume
  t_.checkpoint += SecondsSince(t0);
  return absl::OkStatus();
}

absl::StatusOr<TrainResult> Trainer::Run() {
  start_ = Clock::now();
  TrainResult result;
  result.start_step = step_;
  result.model_path = o_.out;
  const int64_t steps = o_.schedule.steps;
  const int64_t tokens_per_step = static_cast<int64_t>(o_.batch) * model_.config().n_ctx;
  double step_seconds = 0;  // time inside Step(), for throughput and ETA
  int64_t steps_this_run = 0;

  while (step_ < steps) {
    if ((o_.stop != nullptr && o_.stop->load()) || (o_.stop_after > 0 && step_ >= o_.stop_after)) {
      CIRCUIT_RETURN_IF_ERROR(Save(/*final_save=*/false));
      result.interrupted = true;
      break;
    }
    Clock::time_point t0 = Clock::now();
    const double loss = Step(step_);
    if (!std::isfinite(loss)) {
      return absl::AbortedError(absl::StrCat("step ", step_ + 1, ": training loss is ", loss,
                                             " (diverged; try a smaller --lr)", KeptMessage()));
    }
    step_seconds += SecondsSince(t0);
    ++steps_this_run;
    const int64_t step = step_++;
    tokens_ += tokens_per_step;
    curve_step_.push_back(step_);
    curve_loss_.push_back(loss);

    TrainProgress p;
    p.step = step_;
    p.steps = steps;
    p.loss = loss;
    p.lr = o_.schedule.LearningRate(step);
    p.density = o_.schedule.HiddenDensity(step);
    p.embed_density = o_.schedule.EmbedDensity(step);
    if ((o_.eval_every > 0 && step_ % o_.eval_every == 0) || step_ == steps) {
      Clock::time_point te = Clock::now();
      p.val_loss = ValidationLoss();
      t_.eval += SecondsSince(te);
      val_step_.push_back(step_);
      val_loss_.push_back(p.val_loss);
    }
    if (o_.save_every > 0 && step_ % o_.save_every == 0 && step_ < steps) {
      CIRCUIT_RETURN_IF_ERROR(Save(/*final_save=*/false));
      p.saved = true;
    }
    p.elapsed_seconds = SecondsSince(start_);
    p.tokens_per_second = static_cast<double>(steps_this_run * tokens_per_step) / step_seconds;
    p.eta_seconds = p.elapsed_seconds / static_cast<double>(steps_this_run) *
                    static_cast<double>(steps - step_);
    if (o_.on_progress) o_.on_progress(p);
  }
  if (step_ == steps) CIRCUIT_RETURN_IF_ERROR(Save(/*final_save=*/true));

  const TrainingInfo info = Info();
  result.steps_done = step_;
  result.final_loss = info.final_loss;
  if (!val_loss_.empty()) result.final_val_loss = val_loss_.back();
  result.seconds = SecondsSince(start_);
  result.tokens_per_second =
      step_seconds > 0 ? static_cast<double>(steps_this_run * tokens_per_step) / step_seconds : 0;
  result.timings = t_;
  result.density = ParameterDensity(model_);
  result.state_path = step_ < steps ? TrainStatePath(o_.out) : "";
  return result;
}

}  // namespace

std::string TrainStatePath(const std::string& out) { return out + ".state"; }

absl::StatusOr<TrainResult> Train(const TrainOptions& given) {
  CIRCUIT_RETURN_IF_ERROR(CheckOptions(given));
  KeepFreedMemory();
  try {
    torch::Device device = given.device;
    if (!given.resume) {
      // A fresh model, or with init_model an existing one (a longer training): its
      // architecture and weights, and a tokenizer that must be the corpus's.
      TrainOptions o = given;
      std::optional<ModelFile> init;
      std::string init_from;
      if (!given.init_model.empty()) {
        CIRCUIT_ASSIGN_OR_RETURN(init, LoadModel(given.init_model, device));
        o.config = init->model.config();
        init_from = internal::InitFromText(given.init_model, init->digest, init->training);
      }
      CIRCUIT_ASSIGN_OR_RETURN(internal::TrainCorpus corpus,
                               internal::OpenTrainCorpus(o.corpus_dir, o.tokenizer_dir, o.config));
      if (init) {
        CIRCUIT_RETURN_IF_ERROR(internal::RequireCorpusTokenizer(corpus, init->tokenizer,
                                                                 given.init_model, o.corpus_dir));
      }
      absl::StatusOr<Model> model =
          init ? absl::StatusOr<Model>(std::move(init->model)) : Model::Create(o.config, o.seed, device);
      if (!model.ok()) return model.status();
      Tokenizer tokenizer = *corpus.tokenizer;
      Trainer trainer(o, *std::move(model), std::move(tokenizer), std::move(corpus), init_from);
      CIRCUIT_RETURN_IF_ERROR(trainer.Setup(nullptr));
      return trainer.Run();
    }
    // Resume: the architecture and tokenizer from the model file, everything
    // else from the state file, which must match the corpus.
    const std::string state_path = TrainStatePath(given.out);
    CIRCUIT_ASSIGN_OR_RETURN(ModelFile file, LoadModel(given.out));
    absl::StatusOr<TrainState> state = internal::LoadTrainState(state_path);
    if (!state.ok()) {
      if (absl::IsNotFound(state.status()) || !std::ifstream(state_path).good()) {
        return absl::FailedPreconditionError(
            absl::StrCat(state_path, ": no training state to resume from (finished runs remove it)"));
      }
      return state.status();
    }
    TrainOptions o = WithStoredOptions(state->options, given);
    o.config = file.model.config();
    CIRCUIT_ASSIGN_OR_RETURN(internal::TrainCorpus corpus,
                             internal::OpenTrainCorpus(o.corpus_dir, "", o.config));
    if (corpus.digest != state->corpus_digest) {
      return absl::InvalidArgumentError(absl::StrCat(
          o.corpus_dir, ": corpus digest ", corpus.digest, " differs from the one being trained on (",
          state->corpus_digest, ")"));
    }
    absl::StatusOr<Model> model = Model::FromTensors(o.config, state->weights, device);
    if (!model.ok()) return Annotate(model.status(), state_path);
    Trainer trainer(o, std::move(*model), std::move(file.tokenizer), std::move(corpus),
                    state->init_from);
    CIRCUIT_RETURN_IF_ERROR(trainer.Setup(&*state));
    return trainer.Run();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("training failed: ", e.what_without_backtrace()));
  }
}

}  // namespace circuit
