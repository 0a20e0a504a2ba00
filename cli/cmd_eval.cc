// circuit eval --task NAME: a model's task loss and accuracy on one split.
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "args.h"
#include "circuit/core/arch.h"
#include "circuit/core/bdh_checkpoint.h"
#include "circuit/core/bdh_train.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/file_util.h"
#include "circuit/core/status.h"
#include "circuit/core/runtime.h"
#include "circuit/core/task.h"
#include "circuit/core/task_eval.h"
#include "command.h"
#include "nlohmann/json.hpp"

namespace circuit::cli {
namespace {

struct EvalRequest {
  std::string split = "test";
  int pairs = 0;  // 0: the split's default size
  int batch = 64;
  bool json = false;
  std::string logits;  // .npy path for the raw logits at the answer position
};

// Scores examples with the loaded model, of either architecture; logits may be null.
using ScoreFn = std::function<TaskMetrics(const std::vector<TaskExample>& examples,
                                          torch::Tensor* logits)>;

// Builds one task and scores the requested split.
absl::StatusOr<TaskMetrics> EvaluateOne(const std::string& name, const Tokenizer& tokenizer,
                                        int n_ctx, const ScoreFn& score,
                                        const EvalRequest& request, uint64_t seed,
                                        double* mean_tokens) {
  TaskOptions options;
  options.n_ctx = n_ctx;
  options.seed = seed;
  // Splits are drawn test, validation, train, each excluding the prompts
  // before it, so the later splits can be skipped without changing this one.
  if (request.split == "test") options.n_validation = 0;
  if (request.split != "train") options.n_train = 0;
  if (request.pairs > 0) {
    int* count = request.split == "train"        ? &options.n_train
                 : request.split == "validation" ? &options.n_validation
                                                 : &options.n_test;
    *count = request.pairs;
  }
  absl::StatusOr<TaskData> data = BuildTask(name, tokenizer, options);
  if (!data.ok()) return data.status();
  const std::vector<TaskExample>& examples = request.split == "train"        ? data->train
                                             : request.split == "validation" ? data->validation
                                                                             : data->test;
  if (mean_tokens != nullptr) {
    double total = 0;
    for (const TaskExample& e : examples) total += static_cast<double>(e.tokens.size());
    *mean_tokens = examples.empty() ? 0.0 : total / static_cast<double>(examples.size());
  }
  if (request.logits.empty()) return score(examples, nullptr);
  torch::Tensor logits;  // (n, vocab)
  const TaskMetrics m = score(examples, &logits);
  logits = logits.contiguous();
  const std::vector<float> values(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
  CIRCUIT_RETURN_IF_ERROR(WriteNpyFloat32(request.logits, {logits.size(0), logits.size(1)}, values));
  return m;
}

void Print(const std::string& name, const EvalRequest& request, const TaskMetrics& m,
           double mean_tokens) {
  if (request.json) {
    const nlohmann::json j = {{"task", name},         {"split", request.split},
                              {"loss", m.loss},       {"accuracy", m.accuracy},
                              {"n", m.n}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  } else {
    std::cout << absl::StrFormat("%-28s %-10s loss %.4f  accuracy %.3f  n %d  (prompts of %.0f tokens)",
                                 name, request.split, m.loss, m.accuracy, m.n, mean_tokens)
              << std::endl;
  }
}

int RunEval(int argc, char** argv) {
  ArgParser parser("circuit eval --task NAME [--model M] [--split test] [--n PAIRS] [--json]",
                   "Score a model (GPT or BDH) on a task: mean per-prompt loss (two-way softmax over the two "
                   "candidate tokens, nats) and accuracy (share of prompts whose correct candidate "
                   "has the higher logit). NAME is a built-in task (`circuit tasks`), all, or "
                   "file:path.jsonl.");
  std::string task;
  EvalRequest request;
  CommonOptions common;
  parser.Option("task", "task name, all, or file:path.jsonl", &task);
  parser.Option("split", "train, validation or test", &request.split);
  parser.Option("n", "datapoints (prompt pairs) in the split; 0 = its default size", &request.pairs);
  parser.Option("batch", "prompts per forward pass", &request.batch);
  parser.Flag("json", "one JSON object per task: task, split, loss, accuracy, n", &request.json);
  parser.Option("logits", "also write the raw logits at each prompt's last position as a float32 "
                ".npy array (prompts, vocab), rows in the order of `circuit tasks --dump NAME "
                "--split S` (one task only)", &request.logits);
  std::string corpus;
  int val_windows = 64;
  parser.Option("corpus", "BDH models: also the validation loss over this corpus's val split "
                "(as training reports it)", &corpus);
  parser.Option("val-windows", "validation windows for --corpus", &val_windows);
  AddCommonOptions(parser, &common);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (task.empty() && corpus.empty()) {
    return Fail("eval", "--task (or, for a BDH model, --corpus) is required (see `circuit tasks`)",
                kExitUsage);
  }
  if (request.split != "train" && request.split != "validation" && request.split != "test") {
    return Fail("eval", "--split must be train, validation or test, got '" + request.split + "'",
                kExitUsage);
  }
  if (request.pairs < 0) return Fail("eval", "--n must be >= 0", kExitUsage);
  if (request.batch < 1) return Fail("eval", "--batch must be >= 1", kExitUsage);

  if (!request.logits.empty() && task == "all") {
    return Fail("eval", "--logits needs one task, not all", kExitUsage);
  }
  std::vector<std::string> names;
  if (task == "all") {
    for (const TaskInfo& info : BuiltinTasks()) names.push_back(info.name);
  } else if (!task.empty()) {
    names.push_back(task);
  }
  ConfigureRuntime(common.threads);
  absl::StatusOr<torch::Device> device = ParseDevice(common.device);
  if (!device.ok()) return Fail("eval", std::string(device.status().message()), kExitUsage);
  absl::StatusOr<std::string> arch = ReadModelArch(common.model);
  if (!arch.ok()) return Fail("eval", std::string(arch.status().message()), kExitUsage);
  std::optional<ModelFile> gpt;
  std::optional<BdhModelFile> bdh;
  ScoreFn score;
  if (*arch == kArchBdh) {
    absl::StatusOr<BdhModelFile> file = LoadBdhModel(common.model, *device);
    if (!file.ok()) return Fail("eval", std::string(file.status().message()), kExitUsage);
    bdh = std::move(*file);
    score = [&](const std::vector<TaskExample>& examples, torch::Tensor* logits) {
      return EvaluateBdhTask(bdh->model, examples, request.batch, logits);
    };
  } else {
    absl::StatusOr<ModelFile> file = LoadModel(common.model, *device);
    if (!file.ok()) return Fail("eval", std::string(file.status().message()), kExitUsage);
    gpt = std::move(*file);
    score = [&](const std::vector<TaskExample>& examples, torch::Tensor* logits) {
      return EvaluateTask(gpt->model, examples, /*taps=*/nullptr, request.batch, logits);
    };
  }
  const Tokenizer& tokenizer = bdh ? bdh->tokenizer : gpt->tokenizer;
  const int n_ctx = bdh ? bdh->model.config().n_ctx : gpt->model.config().n_ctx;
  if (!corpus.empty()) {
    if (!bdh) return Fail("eval", "--corpus is implemented for BDH models only so far", kExitUsage);
    absl::StatusOr<double> val = BdhValidationLoss(bdh->model, corpus, val_windows, request.batch);
    if (!val.ok()) return Fail("eval", std::string(val.status().message()), kExitUsage);
    std::cout << absl::StrFormat("validation loss %.4f nats/token over %d windows of %d tokens of %s",
                                 *val, val_windows, n_ctx, corpus)
              << std::endl;
    if (task.empty()) return kExitOk;
  }

  // With `all`, a task that does not fit the tokenizer is reported and skipped.
  int failed = 0;
  for (const std::string& name : names) {
    double mean_tokens = 0;
    absl::StatusOr<TaskMetrics> metrics =
        EvaluateOne(name, tokenizer, n_ctx, score, request, common.seed, &mean_tokens);
    if (!metrics.ok()) {
      if (names.size() == 1) return Fail("eval", std::string(metrics.status().message()), kExitUsage);
      Fail("eval", std::string(metrics.status().message()), kExitFailure);
      ++failed;
      continue;
    }
    Print(name, request, *metrics, mean_tokens);
  }
  return failed > 0 ? kExitFailure : kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(eval, "eval", "score a model on a task: loss and accuracy", RunEval);

}  // namespace circuit::cli
