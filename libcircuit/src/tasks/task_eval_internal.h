// The task-scoring loop behind EvaluateTask (GPT, circuit/core/task_eval.h) and
// EvaluateBdhTask (BDH, circuit/core/bdh.h), for any architecture. Private.
#ifndef CIRCUIT_LIBCIRCUIT_SRC_TASK_EVAL_INTERNAL_H_
#define CIRCUIT_LIBCIRCUIT_SRC_TASK_EVAL_INTERNAL_H_

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "circuit/core/task_eval.h"

namespace circuit::internal {

// `answer_logits(batch)` returns the (B, V) logits at batch.last; batches are
// made on `device`. Otherwise as EvaluateTask.
using AnswerLogitsFn = std::function<torch::Tensor(const TaskBatch& batch)>;
TaskMetrics EvaluateTaskWith(const AnswerLogitsFn& answer_logits, torch::Device device,
                             int vocab_size, const std::vector<TaskExample>& examples,
                             int batch_size, torch::Tensor* last_logits);

}  // namespace circuit::internal

#endif  // CIRCUIT_LIBCIRCUIT_SRC_TASK_EVAL_INTERNAL_H_
