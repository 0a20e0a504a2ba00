// Import of pathwaycom/bdh checkpoints: a state dict written by python3-torch
// from a restatement of the reference's forward pass (scripts/bdh_reference.py) gives
// the same logits here; odd and broken state dicts give one-line errors.
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "circuit/core/bdh.h"
#include "circuit/core/bdh_checkpoint.h"
#include "circuit/core/release_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/require.h"
#include "testing/run.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "reference_json.h"

namespace circuit {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using testing::IsOk;
using testing::ReadReference;
using testing::Reference;
using testing::RunCommand;
using testing::RunResult;
using testing::SourceDir;
using testing::StatusIs;
using testing::TempDir;

constexpr int kNoTorch = 77;  // make_bdh_model.py's exit code without python3-torch

// Runs the fixture script; skips without python3-torch (fails under CI=true).
#define MAKE_BDH_FIXTURE_OR_SKIP(dir, args)                                              \
  do {                                                                                   \
    RunResult r_ =                                                                       \
        RunCommand("/usr/bin/python3 " + SourceDir() +                                   \
                   "/tests/release_io/make_bdh_model.py --out " + (dir) + " " + (args)); \
    if (r_.exit_code == kNoTorch || r_.exit_code == 127)                                 \
      CIRCUIT_SKIP_UNLESS_CI() << "no python3-torch";                                    \
    ASSERT_EQ(r_.exit_code, 0) << r_.err;                                                \
  } while (false)

BdhImportOptions Options(int n_layer) {
  BdhImportOptions o;
  o.n_layer = n_layer;
  o.fallback_tokenizer_dir = SourceDir() + "/data/tokenizer";
  return o;
}

double MaxLogitError(const BdhModel& model, const Reference& ref) {
  torch::NoGradGuard no_grad;
  return (model.Forward(ref.tokens) - ref.logits).abs().max().item<double>();
}

TEST(BdhImportTest, CompiledStateDictMatchesThePythonForward) {
  TempDir dir;
  MAKE_BDH_FIXTURE_OR_SKIP(dir.path(), "--compiled");
  const Reference ref = ReadReference(dir.path());
  absl::StatusOr<BdhModelFile> file = ImportBdhStateDict(dir.File("bdh.pt"), Options(ref.n_layer));
  ASSERT_THAT(file, IsOk());
  const BdhConfig& c = file->model.config();
  EXPECT_EQ(c.n_layer, 3);
  EXPECT_EQ(c.d_model, 16);
  EXPECT_EQ(c.n_head, 2);
  EXPECT_EQ(c.n_neuron, 32);
  EXPECT_EQ(c.vocab_size, 2048);
  EXPECT_THAT(file->notes, Contains(HasSubstr("_orig_mod.")));
  EXPECT_THAT(file->notes, Contains(HasSubstr("tokenizer: the bundled one")));
  EXPECT_GT(ref.logits.abs().max().item<double>(), 1.0);  // not a comparison of zeros
  const double error = MaxLogitError(file->model, ref);
  EXPECT_LE(error, 1e-5);
  RecordProperty("max_abs_logit_error", absl::StrCat(error));
  // The layer count is not in the file, and it matters.
  absl::StatusOr<BdhModelFile> shallow = ImportBdhStateDict(dir.File("bdh.pt"), Options(2));
  ASSERT_THAT(shallow, IsOk());
  EXPECT_GT(MaxLogitError(shallow->model, ref), 1e-2);
}

TEST(BdhImportTest, CommandLineImportGivesTheSameLogits) {
  TempDir dir;
  MAKE_BDH_FIXTURE_OR_SKIP(dir.path(), "");
  const Reference ref = ReadReference(dir.path());
  RunResult r = RunCommand(testing::CircuitBinary() + " import --arch bdh --weights " +
                           dir.File("bdh.pt") + " --layers 3 --out " + dir.File("bdh.h5"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("wrote " + dir.File("bdh.h5") + ": BDH, 3 layers"));
  absl::StatusOr<BdhModelFile> file = LoadBdhModel(dir.File("bdh.h5"));
  ASSERT_THAT(file, IsOk());
  EXPECT_LE(MaxLogitError(file->model, ref), 1e-5);

  r = RunCommand(testing::CircuitBinary() + " import --arch bdh --weights " + dir.File("bdh.pt") +
                 " --layers 3 --tokenizer " + dir.path() + " --out " + dir.File("x.h5"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("circuit import: "));
}

// State dicts written here (WriteStateDict is torch.save's format) with one thing wrong.
class BdhImportErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BdhConfig c;
    c.n_layer = 2;
    c.d_model = 8;
    c.n_head = 2;
    c.n_neuron = 8;
    c.vocab_size = 2048;
    absl::StatusOr<BdhModel> model = BdhModel::Create(c, 1);
    ASSERT_THAT(model, IsOk());
    tensors_ = model->parameters();
    tensors_.push_back({"attn.freqs", BdhRopeFrequencies(8).view({1, 1, 1, 8})});
  }
  absl::Status Import(const std::vector<NamedTensor>& tensors) {
    const std::string path = dir_.File("bdh.pt");
    absl::Status s = WriteStateDict(path, tensors);
    if (!s.ok()) return s;
    return ImportBdhStateDict(path, Options(2)).status();
  }
  std::vector<NamedTensor> Without(const std::string& name) const {
    std::vector<NamedTensor> out;
    for (const NamedTensor& t : tensors_) {
      if (t.name != name) out.push_back(t);
    }
    return out;
  }
  TempDir dir_;
  std::vector<NamedTensor> tensors_;
};

TEST_F(BdhImportErrorsTest, EachFaultIsNamed) {
  ASSERT_THAT(Import(tensors_), IsOk());
  EXPECT_THAT(Import(Without("encoder")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no tensor 'encoder'")));
  EXPECT_THAT(Import(Without("decoder")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing tensor 'decoder'")));
  std::vector<NamedTensor> bad = tensors_;
  bad.back().tensor = bad.back().tensor * 2;  // not the RoPE frequencies
  EXPECT_THAT(Import(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("attn.freqs")));
  bad = tensors_;
  bad.push_back({"transformer.wte.weight", torch::zeros({4, 4})});
  EXPECT_THAT(Import(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("unexpected tensor(s) for a BDH model")));
  bad = tensors_;
  bad[2].tensor = torch::zeros({2, 8, 6});  // encoder_v of another N
  EXPECT_THAT(Import(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("tensor 'encoder_v': expected (2, 8, 8)")));
}

}  // namespace
}  // namespace circuit
