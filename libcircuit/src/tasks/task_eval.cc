// Task scoring: the two-way contrast loss of PAPER.md §3.1, per prompt.
#include "circuit/core/task_eval.h"

#include <algorithm>
#include <vector>

#include "circuit/core/status.h"
#include "tasks/task_eval_internal.h"

namespace circuit {

TaskBatch MakeTaskBatch(const std::vector<TaskExample>& examples, torch::Device device) {
  const int64_t batch = static_cast<int64_t>(examples.size());
  int64_t length = 1;
  for (const TaskExample& ex : examples) length = std::max<int64_t>(length, ex.tokens.size());
  // Filled on the CPU through plain buffers, then moved once.
  std::vector<int64_t> tokens(batch * length, 0), last(batch), correct(batch), alternative(batch);
  for (int64_t i = 0; i < batch; ++i) {
    const TaskExample& ex = examples[i];
    CIRCUIT_CHECK(!ex.tokens.empty());
    std::copy(ex.tokens.begin(), ex.tokens.end(), tokens.begin() + i * length);
    last[i] = static_cast<int64_t>(ex.tokens.size()) - 1;
    correct[i] = ex.correct;
    alternative[i] = ex.alternative;
  }
  auto to_tensor = [&](const std::vector<int64_t>& v, std::vector<int64_t> shape) {
    return torch::tensor(v, torch::kInt64).view(shape).to(device);
  };
  TaskBatch out;
  out.tokens = to_tensor(tokens, {batch, length});  // (B, T)
  out.last = to_tensor(last, {batch});              // (B)
  out.correct = to_tensor(correct, {batch});        // (B)
  out.alternative = to_tensor(alternative, {batch});
  return out;
}

torch::Tensor TaskLossPerExample(const torch::Tensor& logits, const TaskBatch& batch) {
  // -log softmax([c, a])[0] = log(1 + exp(a - c)) = softplus(a - c), stable for large gaps.
  const torch::Tensor c = logits.gather(1, batch.correct.unsqueeze(1)).squeeze(1);      // (B)
  const torch::Tensor a = logits.gather(1, batch.alternative.unsqueeze(1)).squeeze(1);  // (B)
  return torch::softplus(a - c);
}

torch::Tensor TaskLoss(const torch::Tensor& logits, const TaskBatch& batch) {
  return TaskLossPerExample(logits, batch).mean();
}

TaskMetrics EvaluateTask(const Model& model, const std::vector<TaskExample>& examples,
                         const Taps* taps, int batch_size, torch::Tensor* last_logits) {
  return internal::EvaluateTaskWith(
      [&](const TaskBatch& b) { return model.AnswerLogits(b.tokens, b.last, taps); },
      model.device(), model.config().vocab_size, examples, batch_size, last_logits);
}

TaskMetrics internal::EvaluateTaskWith(const AnswerLogitsFn& answer_logits,
                                       torch::Device device, int vocab_size,
                                       const std::vector<TaskExample>& examples, int batch_size,
                                       torch::Tensor* last_logits) {
  torch::NoGradGuard no_grad;
  TaskMetrics metrics;
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t step = std::max(1, batch_size);
  double loss_sum = 0.0;
  int64_t wins = 0;
  std::vector<torch::Tensor> kept;  // (B, V) per batch, when last_logits is asked for
  for (int64_t start = 0; start < n; start += step) {
    const int64_t end = std::min(n, start + step);
    const std::vector<TaskExample> chunk(examples.begin() + start, examples.begin() + end);
    const TaskBatch batch = MakeTaskBatch(chunk, device);
    const torch::Tensor logits = answer_logits(batch);  // (B, V)
    const torch::Tensor c = logits.gather(1, batch.correct.unsqueeze(1)).squeeze(1);
    const torch::Tensor a = logits.gather(1, batch.alternative.unsqueeze(1)).squeeze(1);
    loss_sum += torch::softplus(a - c).to(torch::kFloat64).sum().item<double>();
    wins += (c > a).sum().item<int64_t>();  // a tie is not a win
    if (last_logits != nullptr) kept.push_back(logits.to(torch::kCPU, torch::kFloat32));
  }
  if (last_logits != nullptr) {
    *last_logits = kept.empty() ? torch::zeros({0, vocab_size}) : torch::cat(kept);
  }
  metrics.n = n;
  if (n > 0) {
    metrics.loss = loss_sum / static_cast<double>(n);
    metrics.accuracy = static_cast<double>(wins) / static_cast<double>(n);
  }
  return metrics;
}

}  // namespace circuit
