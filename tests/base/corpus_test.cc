// BuildCorpus on small temporary folders of .py files: deterministic bytes,
// duplicates dropped, a split that depends only on a file's content, a manifest
// that agrees with the token files, and clear errors for bad inputs.
#include "circuit/core/corpus.h"

#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "circuit/core/file_util.h"
#include "circuit/core/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::circuit::testing::IsOk;
using ::circuit::testing::StatusIs;
using ::testing::HasSubstr;

class CorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(src());
    for (int i = 0; i < 40; ++i) AddSource(absl::StrCat("pkg", i % 3, "/mod_", i, ".py"), i);
    options_.roots = {src()};
    options_.tokenizer_dir = testing::SourceDir() + "/data/tokenizer";
    options_.val_per_mille = 200;
    options_.threads = 2;
  }

  std::string src() const { return dir_.File("src"); }
  void AddSource(const std::string& name, int i) {
    std::filesystem::create_directories(std::filesystem::path(src() + "/" + name).parent_path());
    ASSERT_THAT(WriteFileAtomically(src() + "/" + name,
                                    absl::StrCat("def f_", i, "(x):\n    return x * ", i, " + 'a'\n")),
                IsOk());
  }
  CorpusSummary Build(const std::string& out) {
    options_.out = dir_.File(out);
    absl::StatusOr<CorpusSummary> s = BuildCorpus(options_);
    EXPECT_THAT(s.status(), IsOk());
    return s.ok() ? *s : CorpusSummary{};
  }
  std::map<std::string, std::string> Splits(const std::string& corpus) {
    std::map<std::string, std::string> split;
    const nlohmann::json manifest = nlohmann::json::parse(Bytes(corpus + "/manifest.json"));
    for (const auto& f : manifest.at("files")) {
      split[f["path"].get<std::string>()] = f["split"].get<std::string>();
    }
    return split;
  }
  std::string Bytes(const std::string& path) { return ReadFile(dir_.File(path)).value_or("(missing)"); }

  testing::TempDir dir_;
  CorpusOptions options_;
};

TEST_F(CorpusTest, BuildIsDeterministicAndConsistent) {
  const CorpusSummary a = Build("a");
  options_.threads = 1;
  const CorpusSummary b = Build("b");
  EXPECT_EQ(a.digest, b.digest);
  for (const char* f : {"train.bin", "val.bin", "manifest.json", "encoder.json", "vocab.bpe"}) {
    EXPECT_EQ(Bytes(absl::StrCat("a/", f)), Bytes(absl::StrCat("b/", f))) << f;
  }
  EXPECT_EQ(a.files_found, 40);
  EXPECT_EQ(a.train.files + a.val.files, 40);
  EXPECT_GT(a.train.files, 0);
  EXPECT_GT(a.val.files, 0);

  absl::StatusOr<CorpusSummary> manifest = ReadCorpusManifest(dir_.File("a"));
  ASSERT_THAT(manifest.status(), IsOk());
  EXPECT_EQ(manifest->digest, a.digest);
  EXPECT_EQ(manifest->train.tokens, a.train.tokens);

  absl::StatusOr<Tokenizer> tok = Tokenizer::FromFiles(dir_.File("a/encoder.json"), dir_.File("a/vocab.bpe"));
  ASSERT_THAT(tok.status(), IsOk());
  absl::StatusOr<TokenFile> train = TokenFile::Open(dir_.File("a/train.bin"), tok->vocab_size());
  ASSERT_THAT(train.status(), IsOk());
  EXPECT_EQ(train->size(), a.train.tokens);
  EXPECT_EQ(train->digest(), a.train.digest);
  // Every file ends with <|endoftext|>, and the text decodes back to the sources.
  int eot = 0;
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < train->size(); ++i) {
    if (train->data()[i] == tok->eot_id()) ++eot;
    else ids.push_back(train->data()[i]);
  }
  EXPECT_EQ(eot, a.train.files);
  EXPECT_EQ(static_cast<int64_t>(tok->Decode(ids).size()), a.train.bytes);
}

TEST_F(CorpusTest, DuplicatesAreDroppedAndSplitDependsOnContentOnly) {
  const CorpusSummary before = Build("before");
  // A copy of an existing file, and new files: the old files keep their split.
  std::filesystem::copy_file(src() + "/pkg0/mod_0.py", src() + "/zz_copy.py");
  for (int i = 100; i < 110; ++i) AddSource(absl::StrCat("new/mod_", i, ".py"), i);
  const CorpusSummary after = Build("after");
  EXPECT_EQ(after.duplicates, 1);
  EXPECT_EQ(after.train.files + after.val.files, 50);
  const std::map<std::string, std::string> old_split = Splits("before"), new_split = Splits("after");
  ASSERT_EQ(old_split.size(), 40u);
  ASSERT_EQ(new_split.size(), 50u);
  EXPECT_EQ(new_split.count(src() + "/zz_copy.py"), 0u);  // sorted after pkg0/mod_0.py, so dropped
  for (const auto& [path, split] : old_split) EXPECT_EQ(new_split.at(path), split) << path;
  EXPECT_GE(after.val.files, before.val.files);
}

TEST_F(CorpusTest, BadInputsGiveClearErrors) {
  options_.out = dir_.File("out");
  options_.roots = {dir_.File("nowhere")};
  EXPECT_THAT(BuildCorpus(options_).status(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nowhere")));
  std::filesystem::create_directories(dir_.File("empty"));
  options_.roots = {dir_.File("empty")};
  EXPECT_THAT(BuildCorpus(options_).status(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("no .py files")));
  options_.roots = {src()};
  options_.tokenizer_dir = dir_.File("no-tokenizer");
  EXPECT_THAT(BuildCorpus(options_).status(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("no-tokenizer")));

  EXPECT_THAT(ReadCorpusManifest(dir_.File("empty")).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("manifest.json")));
  ASSERT_THAT(WriteFileAtomically(dir_.File("odd.bin"), "abc"), IsOk());
  EXPECT_THAT(TokenFile::Open(dir_.File("odd.bin")).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("whole number")));
  ASSERT_THAT(WriteFileAtomically(dir_.File("big.bin"), std::string("\xff\xff", 2)), IsOk());
  EXPECT_THAT(TokenFile::Open(dir_.File("big.bin"), 2048).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("outside the vocabulary")));
}

}  // namespace
}  // namespace circuit
