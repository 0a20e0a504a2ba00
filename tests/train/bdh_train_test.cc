// BDH training on the tiny corpus: the loss falls, the model file holds what
// was trained, the validation loss is reproducible, bad options are rejected.
#include "circuit/core/bdh_train.h"

#include <cmath>
#include <vector>

#include "circuit/core/bdh.h"
#include "circuit/core/bdh_checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "tiny_corpus.h"

namespace circuit {
namespace {

using ::testing::HasSubstr;
using testing::IsOk;
using testing::StatusIs;

class BdhTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    testing::WriteTinyCorpus(dir_.path());
  }

  BdhTrainOptions Tiny(int64_t steps) const {
    BdhTrainOptions o;
    o.config.n_layer = 2;
    o.config.d_model = 32;
    o.config.n_head = 2;
    o.config.n_neuron = 64;
    o.config.vocab_size = testing::kTinyVocab;
    o.config.n_ctx = 32;
    o.corpus_dir = dir_.path();
    o.out = dir_.File("bdh.h5");
    o.steps = steps;
    o.lr = 3e-3;
    o.batch = 8;
    o.eval_every = 20;
    o.save_every = 0;
    o.val_windows = 16;
    o.seed = 5;
    return o;
  }

  testing::TempDir dir_;
};

TEST_F(BdhTrainTest, ATinyRunLowersTheLossAndSavesTheModel) {
  absl::StatusOr<BdhTrainResult> r = TrainBdh(Tiny(/*steps=*/60));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->steps_done, 60);
  EXPECT_FALSE(r->interrupted);
  ASSERT_TRUE(std::isfinite(r->initial_val_loss));
  // Untrained, the loss is about log(300) = 5.7 nats; the run must learn the
  // corpus's most common tokens at least.
  RecordProperty("val_loss_before", std::to_string(r->initial_val_loss));
  RecordProperty("val_loss_after", std::to_string(r->final_val_loss));
  EXPECT_LT(r->final_val_loss, r->initial_val_loss - 1.0)
      << "before " << r->initial_val_loss << ", after " << r->final_val_loss;

  absl::StatusOr<BdhModelFile> file = LoadBdhModel(r->model_path);
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ(file->training.steps, 60);
  EXPECT_EQ(file->training.curve_loss.size(), 60u);
  EXPECT_DOUBLE_EQ(file->training.final_val_loss, r->final_val_loss);
  EXPECT_TRUE(file->training.dense);
  // The saved weights give the validation loss training reported.
  absl::StatusOr<double> val = BdhValidationLoss(file->model, dir_.path(), /*windows=*/16,
                                                 /*batch=*/8);
  ASSERT_THAT(val, IsOk());
  EXPECT_NEAR(*val, r->final_val_loss, 1e-5);
}

// --init: a second stage starts from the first's weights (its validation loss
// before training is the first's after) and records where it came from.
TEST_F(BdhTrainTest, InitContinuesFromASavedModel) {
  absl::StatusOr<BdhTrainResult> first = TrainBdh(Tiny(/*steps=*/30));
  ASSERT_THAT(first, IsOk());
  BdhTrainOptions o = Tiny(/*steps=*/10);
  o.init_model = first->model_path;
  o.config.n_neuron = 16;  // ignored: the shape is the init model's
  o.out = dir_.File("stage2.h5");
  o.seed = 6;
  absl::StatusOr<BdhTrainResult> second = TrainBdh(o);
  ASSERT_THAT(second, IsOk());
  EXPECT_NEAR(second->initial_val_loss, first->final_val_loss, 1e-5);
  absl::StatusOr<BdhModelFile> file = LoadBdhModel(second->model_path);
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ(file->model.config().n_neuron, 64);
  EXPECT_EQ(file->training.steps, 10);
  EXPECT_THAT(file->training.init_from, HasSubstr("bdh.h5 digest "));
  EXPECT_THAT(file->training.init_from, HasSubstr(", 30 steps"));
  o.init_model = dir_.File("missing.h5");
  EXPECT_FALSE(TrainBdh(o).ok());
}

// --cooldown: the lr is constant, then falls linearly to lr / n at the last of
// the n decaying steps (0 after it).
TEST_F(BdhTrainTest, CooldownDecaysTheLearningRateOverTheLastSteps) {
  BdhTrainOptions o = Tiny(/*steps=*/8);
  o.cooldown = 0.5;
  std::vector<double> lrs;
  o.on_progress = [&](const TrainProgress& p) { lrs.push_back(p.lr); };
  ASSERT_THAT(TrainBdh(o), IsOk());
  const double lr = o.lr;
  EXPECT_THAT(lrs, ::testing::Pointwise(::testing::DoubleNear(1e-12),
                                      std::vector<double>{lr, lr, lr, lr, lr, 0.75 * lr,
                                                          0.5 * lr, 0.25 * lr}));
  o.cooldown = 1.5;
  EXPECT_THAT(TrainBdh(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cooldown")));
}

TEST_F(BdhTrainTest, RejectsBadOptionsAndAnotherVocabulary) {
  BdhTrainOptions o = Tiny(5);
  o.steps = 0;
  EXPECT_THAT(TrainBdh(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("steps = 0")));
  o = Tiny(5);
  o.config.n_neuron = 63;
  EXPECT_THAT(TrainBdh(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("n_neuron")));
  o = Tiny(5);
  o.config.vocab_size = 2048;
  EXPECT_THAT(TrainBdh(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocab")));
}

}  // namespace
}  // namespace circuit
