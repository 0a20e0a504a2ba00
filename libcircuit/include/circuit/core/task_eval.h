// Scoring tasks with a model: two-way softmax cross-entropy over the two
// candidate logits at the last prompt position, per prompt, in nats (PAPER.md §3.1).
//
//   TaskBatch batch = MakeTaskBatch(data.test, model.device());
//   torch::Tensor logits = model.ForwardAt(batch.tokens, batch.last, &taps);  // (B, V)
//   torch::Tensor loss = TaskLoss(logits, batch);                            // scalar
//   TaskMetrics m = EvaluateTask(model, data.test);
#ifndef CIRCUIT_CORE_TASK_EVAL_H_
#define CIRCUIT_CORE_TASK_EVAL_H_

#include <torch/torch.h>

#include <vector>

#include "circuit/core/model.h"
#include "circuit/core/task.h"

namespace circuit {

struct TaskBatch {
  torch::Tensor tokens;       // (B, T) int64, right-padded with token 0
  torch::Tensor last;         // (B) int64, position of each prompt's last token
  torch::Tensor correct;      // (B) int64
  torch::Tensor alternative;  // (B) int64
};

TaskBatch MakeTaskBatch(const std::vector<TaskExample>& examples, torch::Device device);

// logits: (B, V) at the last positions. Per-example loss (B):
// -log softmax([l_correct, l_alternative])[0].
torch::Tensor TaskLossPerExample(const torch::Tensor& logits, const TaskBatch& batch);
// Mean of TaskLossPerExample: the per-prompt task loss.
torch::Tensor TaskLoss(const torch::Tensor& logits, const TaskBatch& batch);

struct TaskMetrics {
  double loss = 0.0;      // mean per prompt, nats
  double accuracy = 0.0;  // share of prompts whose correct candidate wins
  int64_t n = 0;          // prompts
};

// Scores `examples` in batches of `batch_size` prompts under `taps` (may be null).
// last_logits (optional): set to the (n, vocab) float32 CPU logits at each
// example's last position, in the order of `examples`.
TaskMetrics EvaluateTask(const Model& model, const std::vector<TaskExample>& examples,
                         const Taps* taps = nullptr, int batch_size = 64,
                         torch::Tensor* last_logits = nullptr);

}  // namespace circuit

#endif  // CIRCUIT_CORE_TASK_EVAL_H_
