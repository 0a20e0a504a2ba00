// Checkpoints: bit-exact round trip, and a clear error for every kind of bad file.
#include "circuit/core/checkpoint.h"
#include "circuit/core/status.h"

#include <hdf5.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "testing/hostile_h5.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "small_tokenizer.h"

namespace circuit {
namespace {

using ::testing::HasSubstr;
using testing::SmallTokenizer;
using testing::StatusIs;

ModelConfig SmallConfig() {
  ModelConfig c;
  c.n_layer = 2;
  c.d_model = 16;
  c.n_head = 2;
  c.d_head = 8;
  c.d_mlp = 32;
  c.vocab_size = 300;
  c.n_ctx = 16;
  return c;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Model> model = Model::Create(SmallConfig(), /*seed=*/3);
    ASSERT_THAT(model, testing::IsOk());
    model_ = std::make_unique<Model>(std::move(*model));
    training_.steps = 12;
    training_.tokens = 12 * 256;
    training_.seed = 3;
    training_.final_loss = 4.5;
    training_.corpus_digest = "00ff";
    training_.hyperparameters["lr"] = 0.01;
    training_.curve_step = {1, 2};
    training_.curve_loss = {5.0, 4.5};
    path_ = dir_.File("model.h5");
    ASSERT_THAT(SaveModel(path_, *model_, SmallTokenizer(), training_), testing::IsOk());
  }

  // Opens the saved file for editing with the HDF5 C API.
  template <typename Fn>
  void Edit(Fn fn) {
    hid_t file = H5Fopen(path_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    fn(file);
    H5Fclose(file);
  }

  void ReplaceDataset(hid_t file, const char* name, hid_t type, std::vector<hsize_t> dims) {
    H5Ldelete(file, name, H5P_DEFAULT);
    hid_t space = H5Screate_simple(dims.size(), dims.data(), nullptr);
    hid_t dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t n = 1;
    for (hsize_t d : dims) n *= d;
    std::vector<double> zeros(n, 0.0);
    H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data());
    H5Dclose(dset);
    H5Sclose(space);
  }

  testing::TempDir dir_;
  std::unique_ptr<Model> model_;
  TrainingInfo training_;
  std::string path_;
};

TEST_F(CheckpointTest, RoundTripIsBitExact) {
  absl::StatusOr<ModelFile> loaded = LoadModel(path_);
  ASSERT_THAT(loaded, testing::IsOk());
  ASSERT_EQ(loaded->model.parameters().size(), model_->parameters().size());
  for (size_t i = 0; i < model_->parameters().size(); ++i) {
    EXPECT_EQ(loaded->model.parameters()[i].name, model_->parameters()[i].name);
    EXPECT_TRUE(torch::equal(loaded->model.parameters()[i].tensor, model_->parameters()[i].tensor))
        << model_->parameters()[i].name;
  }
  EXPECT_EQ(loaded->digest, WeightsDigest(*model_));
  EXPECT_EQ(loaded->model.config().d_head, 8);
  EXPECT_EQ(loaded->model.config().afrac_loctypes, SmallConfig().afrac_loctypes);
  EXPECT_EQ(loaded->training.steps, 12);
  EXPECT_EQ(loaded->training.corpus_digest, "00ff");
  EXPECT_EQ(loaded->training.hyperparameters.at("lr"), 0.01);
  EXPECT_EQ(loaded->training.curve_loss, (std::vector<double>{5.0, 4.5}));
  EXPECT_EQ(loaded->tokenizer.EncoderJson(), SmallTokenizer().EncoderJson());
  // Save of the loaded model gives the same digest again.
  ASSERT_THAT(SaveModel(dir_.File("again.h5"), loaded->model, loaded->tokenizer, loaded->training),
              testing::IsOk());
  EXPECT_EQ(LoadModel(dir_.File("again.h5"))->digest, loaded->digest);
}

TEST_F(CheckpointTest, NoTemporaryFileIsLeftBehind) {
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos);
  }
}

TEST_F(CheckpointTest, UnwritableDirectoryIsAnError) {
  EXPECT_THAT(SaveModel(dir_.File("missing/dir/model.h5"), *model_, SmallTokenizer(), training_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot create file")));
}

TEST_F(CheckpointTest, TruncatedFile) {
  const auto size = std::filesystem::file_size(path_);
  std::filesystem::resize_file(path_, size / 2);
  EXPECT_THAT(LoadModel(path_), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path_)));
}

TEST_F(CheckpointTest, NotHdf5) {
  std::ofstream(path_) << "not a checkpoint\n";
  EXPECT_THAT(LoadModel(path_), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("model.h5: not an HDF5 file")));
}

TEST_F(CheckpointTest, MissingFile) {
  EXPECT_THAT(LoadModel(dir_.File("nope.h5")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope.h5: no such file")));
}

TEST_F(CheckpointTest, WrongShape) {
  Edit([&](hid_t f) { ReplaceDataset(f, "/weights/lm_head.weight", H5T_IEEE_F32LE, {300, 8}); });
  EXPECT_THAT(LoadModel(path_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("/weights/lm_head.weight: expected (300, 16), got (300, 8)")));
}

TEST_F(CheckpointTest, WrongType) {
  Edit([&](hid_t f) {
    ReplaceDataset(f, "/weights/transformer.h.1.mlp.c_fc.bias", H5T_STD_I32LE, {32});
  });
  EXPECT_THAT(LoadModel(path_), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("transformer.h.1.mlp.c_fc.bias: expected "
                                                   "float32, got integer32")));
}

TEST_F(CheckpointTest, MissingDataset) {
  Edit([](hid_t f) { H5Ldelete(f, "/weights/transformer.h.0.ln_2.weight", H5P_DEFAULT); });
  EXPECT_THAT(LoadModel(path_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("/weights/transformer.h.0.ln_2.weight: missing dataset")));
}

TEST_F(CheckpointTest, UnexpectedDataset) {
  Edit([&](hid_t f) { ReplaceDataset(f, "/weights/extra.weight", H5T_IEEE_F32LE, {2}); });
  EXPECT_THAT(LoadModel(path_), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("/weights/extra.weight: not a tensor")));
}

TEST_F(CheckpointTest, MissingOrBadAttribute) {
  Edit([](hid_t f) { H5Adelete(f, "n_head"); });
  EXPECT_THAT(LoadModel(path_), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("/@n_head: missing attribute")));
}

TEST_F(CheckpointTest, InvalidConfigValue) {
  Edit([](hid_t f) {
    H5Adelete(f, "activation");
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(f, "activation", type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* value = "swish";
    H5Awrite(attr, type, &value);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
  });
  EXPECT_THAT(LoadModel(path_), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("activation must be 'gelu' or 'relu'")));
}

TEST_F(CheckpointTest, NonFiniteWeights) {
  Edit([](hid_t f) {
    hid_t d = H5Dopen2(f, "/weights/transformer.ln_f.weight", H5P_DEFAULT);
    std::vector<float> v(16, std::nanf(""));
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    H5Dclose(d);
  });
  EXPECT_THAT(LoadModel(path_), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("ln_f.weight: contains NaN")));
}

TEST_F(CheckpointTest, WrongFormat) {
  Edit([](hid_t f) {
    hid_t attr = H5Aopen(f, "format_version", H5P_DEFAULT);
    int64_t v = 99;
    H5Awrite(attr, H5T_NATIVE_INT64, &v);
    H5Aclose(attr);
  });
  EXPECT_THAT(LoadModel(path_), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("format_version 99 is not supported")));
}

TEST_F(CheckpointTest, DensityIsStored) {
  const auto density = ParameterDensity(*model_);
  ASSERT_FALSE(density.empty());
  EXPECT_EQ(density.front().first, "transformer.wte.weight");
  EXPECT_DOUBLE_EQ(density.front().second, 1.0);
}

// Files that declare sizes they do not hold: each read fails with the object
// named before anything of the declared size is allocated.
TEST_F(CheckpointTest, HostileDeclaredSizesAreRefused) {
  {
    testing::HostileH5 h(path_);
    ASSERT_TRUE(h.DeclareDataset("/training/curve/step", {uint64_t{1} << 40},
                                 testing::HostileH5::kInt64));
  }
  EXPECT_THAT(LoadModel(path_), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("/training/curve/step")));
  {
    testing::HostileH5 h(path_);
    ASSERT_TRUE(h.DeclareDataset("/tokenizer/encoder_json", {uint64_t{1} << 34},
                                 testing::HostileH5::kString));
  }
  EXPECT_THAT(LoadModel(path_), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("/tokenizer/encoder_json")));
}

TEST_F(CheckpointTest, AbsurdConfigIsRefusedWithAMessage) {
  {
    testing::HostileH5 h(path_);
    ASSERT_TRUE(h.SetInt("/", "n_layer", 1000000000));
  }
  EXPECT_THAT(LoadModelConfig(path_), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("n_layer must be <= 1024, got 1000000000")));
  {
    testing::HostileH5 h(path_);
    ASSERT_TRUE(h.SetInt("/", "n_layer", 2));
    ASSERT_TRUE(h.SetInt("/", "n_head", 65536));
    ASSERT_TRUE(h.SetInt("/", "d_head", 65536));
  }
  EXPECT_THAT(LoadModel(path_), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("n_head * d_head must be <= 65536")));
}

TEST(ModelConfigBounds, ParameterCountIsExactAndBounded) {
  for (bool extras : {false, true}) {
    ModelConfig c = SmallConfig();
    c.attn_sink = extras;
    c.bigram_table = extras;
    c.d_pos_emb = extras ? 4 : 0;
    int64_t stored = 0;  // every tensor a checkpoint of this shape holds
    for (const auto& [name, shape] : Model::ParameterShapes(c)) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      stored += n;
    }
    EXPECT_EQ(c.ParameterCount(), stored) << "extras " << extras;
  }
  ModelConfig huge = SmallConfig();
  huge.vocab_size = 1 << 20;  // a 2^40-entry bigram table
  EXPECT_THAT(huge.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("parameters, more than the 4294967296")));
  EXPECT_THAT(Model::Create(huge, /*seed=*/1).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("parameters")));
  ModelConfig wide = SmallConfig();
  wide.d_mlp = 1 << 30;
  EXPECT_THAT(wide.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("d_mlp must be <= 65536, got 1073741824")));
}

}  // namespace
}  // namespace circuit
