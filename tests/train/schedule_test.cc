// The schedules of PAPER.md §2.4 at chosen steps (torch-free).
#include "circuit/core/schedule.h"

#include <cmath>

#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace circuit {
namespace {

TrainSchedule Recipe() {
  TrainSchedule s;
  s.steps = 1000;
  s.lr = 0.01;
  s.warmup = 0.01;        // 10 steps
  s.anneal_start = 0.01;  // step 10
  s.anneal_end = 0.5;     // step 500
  s.density = 1.0 / 16;
  s.embed_density = 0.25;
  return s;
}

TEST(ScheduleTest, DensityIsDenseThenLinearThenTarget) {
  const TrainSchedule s = Recipe();
  EXPECT_DOUBLE_EQ(s.HiddenDensity(0), 1.0);
  EXPECT_DOUBLE_EQ(s.HiddenDensity(10), 1.0);
  // Halfway through annealing (step 255 of 10..500): halfway between 1 and 1/16.
  EXPECT_NEAR(s.HiddenDensity(255), (1.0 + 1.0 / 16) / 2, 1e-12);
  EXPECT_NEAR(s.EmbedDensity(255), (1.0 + 0.25) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(s.HiddenDensity(500), 1.0 / 16);
  EXPECT_DOUBLE_EQ(s.HiddenDensity(999), 1.0 / 16);
  EXPECT_DOUBLE_EQ(s.EmbedDensity(999), 0.25);
  for (int64_t t = 1; t < 1000; ++t) {
    EXPECT_LE(s.HiddenDensity(t), s.HiddenDensity(t - 1)) << t;  // never densifies
  }
}

TEST(ScheduleTest, SharkfinLearningRate) {
  const TrainSchedule s = Recipe();
  EXPECT_EQ(s.WarmupSteps(), 10);
  // Warmup: (t+1)/10 of the base, times sqrt(1/16 / 1) = 1/4 while dense.
  EXPECT_NEAR(s.LearningRate(0), 0.01 * 0.1 * 0.25, 1e-15);
  EXPECT_NEAR(s.LearningRate(9), 0.01 * 1.0 * 0.25, 1e-15);
  // Mid-annealing: base decay (1000-255)/990 times sqrt(density/HiddenDensity).
  const double f = (1.0 + 1.0 / 16) / 2;
  EXPECT_NEAR(s.LearningRate(255), 0.01 * (745.0 / 990.0) * std::sqrt((1.0 / 16) / f), 1e-15);
  // After annealing the sparsity factor is 1: plain linear decay to 1/990 at the end.
  EXPECT_NEAR(s.LearningRate(500), 0.01 * 500.0 / 990.0, 1e-15);
  EXPECT_NEAR(s.LearningRate(999), 0.01 / 990.0, 1e-15);
  // The fin: rises during annealing, then falls.
  EXPECT_LT(s.LearningRate(100), s.LearningRate(400));
  EXPECT_GT(s.LearningRate(500), s.LearningRate(800));
}

TEST(ScheduleTest, DenseHasNoAnnealingAndNoSparsityFactor) {
  TrainSchedule s = Recipe();
  s.dense = true;
  EXPECT_DOUBLE_EQ(s.HiddenDensity(999), 1.0);
  EXPECT_DOUBLE_EQ(s.EmbedDensity(999), 1.0);
  EXPECT_NEAR(s.LearningRate(9), 0.01, 1e-15);
  EXPECT_NEAR(s.LearningRate(500), 0.01 * 500.0 / 990.0, 1e-15);
}

TEST(ScheduleTest, NoWarmupAndInstantAnnealing) {
  TrainSchedule s = Recipe();
  s.warmup = 0;
  s.anneal_start = s.anneal_end = 0;
  EXPECT_EQ(s.WarmupSteps(), 0);
  EXPECT_DOUBLE_EQ(s.HiddenDensity(0), 1.0 / 16);
  EXPECT_NEAR(s.LearningRate(0), 0.01, 1e-15);
}

TEST(ScheduleTest, ValidateNamesTheField) {
  TrainSchedule s = Recipe();
  EXPECT_THAT(s.Validate(), testing::IsOk());
  s.density = 0;
  EXPECT_THAT(s.Validate(), testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                              ::testing::HasSubstr("density = 0")));
  s = Recipe();
  s.anneal_end = 0.005;
  EXPECT_THAT(s.Validate(), testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                              ::testing::HasSubstr("anneal_end")));
  s = Recipe();
  s.steps = 0;
  EXPECT_THAT(s.Validate(), testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                              ::testing::HasSubstr("steps = 0")));
  s = Recipe();
  s.warmup = 1.0;
  EXPECT_THAT(s.Validate(), testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                              ::testing::HasSubstr("warmup")));
}

}  // namespace
}  // namespace circuit
