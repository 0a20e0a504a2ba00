// Task scoring: the contrast loss on hand-computed logits, batching with
// right-padding, and EvaluateTask against a one-prompt-at-a-time reference.
#include <cmath>
#include <vector>

#include "circuit/core/model.h"
#include "circuit/core/task_eval.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace circuit {
namespace {

TaskBatch BatchOf(std::vector<int64_t> correct, std::vector<int64_t> alternative) {
  TaskBatch b;
  b.correct = torch::tensor(correct, torch::kInt64);
  b.alternative = torch::tensor(alternative, torch::kInt64);
  return b;
}

TEST(TaskLoss, MatchesTheHandComputedTwoWaySoftmax) {
  // Prompt 0: correct logit 2, alternative 0 -> log(1 + e^-2).
  // Prompt 1: correct 0, alternative 2 -> log(1 + e^2). Prompt 2: a tie -> log 2.
  // The other vocabulary entries (large on purpose) do not matter.
  const torch::Tensor logits = torch::tensor({{2.0f, 0.0f, 9.0f}, {2.0f, 0.0f, -9.0f}, {5.0f, 1.0f, 1.0f}});
  const TaskBatch batch = BatchOf({0, 1, 1}, {1, 0, 2});
  const torch::Tensor per = TaskLossPerExample(logits, batch);  // (3)
  ASSERT_EQ(per.sizes(), (std::vector<int64_t>{3}));
  EXPECT_NEAR(per[0].item<double>(), std::log1p(std::exp(-2.0)), 1e-6);
  EXPECT_NEAR(per[0].item<double>(), 0.126928, 1e-6);
  EXPECT_NEAR(per[1].item<double>(), std::log1p(std::exp(2.0)), 1e-6);
  EXPECT_NEAR(per[2].item<double>(), std::log(2.0), 1e-6);
  EXPECT_NEAR(TaskLoss(logits, batch).item<double>(),
              (std::log1p(std::exp(-2.0)) + std::log1p(std::exp(2.0)) + std::log(2.0)) / 3, 1e-6);
}

TEST(TaskLoss, StaysFiniteForHugeLogitGapsAndHasTheRightGradient) {
  torch::Tensor logits = torch::tensor({{300.0, -300.0}, {-300.0, 300.0}}, torch::kFloat64).requires_grad_();
  const TaskBatch batch = BatchOf({0, 0}, {1, 1});
  torch::Tensor loss = TaskLoss(logits, batch);
  EXPECT_NEAR(loss.item<double>(), 600.0 / 2, 1e-9);  // (0 + 600) / 2
  loss.backward();
  // d/dc softplus(a - c) = -sigmoid(a - c): 0 for prompt 0, -1 for prompt 1, halved by the mean.
  EXPECT_NEAR(logits.grad()[0][0].item<double>(), 0.0, 1e-9);
  EXPECT_NEAR(logits.grad()[1][0].item<double>(), -0.5, 1e-9);
  EXPECT_NEAR(logits.grad()[1][1].item<double>(), 0.5, 1e-9);
}

TEST(MakeTaskBatch, RightPadsWithZeroAndPointsAtEachLastToken) {
  const std::vector<TaskExample> examples = {{{5, 6, 7}, 1, 2}, {{8}, 3, 4}, {{9, 10}, 2, 1}};
  const TaskBatch b = MakeTaskBatch(examples, torch::kCPU);
  EXPECT_TRUE(b.tokens.equal(torch::tensor({{5, 6, 7}, {8, 0, 0}, {9, 10, 0}}, torch::kInt64)));
  EXPECT_TRUE(b.last.equal(torch::tensor({2, 0, 1}, torch::kInt64)));
  EXPECT_TRUE(b.correct.equal(torch::tensor({1, 3, 2}, torch::kInt64)));
  EXPECT_TRUE(b.alternative.equal(torch::tensor({2, 4, 1}, torch::kInt64)));
}

TEST(EvaluateTask, EqualsAOnePromptAtATimeReferenceAcrossBatchesAndPadding) {
  ModelConfig c;
  c.n_layer = 2;
  c.d_model = 16;
  c.n_head = 2;
  c.d_head = 8;
  c.d_mlp = 32;
  c.vocab_size = 30;
  c.n_ctx = 12;
  absl::StatusOr<Model> model = Model::Create(c, /*seed=*/3);
  ASSERT_TRUE(model.ok()) << model.status();
  // Prompts of different lengths, so batches of 3 mix padding.
  std::vector<TaskExample> examples;
  for (int i = 0; i < 7; ++i) {
    TaskExample ex;
    for (int t = 0; t < 2 + (i * 5) % 11; ++t) ex.tokens.push_back((i * 7 + t * 3) % c.vocab_size);
    ex.correct = (i * 11) % c.vocab_size;
    ex.alternative = (i * 13 + 1) % c.vocab_size;
    examples.push_back(ex);
  }
  double loss = 0.0;
  int wins = 0;
  {
    torch::NoGradGuard no_grad;
    for (const TaskExample& ex : examples) {
      const torch::Tensor tokens =
          torch::tensor(std::vector<int64_t>(ex.tokens.begin(), ex.tokens.end())).view({1, -1});
      const torch::Tensor logits = model->Forward(tokens)[0][-1].to(torch::kFloat64);  // (V)
      const double lc = logits[ex.correct].item<double>(), la = logits[ex.alternative].item<double>();
      loss += -std::log(std::exp(lc) / (std::exp(lc) + std::exp(la)));
      wins += lc > la;
    }
  }
  const TaskMetrics m = EvaluateTask(*model, examples, /*taps=*/nullptr, /*batch_size=*/3);
  EXPECT_EQ(m.n, 7);
  EXPECT_NEAR(m.loss, loss / 7, 1e-5);
  EXPECT_DOUBLE_EQ(m.accuracy, wins / 7.0);
  EXPECT_GT(wins, 0);  // the check means something only if both outcomes occur
  EXPECT_LT(wins, 7);
  EXPECT_EQ(EvaluateTask(*model, {}).n, 0);
}

}  // namespace
}  // namespace circuit
