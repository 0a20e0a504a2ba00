// Import and export of the release's checkpoint format, checked against
// Debian's python3-torch: fixtures are written by torch.save, reference logits
// come from a re-statement of the release's forward pass (release_reference.py),
// and exported files are read back by torch.load(weights_only=True).
#include "circuit/core/release_io.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "circuit/core/checkpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/require.h"
#include "testing/run.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "reference_json.h"

namespace circuit {
namespace {

using ::absl::StatusCode;
using ::circuit::testing::IsOk;
using ::circuit::testing::Reference;
using ::circuit::testing::ReadReference;
using ::circuit::testing::RunCommand;
using ::circuit::testing::RunResult;
using ::circuit::testing::SourceDir;
using ::circuit::testing::StatusIs;
using ::circuit::testing::TempDir;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;

constexpr int kNoTorch = 77;  // the scripts' exit code when python3-torch is absent

RunResult Python(const std::string& script_and_args) {
  return RunCommand("/usr/bin/python3 " + SourceDir() + "/tests/release_io/" + script_and_args);
}

#define MAKE_FIXTURE_OR_SKIP(dir, args)                                                      \
  do {                                                                                       \
    RunResult r_ = Python("make_release_model.py --out " + (dir) + " " + (args));            \
    if (r_.exit_code == kNoTorch || r_.exit_code == 127)                                     \
      CIRCUIT_SKIP_UNLESS_CI() << "no python3-torch";                                        \
    ASSERT_EQ(r_.exit_code, 0) << r_.err;                                                    \
  } while (false)

absl::StatusOr<ReleaseModel> Import(const std::string& dir, const std::string& tokenizer_dir) {
  return ImportReleaseModel(dir + "/beeg_config.json", dir + "/final_model.pt", tokenizer_dir);
}

double MaxLogitError(const Model& model, const Reference& ref) {
  torch::NoGradGuard no_grad;
  return (model.Forward(ref.tokens) - ref.logits).abs().max().item<double>();
}

TEST(ReleaseImportTest, AddedPositionsMatchThePythonForward) {
  TempDir dir;
  MAKE_FIXTURE_OR_SKIP(dir.path(), "--variant added");
  absl::StatusOr<ReleaseModel> rm = Import(dir.path(), dir.path());
  ASSERT_THAT(rm, IsOk());
  const ModelConfig& c = rm->model.config();
  EXPECT_EQ(c.d_mlp, 96);  // from the legacy n_mlp
  EXPECT_EQ(c.d_head, 8);  // d_head null -> d_model / n_head
  EXPECT_EQ(c.n_ctx, 16);
  EXPECT_EQ(c.d_pos_emb, 0);
  EXPECT_EQ(c.afrac, 0.0);
  EXPECT_FALSE(c.attn_sink);
  EXPECT_THAT(rm->notes, Contains(HasSubstr("ignored 2 causal-mask buffers")));
  EXPECT_THAT(rm->notes, Contains(HasSubstr("final_logits_bias: absent")));
  EXPECT_THAT(rm->notes, Contains(HasSubstr("expansion_factor")));
  EXPECT_EQ(rm->tokenizer.vocab_size(), 260);
  EXPECT_LE(MaxLogitError(rm->model, ReadReference(dir.path())), 1e-4);
}

TEST(ReleaseImportTest, CatPositionsSinkAndAbsTopKMatchThePythonForward) {
  TempDir dir;
  MAKE_FIXTURE_OR_SKIP(dir.path(), "--variant catpos");
  absl::StatusOr<ReleaseModel> rm = Import(dir.path(), dir.path());
  ASSERT_THAT(rm, IsOk());
  const ModelConfig& c = rm->model.config();
  EXPECT_EQ(c.d_pos_emb, 8);
  EXPECT_EQ(c.d_in(), 40);
  EXPECT_TRUE(c.attn_sink);
  EXPECT_EQ(c.afrac, 0.25);
  EXPECT_TRUE(c.HasActivationSparsity(NodeLocation::kMlpPostAct));
  const Reference ref = ReadReference(dir.path());
  EXPECT_LE(MaxLogitError(rm->model, ref), 1e-4);
  // The sink matters: without it the logits move well past the tolerance.
  rm->model.layer(0).sink.fill_(-30.0);
  EXPECT_GT(MaxLogitError(rm->model, ref), 1e-3);
}

TEST(ReleaseImportTest, TiedUnembeddingAndNoBiasesAreConverted) {
  TempDir dir;
  MAKE_FIXTURE_OR_SKIP(dir.path(), "--variant tied_nobias");
  absl::StatusOr<ReleaseModel> rm = Import(dir.path(), dir.path());
  ASSERT_THAT(rm, IsOk());
  EXPECT_EQ(rm->model.config().activation, "relu");
  EXPECT_TRUE(torch::equal(rm->model.lm_head(), rm->model.wte()));
  EXPECT_EQ(rm->model.layer(1).fc_b.abs().sum().item<float>(), 0.0f);
  EXPECT_THAT(rm->notes, Contains(HasSubstr("tied_unembed")));
  EXPECT_LE(MaxLogitError(rm->model, ReadReference(dir.path())), 1e-4);
}

TEST(ReleaseImportTest, TokenizerFallsBackToTheBundledOneOnlyWhenSizesMatch) {
  TempDir dir;
  MAKE_FIXTURE_OR_SKIP(dir.path(), "--variant added");
  absl::StatusOr<ReleaseModel> rm =
      ImportReleaseModel(dir.path() + "/beeg_config.json", dir.path() + "/final_model.pt", "",
                         /*fallback_tokenizer_dir=*/dir.path());
  ASSERT_THAT(rm, IsOk());
  EXPECT_THAT(rm->notes, Contains(HasSubstr("tokenizer: none given, using the bundled one")));
  EXPECT_THAT(Import(dir.path(), ""),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no tokenizer")));
  absl::StatusOr<ReleaseModel> no_bundled = ImportReleaseModel(
      dir.path() + "/beeg_config.json", dir.path() + "/final_model.pt", "", dir.File("nowhere"));
  EXPECT_THAT(std::string(no_bundled.status().message()),
              HasSubstr("the bundled one cannot be read"));
  const std::string bundled = SourceDir() + "/data/tokenizer";
  if (std::ifstream(bundled + "/encoder.json").good()) {  // 2048 tokens, the model has 260
    EXPECT_THAT(ImportReleaseModel(dir.path() + "/beeg_config.json", dir.path() + "/final_model.pt",
                                   "", bundled),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr("vocab_size is 260")));
  }
}

class ReleaseExportTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ReleaseExportTest, RoundTripsAndLoadsInPython) {
  TempDir dir;
  MAKE_FIXTURE_OR_SKIP(dir.path(), std::string("--variant ") + GetParam());
  absl::StatusOr<ReleaseModel> rm = Import(dir.path(), dir.path());
  ASSERT_THAT(rm, IsOk());
  const std::string out = dir.File("exported");
  ASSERT_THAT(ExportReleaseModel(rm->model, rm->tokenizer, out), IsOk());

  // Export, then import: the same config and bit-identical weights.
  absl::StatusOr<ReleaseModel> again = Import(out, out);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->model.config().d_pos_emb, rm->model.config().d_pos_emb);
  EXPECT_EQ(again->model.config().attn_sink, rm->model.config().attn_sink);
  EXPECT_EQ(again->model.config().afrac_loctypes, rm->model.config().afrac_loctypes);
  ASSERT_EQ(again->model.parameters().size(), rm->model.parameters().size());
  for (size_t i = 0; i < rm->model.parameters().size(); ++i) {
    const NamedTensor& a = rm->model.parameters()[i];
    const NamedTensor& b = again->model.parameters()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_TRUE(torch::equal(a.tensor, b.tensor)) << a.name;
  }
  EXPECT_EQ(WeightsDigest(again->model), WeightsDigest(rm->model));

  // Export, then torch.load(weights_only=True) in Python: identical tensors, and
  // the release's forward pass on the exported files gives the reference logits.
  RunResult r = Python("check_export.py --exported " + out + " --reference " + dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("check_export: ok"));
}

INSTANTIATE_TEST_SUITE_P(Variants, ReleaseExportTest, ::testing::Values("added", "catpos"));

TEST(ReleaseCliTest, ImportThenExportTorch) {
  TempDir dir;
  MAKE_FIXTURE_OR_SKIP(dir.path(), "--variant catpos");
  const std::string circuit = ::circuit::testing::CircuitBinary();
  const std::string h5 = dir.File("model.h5"), out = dir.File("exported");
  RunResult r = RunCommand(circuit + " import " + dir.path() + " --out " + h5);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("note: ignored (training-only or runtime)"),
                           HasSubstr("wrote " + h5 + ": 2 layers, d_model 32")));
  absl::StatusOr<ModelFile> file = LoadModel(h5);
  ASSERT_THAT(file, IsOk());
  EXPECT_LE(MaxLogitError(file->model, ReadReference(dir.path())), 1e-4);

  r = RunCommand(circuit + " export-torch " + h5 + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Python("check_export.py --exported " + out + " --reference " + dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  // Bad input: one line on stderr, exit 2.
  r = RunCommand(circuit + " import --config " + dir.File("final_model.pt") + " --weights " +
                 dir.File("final_model.pt") + " --out " + dir.File("x.h5"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(::testing::StartsWith("circuit import: "), HasSubstr("not valid JSON")));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = RunCommand(circuit + " import --out " + dir.File("x.h5"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("give a release model DIR"));
}

TEST(ReleaseReadTest, SharedStoragesViewsAndHalfPrecisionLoad) {
  TempDir dir;
  MAKE_FIXTURE_OR_SKIP(dir.path(), "--malformed");
  for (const char* file : {"views.pt", "views_protocol4.pt", "views_torch2.pt"}) {
    SCOPED_TRACE(file);
    absl::StatusOr<std::vector<NamedTensor>> ts = ReadStateDict(dir.File(file));
    ASSERT_THAT(ts, IsOk());
    ASSERT_EQ(ts->size(), 7u);
    const torch::Tensor full = torch::arange(24, torch::kFloat32).view({4, 6});
    EXPECT_TRUE(torch::equal((*ts)[0].tensor, full));
    EXPECT_TRUE(torch::equal((*ts)[1].tensor, full.slice(0, 1, 3)));
    EXPECT_TRUE(torch::equal((*ts)[2].tensor, full.slice(1, 2, 5)));
    EXPECT_TRUE(torch::equal((*ts)[3].tensor, full.t()));
    for (int i = 4; i < 7; ++i) {
      EXPECT_EQ((*ts)[i].tensor.scalar_type(), torch::kFloat32) << (*ts)[i].name;
      EXPECT_TRUE(torch::equal((*ts)[i].tensor, full)) << (*ts)[i].name;
    }
  }

  EXPECT_THAT(
      ReadStateDict(dir.File("not_tensor.pt")),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("entry 'step' is a int, not a tensor")));
  EXPECT_THAT(ReadStateDict(dir.File("list.pt")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("holds a list, not a state dict")));
  EXPECT_THAT(ReadStateDict(dir.File("module.pt")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("is not allowed in a state dict")));
  EXPECT_THAT(ReadStateDict(dir.File("big_endian.pt")),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("big-endian checkpoints are not supported")));
  EXPECT_THAT(ReadStateDict(dir.File("int64.pt")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("LongStorage is not a float type")));
}

}  // namespace
}  // namespace circuit
