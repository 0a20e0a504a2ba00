// The BPE tokenizer: pre-tokenisation, training, file round trips, bad files,
// and Decode(Encode(f)) == f over every .py file of the Python standard library.
#include "circuit/core/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

const Tokenizer& Bundled() {
  static const Tokenizer* tok = [] {
    const std::string dir = testing::SourceDir() + "/data/tokenizer";
    absl::StatusOr<Tokenizer> t = Tokenizer::FromFiles(dir + "/encoder.json", dir + "/vocab.bpe");
    if (!t.ok()) std::abort();
    return new Tokenizer(std::move(*t));
  }();
  return *tok;
}

std::vector<std::string> Pieces(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view p : PreTokenize(text)) out.emplace_back(p);
  return out;
}

TEST(PreTokenize, FollowsTheTinypythonRule) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Pieces("print(\"hello world\")\n"), (V{"print", "(\"", "hello", " world", "\")\n"}));
  EXPECT_EQ(Pieces("x = [[1, 2]]\n"), (V{"x", " =", " [[", "1", ",", " ", "2", "]]\n"}));
  EXPECT_EQ(Pieces("12345"), (V{"123", "45"}));
  EXPECT_EQ(Pieces("a\n\n    b"), (V{"a", "\n\n", "   ", " b"}));
  EXPECT_EQ(Pieces("end   "), (V{"end", "   "}));
  EXPECT_EQ(Pieces(".add"), (V{".add"}));
  std::string joined;
  for (const std::string& p : Pieces("def f(x):\n\treturn x  # done\n")) joined += p;
  EXPECT_EQ(joined, "def f(x):\n\treturn x  # done\n");
}

TEST(Tokenizer, BundledHasTheQuoteTaskTokens) {
  const Tokenizer& tok = Bundled();
  EXPECT_EQ(tok.vocab_size(), 2048);
  EXPECT_EQ(tok.eot_id(), 2047);
  CIRCUIT_EXPECT_OK(tok.SingleToken("\""));
  CIRCUIT_EXPECT_OK(tok.SingleToken("'"));
  CIRCUIT_EXPECT_OK(tok.SingleToken("(\""));
  EXPECT_THAT(tok.SingleToken("hello world"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tokens for this tokenizer")));
}

TEST(Tokenizer, TrainLearnsFrequentPairsFirst) {
  absl::StatusOr<Tokenizer> tok = Tokenizer::Train({"aaaa aaaa aaaa ab ab"}, 260);
  ASSERT_THAT(tok, testing::IsOk());
  // First merge: the most frequent pair, "a" "a".
  EXPECT_EQ(tok->VocabBpe().substr(0, 18), "#version: 0.2\na a\n");
  EXPECT_EQ(tok->Encode("aaaa").size(), 1u);
  EXPECT_THAT(Tokenizer::Train({"ab"}, 300),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("allows only")));
  EXPECT_THAT(Tokenizer::Train({"ab"}, 100),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(">= 257")));
}

TEST(Tokenizer, FilesRoundTrip) {
  testing::TempDir dir;
  CIRCUIT_ASSERT_OK(Bundled().SaveFiles(dir.path()));
  absl::StatusOr<Tokenizer> again =
      Tokenizer::FromFiles(dir.File("encoder.json"), dir.File("vocab.bpe"));
  ASSERT_THAT(again, testing::IsOk());
  EXPECT_EQ(again->EncoderJson(), Bundled().EncoderJson());
  EXPECT_EQ(again->VocabBpe(), Bundled().VocabBpe());
  const std::string text = "for i in range(10):\n    print(i, 'x')\n";
  EXPECT_EQ(again->Encode(text), Bundled().Encode(text));
}

TEST(Tokenizer, MalformedFilesNameTheProblem) {
  const std::string encoder = Bundled().EncoderJson(), merges = Bundled().VocabBpe();
  EXPECT_THAT(Tokenizer::FromStrings("{", merges),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("encoder.json: not valid JSON")));
  EXPECT_THAT(Tokenizer::FromStrings(R"({"a": 0, "b": 0})", "#version: 0.2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id 0 used twice")));
  EXPECT_THAT(Tokenizer::FromStrings(encoder, merges + "zzzq qqqz\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("names a token missing from encoder.json")));
  EXPECT_THAT(Tokenizer::FromStrings(encoder, merges + "onlyone\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected two tokens")));
  EXPECT_THAT(Tokenizer::FromFiles("/nonexistent/encoder.json", "/nonexistent/vocab.bpe"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("cannot read")));
}

// nlohmann throws out_of_range (not parse_error) for a number it cannot hold;
// that too must be a Status, not an uncaught exception.
TEST(Tokenizer, NumberOutOfRangeIsAnError) {
  EXPECT_THAT(Tokenizer::FromStrings(R"({"a": 1e400})", "#version: 0.2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("encoder.json: ")));
  EXPECT_THAT(Tokenizer::FromStrings(R"({"a": 0, "<|endoftext|>": 1, "b": -1e999})", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("encoder.json: ")));
}

TEST(Tokenizer, RandomBytesRoundTrip) {
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    EXPECT_EQ(Bundled().Decode(Bundled().Encode(s)), s);
  }
}

TEST(Tokenizer, RoundTripsEveryStandardLibraryFile) {
  namespace fs = std::filesystem;
  const std::string root = "/usr/lib/python3.11";
  if (!fs::exists(root)) GTEST_SKIP() << root << " is not installed";
  int files = 0;
  int64_t bytes = 0;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file() || it->path().extension() != ".py") continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    const std::string text = s.str();
    ASSERT_EQ(Bundled().Decode(Bundled().Encode(text)), text) << it->path();
    ++files;
    bytes += static_cast<int64_t>(text.size());
  }
  EXPECT_GT(files, 100);
  RecordProperty("files", files);
  RecordProperty("bytes", static_cast<int>(bytes));
}

}  // namespace
}  // namespace circuit
