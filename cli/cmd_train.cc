// circuit train: weight-sparse training (PAPER.md §2) of a model on a built
// corpus, with checkpoints, exact resume (--resume) and a dense baseline (--dense).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "arch_options.h"
#include "args.h"
#include "circuit/core/bdh_train.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/model.h"
#include "circuit/core/runtime.h"
#include "circuit/core/status.h"
#include "circuit/core/trainer.h"
#include "circuit/prune/mean_cache.h"
#include "command.h"

namespace circuit::cli {
namespace {

// An interrupted run saved its state but did not finish: 128 + SIGINT, as shells report.
constexpr int kExitInterrupted = 130;

std::atomic<bool> g_stop{false};

// First SIGINT/SIGTERM: ask the loop to save and stop; SA_RESETHAND makes a
// second one kill the process the usual way.
void OnSignal(int) { g_stop.store(true); }

void InstallStopHandler() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string Duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, s / 60 % 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

std::string ProgressText(const TrainProgress& p) {
  std::string line = absl::StrFormat("step %d/%d  loss %.3f", p.step, p.steps, p.loss);
  if (!std::isnan(p.val_loss)) absl::StrAppendFormat(&line, "  val %.3f", p.val_loss);
  if (!std::isnan(p.density)) absl::StrAppendFormat(&line, "  density %.4f", p.density);
  absl::StrAppendFormat(&line, "  lr %.2e  %.0f tok/s  eta %s", p.lr, p.tokens_per_second,
                        Duration(p.eta_seconds));
  if (p.saved) line += "  [saved]";
  return line;
}

// Exit code for a failed run: the user's input (2) or the run itself (1).
int CodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
      return kExitUsage;
    default:
      return kExitFailure;
  }
}

// --arch bdh: the BDH loop (circuit/core/bdh_train.h) with the options that
// apply to it; GPT-only training options are usage errors.
int TrainBdhModel(const ArgParser& parser, const TrainOptions& o, const BdhConfig& config,
                  double cooldown, const std::function<void(const TrainProgress&)>& on_progress) {
  if (std::string e = RejectGiven(parser,
                                  {"density", "embed-density", "anneal-start", "anneal-end",
                                   "warmup", "min-per-channel", "sparsify-biases", "sparsify-wpe",
                                   "resume", "stop-after"},
                                  "--arch bdh (BDH trains dense, without resume yet: --init continues "
                                  "from a saved model)");
      !e.empty()) {
    return Fail("train", e, kExitUsage);
  }
  BdhTrainOptions b;
  b.config = config;
  b.corpus_dir = o.corpus_dir;
  b.tokenizer_dir = o.tokenizer_dir;
  b.out = o.out;
  b.init_model = o.init_model;
  b.steps = o.schedule.steps;
  b.batch = o.batch;
  if (parser.Given("lr")) b.lr = o.schedule.lr;  // else the reference's 1e-3
  b.cooldown = cooldown;
  b.weight_decay = o.weight_decay;
  b.seed = o.seed;
  b.eval_every = o.eval_every;
  b.save_every = o.save_every;
  b.val_windows = o.val_windows;
  b.device = o.device;
  b.command = o.command;
  b.stop = o.stop;
  b.on_progress = on_progress;
  absl::StatusOr<BdhTrainResult> r = TrainBdh(b);
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r\033[K");
  if (!r.ok()) return Fail("train", std::string(r.status().message()), CodeFor(r.status()));
  if (!r->interrupted) {
    if (absl::Status s = prune::SaveCorpusMeans(r->model_path, o.corpus_dir, o.device); !s.ok()) {
      return Fail("train", absl::StrCat("model saved, but its mean cache was not: ", s.message()),
                  kExitFailure);
    }
  }
  std::cout << absl::StrFormat(
      "trained %s (BDH): %d steps in %s (%.0f tokens/s); loss %.4f, val %.4f (%.4f before "
      "training)\n%s",
      r->model_path, r->steps_done, Duration(r->seconds), r->tokens_per_second, r->final_loss,
      r->final_val_loss, r->initial_val_loss,
      r->interrupted ? "" : absl::StrCat("means over the corpus val split: ",
                                         prune::MeansPathFor(r->model_path), "\n"));
  return r->interrupted ? kExitInterrupted : kExitOk;
}

int RunTrain(int argc, char** argv) {
  ArgParser parser(
      "circuit train --corpus DIR --out model.h5 [options]",
      "Train a weight-sparse transformer (PAPER.md §2) on a corpus built by `circuit corpus` "
      "(--arch bdh: a dense BDH model, docs/bdh.md). "
      "Defaults are the bundled model's recipe. Checkpoints go to --out and --out.state every "
      "--save-every steps and on Ctrl-C; --resume continues exactly where the state file left off.");
  TrainOptions o;
  // The bundled model's recipe: 2000 steps x 32 x 256 tokens = 16.4M tokens,
  // 1-2 hours on two CPU cores (docs/performance.md, docs/models.md).
  o.schedule.steps = 2000;
  o.schedule.lr = 0.02;
  o.save_every = 250;
  std::string device = "cpu";
  int threads = 0;
  ArchOptions arch;
  AddModelConfigOptions(parser, &o.config);
  AddArchOptions(parser, &arch);
  parser.Option("corpus", "corpus directory (train.bin, val.bin)", &o.corpus_dir);
  parser.Option("tokenizer", "tokenizer directory (default: the corpus's)", &o.tokenizer_dir);
  parser.Option("out", "output checkpoint (.h5); the state file is <out>.state", &o.out);
  parser.Option("steps", "optimiser steps", &o.schedule.steps);
  parser.Option("batch", "sequences of n_ctx + 1 tokens per step", &o.batch);
  parser.Option("lr", "peak learning rate (sharkfin schedule)", &o.schedule.lr);
  parser.Option("density", "final fraction of nonzero weights in hidden matrices", &o.schedule.density);
  parser.Option("embed-density", "final fraction of nonzeros in wte and lm_head", &o.schedule.embed_density);
  parser.Option("wd", "decoupled weight decay (times lr)", &o.weight_decay);
  parser.Option("anneal-start", "fraction of steps where density annealing starts", &o.schedule.anneal_start);
  parser.Option("anneal-end", "fraction of steps where the final density is reached", &o.schedule.anneal_end);
  parser.Option("warmup", "fraction of steps of linear learning-rate warmup", &o.schedule.warmup);
  double cooldown = 0;
  parser.Option("cooldown", "bdh: the last fraction of the steps decays the learning rate "
                "linearly to 0 (0: constant, as the reference)", &cooldown);
  parser.Option("min-per-channel", "nonzeros every neuron/channel keeps (j)", &o.sparsity.min_per_channel);
  parser.Flag("sparsify-biases", "also sparsify biases (at the embedding density)", &o.sparsity.sparsify_biases);
  parser.Flag("sparsify-wpe", "sparsify an added wpe like a hidden matrix", &o.sparsity.sparsify_wpe);
  parser.Flag("dense", "train without weight sparsity (dense baseline)", &o.schedule.dense);
  parser.Option("init", "start from this model's weights (its shape and tokenizer), with a fresh "
                "optimiser and this run's schedule", &o.init_model);
  parser.Flag("resume", "continue from <out>.state (options come from the state)", &o.resume);
  parser.Option("save-every", "checkpoint every N steps (0: at the end only)", &o.save_every);
  parser.Option("eval-every", "validation loss every N steps (0: at the end only)", &o.eval_every);
  parser.Option("val-windows", "validation windows (evenly spaced over val.bin)", &o.val_windows);
  parser.Option("stop-after", "stop after this many steps of the schedule, saving model and state "
                "(--resume continues); the model is usable as it is", &o.stop_after);
  parser.Option("threads", "CPU threads (0: auto, the cores other processes leave idle)", &threads);
  parser.Option("seed", "initialisation and batch-sampling seed", &o.seed);
  parser.Option("device", kDeviceHelp, &device);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (o.corpus_dir.empty()) return Fail("train", "--corpus is required", kExitUsage);
  if (o.out.empty()) return Fail("train", "--out is required", kExitUsage);
  if (std::string e = ResolveArch(parser, o.config, &arch); !e.empty()) {
    return Fail("train", e, kExitUsage);
  }
  absl::StatusOr<torch::Device> dev = ParseDevice(device);
  if (!dev.ok()) return Fail("train", std::string(dev.status().message()), kExitUsage);
  o.device = *dev;
  ConfigureRuntime(threads);

  o.command = "circuit";
  for (int i = 0; i < argc; ++i) o.command += std::string(" ") + argv[i];
  const bool tty = isatty(STDERR_FILENO) != 0;
  double last_draw = -1;
  o.on_progress = [&](const TrainProgress& p) {
    const bool milestone = !std::isnan(p.val_loss) || p.saved;
    if (tty) {
      // Redraw at most 5 times a second; keep evaluation lines on screen.
      if (!milestone && p.elapsed_seconds - last_draw < 0.2 && p.step < p.steps) return;
      last_draw = p.elapsed_seconds;
      std::fprintf(stderr, "\r\033[K%s%s", ProgressText(p).c_str(), milestone ? "\n" : "");
      std::fflush(stderr);
    } else if (milestone) {
      std::cout << ProgressText(p) << std::endl;
    }
  };
  o.stop = &g_stop;
  InstallStopHandler();
  if (arch.arch == kArchBdh) {
    return TrainBdhModel(parser, o, arch.bdh, cooldown, o.on_progress);
  }
  if (std::string e = RejectGiven(parser, {"cooldown"},
                                  "--arch gpt (its sharkfin schedule decays the learning rate itself)");
      !e.empty()) {
    return Fail("train", e, kExitUsage);
  }

  absl::StatusOr<TrainResult> r = Train(o);
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (!r.ok()) return Fail("train", std::string(r.status().message()), CodeFor(r.status()));
  const bool stopped_after = o.stop_after > 0 && r->steps_done >= o.stop_after;
  if (r->interrupted) {
    std::cout << "stopped at step " << r->steps_done << "; saved " << r->model_path << " and "
              << r->state_path << " (continue with --resume)\n";
    if (!stopped_after) return kExitInterrupted;
  }
  if (absl::Status s = prune::SaveCorpusMeans(r->model_path, o.corpus_dir, o.device); !s.ok()) {
    return Fail("train", absl::StrCat("model saved, but its mean cache was not: ", s.message()), kExitFailure);
  }
  const TrainTimings& t = r->timings;
  const double busy = t.data + t.forward + t.backward + t.optimizer + t.projection;
  auto pct = [busy](double x) { return absl::StrFormat("%.0f%%", busy > 0 ? 100 * x / busy : 0); };
  double hidden = 0;
  for (const auto& [name, f] : r->density) {
    if (name.find("c_fc.weight") != std::string::npos || name.find("c_proj.weight") != std::string::npos ||
        name.find("c_attn.weight") != std::string::npos) {
      hidden = std::max(hidden, f);
    }
  }
  std::cout << absl::StrFormat(
      "trained %s: %d steps in %s (%.0f tokens/s); loss %.4f, val %.4f; max hidden density %.4f\n"
      "time in steps: forward %s, backward %s, optimizer %s, projection %s, data %s; "
      "eval %s, checkpoints %s\nmeans over the corpus val split: %s\n",
      r->model_path, r->steps_done, Duration(r->seconds), r->tokens_per_second, r->final_loss,
      r->final_val_loss, hidden, pct(t.forward), pct(t.backward), pct(t.optimizer),
      pct(t.projection), pct(t.data), Duration(t.eval), Duration(t.checkpoint),
      prune::MeansPathFor(r->model_path));
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(train, "train", "train a weight-sparse (or --dense) model on a corpus", RunTrain);

}  // namespace circuit::cli
