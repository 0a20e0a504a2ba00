// Training runs on a tiny corpus: the loss falls, densities and per-channel
// minimums hold, a stopped-and-resumed run equals an uninterrupted one bit for
// bit, a diverging run stops with a clear error, and bad options are rejected.
#include "circuit/core/trainer.h"

#include <hdf5.h>

#include <atomic>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "circuit/core/checkpoint.h"
#include "gtest/gtest.h"
#include "testing/hostile_h5.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "tiny_corpus.h"
#include "train/train_corpus.h"

namespace circuit {
namespace {

using ::testing::HasSubstr;
using testing::IsOk;
using testing::StatusIs;

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    testing::WriteTinyCorpus(dir_.path());
  }

  TrainOptions Tiny(const std::string& out_name, int64_t steps) const {
    TrainOptions o;
    o.config.n_layer = 2;
    o.config.d_model = 32;
    o.config.n_head = 4;
    o.config.d_head = 8;
    o.config.d_mlp = 128;
    o.config.vocab_size = testing::kTinyVocab;
    o.config.n_ctx = 32;
    o.corpus_dir = dir_.path();
    o.out = dir_.File(out_name);
    o.schedule.steps = steps;
    o.schedule.lr = 0.02;
    o.schedule.density = 0.25;
    o.schedule.embed_density = 0.5;
    o.batch = 8;
    o.eval_every = 20;
    o.save_every = 0;
    o.val_windows = 16;
    o.seed = 5;
    return o;
  }

  testing::TempDir dir_;
};

TEST_F(TrainerTest, TinyRunLowersValidationLossAndReachesTargetDensity) {
  TrainOptions o = Tiny("model.h5", 60);
  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->steps_done, 60);
  EXPECT_FALSE(r->interrupted);
  EXPECT_FALSE(std::filesystem::exists(TrainStatePath(o.out)));  // finished: no state left

  absl::StatusOr<ModelFile> f = LoadModel(o.out);
  ASSERT_THAT(f, IsOk());
  const TrainingInfo& info = f->training;
  EXPECT_EQ(info.steps, 60);
  EXPECT_EQ(info.tokens, 60 * 8 * 32);
  ASSERT_EQ(info.val_step, (std::vector<int64_t>{20, 40, 60}));
  EXPECT_LT(info.val_loss.back(), info.val_loss.front());
  EXPECT_LT(info.val_loss.back(), std::log(300.0) - 1.5);  // far below a uniform guess
  EXPECT_EQ(info.curve_loss.size(), 60u);
  EXPECT_DOUBLE_EQ(info.final_val_loss, info.val_loss.back());
  EXPECT_EQ(info.hyperparameters.at("density"), 0.25);

  // Hidden matrices at exactly max(k, 4 * channels) nonzeros with >= 4 per channel.
  const Model& m = f->model;
  torch::Tensor fc = m.layer(1).fc_w;  // (128, 32)
  EXPECT_EQ(fc.ne(0).sum().item<int64_t>(), KeepCount(fc.numel(), 0.25));
  EXPECT_GE(fc.ne(0).sum(1).min().item<int64_t>(), 4);
  torch::Tensor proj = m.layer(0).mlp_proj_w;  // (32, 128): per column
  EXPECT_GE(proj.ne(0).sum(0).min().item<int64_t>(), 4);
  torch::Tensor wte = m.wte();
  EXPECT_EQ(wte.ne(0).sum().item<int64_t>(), KeepCount(wte.numel(), 0.5));
  // Never sparsified: the bigram table and norms stay dense.
  EXPECT_EQ(m.bigram().ne(0).sum().item<int64_t>(), m.bigram().numel());
}

TEST_F(TrainerTest, StopAndResumeEqualsUninterruptedRunBitForBit) {
  TrainOptions whole = Tiny("whole.h5", 40);
  ASSERT_THAT(Train(whole), IsOk());

  TrainOptions part = Tiny("part.h5", 40);
  std::atomic<bool> stop{false};
  part.stop = &stop;
  part.on_progress = [&stop](const TrainProgress& p) {
    if (p.step == 17) stop = true;  // an odd step: not a save or eval step
  };
  absl::StatusOr<TrainResult> first = Train(part);
  ASSERT_THAT(first, IsOk());
  EXPECT_TRUE(first->interrupted);
  EXPECT_EQ(first->steps_done, 17);
  ASSERT_TRUE(std::filesystem::exists(TrainStatePath(part.out)));

  TrainOptions resume = Tiny("part.h5", 40);
  resume.resume = true;
  resume.schedule.lr = 123;  // ignored: the state file's options win
  absl::StatusOr<TrainResult> second = Train(resume);
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second->start_step, 17);
  EXPECT_EQ(second->steps_done, 40);

  absl::StatusOr<ModelFile> a = LoadModel(whole.out), b = LoadModel(part.out);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->training.curve_loss, b->training.curve_loss);
  EXPECT_EQ(a->training.val_loss, b->training.val_loss);
  EXPECT_EQ(a->training.val_step, b->training.val_step);
  EXPECT_EQ(a->training.tokens, b->training.tokens);
  for (size_t i = 0; i < a->model.parameters().size(); ++i) {
    EXPECT_TRUE(torch::equal(a->model.parameters()[i].tensor, b->model.parameters()[i].tensor))
        << a->model.parameters()[i].name;
  }
  EXPECT_EQ(a->digest, b->digest);
}

// One step of Train() against the update written out by hand from the same
// fresh model and the same batch: gradients divided by their global RMS (+1e-5),
// then Adam's first step (bias-corrected moments are g and g^2, so the step is
// lr * g / (|g| + eps)), then decoupled weight decay of the 2-D weights. Each
// part matters: the updates without the normalisation or without eps differ
// from the trained model by far more than the tolerance (checked below too).
TEST_F(TrainerTest, OneStepComposesNormalisationAdamAndDecay) {
  TrainOptions o = Tiny("step.h5", 1);
  o.schedule.dense = true;  // no projection: this step is normalise, Adam, decay
  o.eval_every = 0;
  ASSERT_THAT(Train(o), IsOk());
  absl::StatusOr<ModelFile> trained = LoadModel(o.out);
  ASSERT_THAT(trained, IsOk());

  absl::StatusOr<Model> model = Model::Create(o.config, o.seed);  // Train()'s fresh start
  ASSERT_THAT(model, IsOk());
  absl::StatusOr<internal::TrainCorpus> corpus = internal::OpenTrainCorpus(o.corpus_dir, "", o.config);
  ASSERT_THAT(corpus, IsOk());
  const torch::Tensor batch = corpus->train->RandomBatch(o.seed, /*step=*/0, o.batch);  // (B, T + 1)
  std::vector<NamedTensor> params;
  for (NamedTensor& p : model->mutable_parameters()) {
    if (p.name == "final_logits_bias") continue;  // not trained
    p.tensor.requires_grad_(true);
    params.push_back(p);
  }
  model->Loss(batch).backward();

  double sum_sq = 0;
  int64_t count = 0;
  for (const NamedTensor& p : params) {
    sum_sq += p.tensor.grad().to(torch::kFloat64).pow(2).sum().item<double>();
    count += p.tensor.numel();
  }
  const double rms = std::sqrt(sum_sq / static_cast<double>(count));
  const double lr = o.schedule.LearningRate(0), eps = o.adam.eps, decay = o.weight_decay * lr;
  ASSERT_GT(eps, 0.0);
  // The weights after one step when the gradient is scaled by `scale` and Adam
  // uses `adam_eps`.
  auto expected = [&](const NamedTensor& p, double scale, double adam_eps) {
    const torch::Tensor g = p.tensor.grad() * scale;
    torch::Tensor w = p.tensor.detach() - lr * g / (g.abs() + adam_eps);
    if (w.dim() == 2 && p.name != "bigram_table") w = w - decay * w;
    return w;
  };
  double err = 0, err_unnormalised = 0, err_no_eps = 0;
  for (const NamedTensor& p : params) {
    const torch::Tensor got = trained->model.Parameter(p.name);
    auto max_diff = [&](const torch::Tensor& want) { return (got - want).abs().max().item<double>(); };
    err = std::max(err, max_diff(expected(p, 1.0 / (rms + 1e-5), eps)));
    err_unnormalised = std::max(err_unnormalised, max_diff(expected(p, 1.0, eps)));
    err_no_eps = std::max(err_no_eps, max_diff(expected(p, 1.0 / (rms + 1e-5), 0.0)));
  }
  EXPECT_LT(err, 1e-6);
  // The test can tell: dropping either part moves some weight by far more.
  EXPECT_GT(err_unnormalised, 100 * 1e-6) << "gradient RMS " << rms;
  EXPECT_GT(err_no_eps, 100 * 1e-6);
}

TEST_F(TrainerTest, InitContinuesFromAModelsWeightsAndRecordsIt) {
  TrainOptions first = Tiny("first.h5", 40);
  ASSERT_THAT(Train(first), IsOk());
  absl::StatusOr<ModelFile> parent = LoadModel(first.out);
  ASSERT_THAT(parent, IsOk());

  TrainOptions more = Tiny("more.h5", 20);
  more.init_model = first.out;
  more.config.d_model = 64;  // ignored: the init model's shape wins
  more.schedule.anneal_start = 0;
  more.schedule.anneal_end = 0;  // already at the target density
  more.schedule.lr = 0.005;
  more.eval_every = 0;
  ASSERT_THAT(Train(more), IsOk());
  absl::StatusOr<ModelFile> child = LoadModel(more.out);
  ASSERT_THAT(child, IsOk());
  EXPECT_EQ(child->model.config().d_model, 32);
  EXPECT_EQ(child->training.steps, 20);
  EXPECT_EQ(child->training.init_from,
            absl::StrCat("first.h5 digest ", parent->digest, ", 40 steps, ", 40 * 8 * 32, " tokens"));
  // It starts where the parent ended, not from a fresh model's loss.
  EXPECT_LT(child->training.curve_loss.front(), parent->training.curve_loss.front() - 0.5);
  EXPECT_LE(child->training.final_val_loss, parent->training.final_val_loss + 0.05);
  // Still exactly at the target density.
  torch::Tensor fc = child->model.layer(1).fc_w;
  EXPECT_EQ(fc.ne(0).sum().item<int64_t>(), KeepCount(fc.numel(), 0.25));

  TrainOptions missing = Tiny("x.h5", 5);
  missing.init_model = dir_.File("absent.h5");
  EXPECT_THAT(Train(missing), StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent.h5")));
}

TEST_F(TrainerTest, DivergingRunStopsWithErrorAndWritesNoBadCheckpoint) {
  TrainOptions o = Tiny("model.h5", 30);
  o.schedule.lr = 1e30;
  o.schedule.warmup = 0;
  o.save_every = 1;
  absl::StatusOr<TrainResult> r = Train(o);
  ASSERT_THAT(r, StatusIs(absl::StatusCode::kAborted, HasSubstr("diverged")));
  EXPECT_THAT(std::string(r.status().message()), ::testing::StartsWith("step "));
  EXPECT_FALSE(std::filesystem::exists(o.out));  // no finite state was ever reached
}

// Overwrites one weight of a saved training state with NaN (HDF5 C API).
void PoisonState(const std::string& state_path, const std::string& weight) {
  hid_t file = H5Fopen(state_path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  hid_t ds = H5Dopen2(file, ("/weights/" + weight).c_str(), H5P_DEFAULT);
  ASSERT_GE(ds, 0);
  hid_t space = H5Dget_space(ds);
  std::vector<float> nan(H5Sget_simple_extent_npoints(space), std::nanf(""));
  ASSERT_GE(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, nan.data()), 0);
  H5Sclose(space);
  H5Dclose(ds);
  H5Fclose(file);
}

TEST_F(TrainerTest, NanLossNamesTheStepAndKeepsTheLastCheckpoint) {
  TrainOptions o = Tiny("model.h5", 30);
  std::atomic<bool> stop{false};
  o.stop = &stop;
  o.on_progress = [&stop](const TrainProgress& p) { stop = p.step == 7; };
  ASSERT_THAT(Train(o), IsOk());
  PoisonState(TrainStatePath(o.out), "lm_head.weight");

  TrainOptions resume = Tiny("model.h5", 30);
  resume.resume = true;
  absl::StatusOr<TrainResult> r = Train(resume);
  ASSERT_THAT(r, StatusIs(absl::StatusCode::kAborted, HasSubstr("step 8: training loss is nan")));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("the checkpoint of step 7 is kept in " + o.out));
  absl::StatusOr<ModelFile> f = LoadModel(o.out);  // untouched and loadable
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->training.steps, 7);
}

TEST_F(TrainerTest, DenseBaselineKeepsEveryWeight) {
  TrainOptions o = Tiny("dense.h5", 10);
  o.schedule.dense = true;
  o.eval_every = 0;
  ASSERT_THAT(Train(o), IsOk());
  absl::StatusOr<ModelFile> f = LoadModel(o.out);
  ASSERT_THAT(f, IsOk());
  EXPECT_TRUE(f->training.dense);
  torch::Tensor fc = f->model.layer(0).fc_w;
  EXPECT_EQ(fc.ne(0).sum().item<int64_t>(), fc.numel());
  EXPECT_EQ(f->training.val_step, (std::vector<int64_t>{10}));  // evaluated at the end

  // A dense continuation (the dense baseline's later stages) stays dense.
  TrainOptions more = Tiny("dense2.h5", 5);
  more.schedule.dense = true;
  more.init_model = o.out;
  more.eval_every = 0;
  ASSERT_THAT(Train(more), IsOk());
  absl::StatusOr<ModelFile> g = LoadModel(more.out);
  ASSERT_THAT(g, IsOk());
  EXPECT_TRUE(g->training.dense);
  EXPECT_THAT(g->training.init_from, HasSubstr("dense.h5 digest " + f->digest));
  torch::Tensor fc2 = g->model.layer(0).fc_w;
  EXPECT_EQ(fc2.ne(0).sum().item<int64_t>(), fc2.numel());
}

TEST_F(TrainerTest, BadOptionsAndMissingFilesAreClearErrors) {
  TrainOptions o = Tiny("m.h5", 10);
  o.batch = 0;
  EXPECT_THAT(Train(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("batch = 0")));
  o = Tiny("m.h5", 10);
  o.schedule.density = 1.5;
  EXPECT_THAT(Train(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("density = 1.5")));
  o = Tiny("m.h5", 10);
  o.config.n_ctx = 100000;  // longer than the corpus
  EXPECT_THAT(Train(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("window")));
  o = Tiny("m.h5", 10);
  o.config.vocab_size = 512;
  EXPECT_THAT(Train(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocab")));
  o = Tiny("m.h5", 10);
  o.corpus_dir = dir_.File("missing");
  EXPECT_THAT(Train(o), StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
  o = Tiny("m.h5", 10);
  o.resume = true;  // nothing to resume
  EXPECT_FALSE(Train(o).ok());
}

// A training state whose Adam moment declares 2^40 x 128 floats (and stores
// none) is refused on resume with the dataset named, not by bad_alloc.
TEST_F(TrainerTest, HostileTrainStateSizesAreRefusedOnResume) {
  TrainOptions o = Tiny("model.h5", 30);
  std::atomic<bool> stop{false};
  o.stop = &stop;
  o.on_progress = [&stop](const TrainProgress& p) { stop = p.step == 3; };
  ASSERT_THAT(Train(o), IsOk());
  {
    testing::HostileH5 h(TrainStatePath(o.out));
    ASSERT_TRUE(h.DeclareDataset("/adam/exp_avg/lm_head.weight", {uint64_t{1} << 40, 128},
                                 testing::HostileH5::kFloat32));
  }
  TrainOptions resume = Tiny("model.h5", 30);
  resume.resume = true;
  EXPECT_THAT(Train(resume), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("/adam/exp_avg/lm_head.weight")));
}

}  // namespace
}  // namespace circuit
