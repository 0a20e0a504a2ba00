// Readers' tests for the release format: missing and misshapen tensors, files
// that are not checkpoints, truncated and hostile archives, bad configs. The
// fixtures come from our own writer (no Python needed).
#include <caffe2/serialize/inline_container.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "circuit/core/release_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "io/torch_pickle.h"

namespace circuit {
namespace {

using ::absl::StatusCode;
using ::circuit::testing::IsOk;
using ::circuit::testing::StatusIs;
using ::circuit::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

ModelConfig SmallConfig() {
  ModelConfig c;
  c.n_layer = 1;
  c.d_model = 16;
  c.n_head = 2;
  c.d_head = 8;
  c.d_mlp = 32;
  c.vocab_size = 260;
  c.n_ctx = 8;
  c.d_pos_emb = 0;
  c.attn_sink = false;
  return c;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

class ReleaseErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Model> model = Model::Create(SmallConfig(), /*seed=*/3);
    ASSERT_THAT(model, IsOk());
    params_ = model->parameters();
    absl::StatusOr<std::string> json = ReleaseConfigJson(SmallConfig());
    ASSERT_THAT(json, IsOk());
    WriteText(config_path(), *json);
  }
  std::string config_path() const { return dir_.File("beeg_config.json"); }
  std::string weights_path() const { return dir_.File("final_model.pt"); }
  absl::StatusOr<ReleaseModel> ImportWith(const std::vector<NamedTensor>& tensors) {
    absl::Status written = WriteStateDict(weights_path(), tensors);
    if (!written.ok()) return written;
    return ImportReleaseModel(config_path(), weights_path(), /*tokenizer_dir=*/dir_.path());
  }

  TempDir dir_;
  std::vector<NamedTensor> params_;
};

TEST_F(ReleaseErrorsTest, WrittenStateDictReadsBackExactly) {
  ASSERT_THAT(WriteStateDict(weights_path(), params_), IsOk());
  absl::StatusOr<std::vector<NamedTensor>> back = ReadStateDict(weights_path());
  ASSERT_THAT(back, IsOk());
  ASSERT_EQ(back->size(), params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    EXPECT_EQ((*back)[i].name, params_[i].name);
    EXPECT_TRUE(torch::equal((*back)[i].tensor, params_[i].tensor)) << params_[i].name;
  }
  EXPECT_FALSE(std::filesystem::exists(weights_path() + ".tmp-" + std::to_string(getpid())));
}

TEST_F(ReleaseErrorsTest, MissingWrongShapeAndUnexpectedTensorsAreNamed) {
  std::vector<NamedTensor> missing;
  for (const NamedTensor& p : params_) {
    if (p.name != "transformer.h.0.mlp.c_fc.bias") missing.push_back(p);
  }
  EXPECT_THAT(ImportWith(missing),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(weights_path()),
                             HasSubstr("missing tensor 'transformer.h.0.mlp.c_fc.bias'"),
                             HasSubstr("(32)"))));

  std::vector<NamedTensor> misshapen = params_;
  for (NamedTensor& p : misshapen) {
    if (p.name == "transformer.h.0.attn.c_attn.weight") p.tensor = torch::zeros({48, 15});
  }
  EXPECT_THAT(ImportWith(misshapen), StatusIs(StatusCode::kInvalidArgument,
                                              AllOf(HasSubstr(weights_path()),
                                                    HasSubstr("transformer.h.0.attn.c_attn.weight"),
                                                    HasSubstr("expected (48, 16), got (48, 15)"))));

  std::vector<NamedTensor> extra = params_;
  extra.push_back({"transformer.h.0.attn.attn_imp.sink_logit", torch::zeros({2})});
  EXPECT_THAT(ImportWith(extra), StatusIs(StatusCode::kInvalidArgument,
                                          HasSubstr("unexpected tensor(s) for this config: "
                                                    "transformer.h.0.attn.attn_imp.sink_logit")));
}

TEST_F(ReleaseErrorsTest, NonFiniteWeightsAreRejected) {
  std::vector<NamedTensor> poisoned = params_;
  for (NamedTensor& p : poisoned) {
    if (p.name == "transformer.h.0.ln_2.weight") {
      p.tensor = p.tensor.clone();
      p.tensor[3] = std::numeric_limits<float>::quiet_NaN();
    }
  }
  EXPECT_THAT(
      ImportWith(poisoned),
      StatusIs(StatusCode::kInvalidArgument,
               HasSubstr("tensor 'transformer.h.0.ln_2.weight' contains NaN or infinite values")));
}

TEST_F(ReleaseErrorsTest, FilesThatAreNotCheckpoints) {
  WriteText(weights_path(), "hello, I am text\n");
  EXPECT_THAT(ReadStateDict(weights_path()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a torch.save() checkpoint")));
  WriteText(weights_path(), "");
  EXPECT_THAT(ReadStateDict(weights_path()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a torch.save() checkpoint")));
  WriteText(weights_path(), std::string("\x80\x02\x8a\x0alegacy", 10));
  EXPECT_THAT(ReadStateDict(weights_path()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("legacy torch.save format")));
  EXPECT_THAT(ReadStateDict(dir_.File("absent.pt")),
              StatusIs(StatusCode::kNotFound, HasSubstr("absent.pt: cannot open")));

  // Truncated at several points: an error naming the file, never a crash.
  ASSERT_THAT(WriteStateDict(weights_path(), params_), IsOk());
  std::ifstream in(weights_path(), std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), {});
  for (double frac : {0.1, 0.5, 0.9, 0.999}) {
    WriteText(weights_path(), whole.substr(0, static_cast<size_t>(frac * whole.size())));
    EXPECT_THAT(ReadStateDict(weights_path()),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(weights_path())))
        << frac;
  }
}

// An archive whose pickle disagrees with its storages, as a hostile file might.
void WriteHostileArchive(const std::string& path, int64_t storage_numel, int64_t view_size,
                         int64_t record_floats) {
  internal::PickledTensor e;
  e.name = "w";
  e.storage_key = "0";
  e.storage_type = "FloatStorage";
  e.location = "cpu";
  e.storage_numel = storage_numel;
  e.sizes = {view_size};
  e.strides = {1};
  const std::string pkl = internal::WriteStateDictPickle({e});
  std::vector<float> data(record_floats, 1.0f);
  caffe2::serialize::PyTorchStreamWriter writer(path);
  writer.writeRecord("data.pkl", pkl.data(), pkl.size());
  writer.writeRecord("data/0", data.data(), data.size() * sizeof(float));
  writer.writeEndOfFile();
}

TEST_F(ReleaseErrorsTest, StoragesThatDisagreeWithThePickle) {
  WriteHostileArchive(weights_path(), /*storage_numel=*/10, /*view_size=*/4, /*record_floats=*/4);
  EXPECT_THAT(ReadStateDict(weights_path()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("has 16 bytes, expected 40")));
  WriteHostileArchive(weights_path(), /*storage_numel=*/4, /*view_size=*/5, /*record_floats=*/4);
  EXPECT_THAT(ReadStateDict(weights_path()),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("view lies outside its storage")));
}

TEST_F(ReleaseErrorsTest, BadConfigsNameTheFile) {
  ASSERT_THAT(WriteStateDict(weights_path(), params_), IsOk());
  WriteText(config_path(), "{\"n_layer\": 1,");
  EXPECT_THAT(ImportReleaseModel(config_path(), weights_path(), dir_.path()),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(config_path()), HasSubstr("not valid JSON"))));
  WriteText(config_path(), R"({"n_layer": 1, "d_model": 16, "n_head": 2, "rms_norm": false})");
  EXPECT_THAT(ImportReleaseModel(config_path(), weights_path(), dir_.path()),
              StatusIs(StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(config_path()), HasSubstr("rms_norm: false"))));
  EXPECT_THAT(ImportReleaseModel(dir_.File("nope.json"), weights_path(), dir_.path()),
              StatusIs(StatusCode::kNotFound, HasSubstr("nope.json: cannot open")));
}

TEST_F(ReleaseErrorsTest, WritingIntoAnUnwritablePlaceFails) {
  WriteText(dir_.File("file"), "x");
  // A directory path below a regular file cannot be created.
  EXPECT_FALSE(WriteStateDict(dir_.File("file") + "/final_model.pt", params_).ok());
}

}  // namespace
}  // namespace circuit
