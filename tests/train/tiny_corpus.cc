#include "tiny_corpus.h"

#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "circuit/core/corpus.h"
#include "circuit/core/file_util.h"
#include "circuit/core/status.h"
#include "circuit/core/tokenizer.h"

namespace circuit::testing {
namespace {

// Deterministic snippets with strings in both quote types and simple structure.
std::vector<std::string> Snippets(int count, int offset) {
  const char* names[] = {"alpha", "beta", "gamma", "delta", "value", "item"};
  std::vector<std::string> out;
  for (int i = offset; i < offset + count; ++i) {
    const std::string name = names[i % 6];
    const char q = i % 2 == 0 ? '"' : '\'';
    out.push_back(absl::StrCat("def ", name, "_", i % 7, "(x):\n    print(", std::string(1, q),
                               name, " ", i % 10, std::string(1, q), ")\n    return x + ", i % 5,
                               "\n\n"));
  }
  return out;
}

}  // namespace

void WriteTinyCorpus(const std::string& dir) {
  const std::vector<std::string> texts = Snippets(460, 0);
  absl::StatusOr<Tokenizer> tok = Tokenizer::Train(texts, kTinyVocab);
  CIRCUIT_CHECK(tok.ok());
  CIRCUIT_CHECK(tok->SaveFiles(dir + "/tokenizer").ok());
  std::filesystem::create_directories(dir + "/src");
  for (size_t i = 0; i < texts.size(); ++i) {
    CIRCUIT_CHECK(WriteFileAtomically(absl::StrCat(dir, "/src/snippet_", i, ".py"), texts[i]).ok());
  }
  CorpusOptions o;
  o.roots = {dir + "/src"};
  o.tokenizer_dir = dir + "/tokenizer";
  o.out = dir;
  o.val_per_mille = 150;
  o.threads = 1;
  CIRCUIT_CHECK(BuildCorpus(o).ok());
}

}  // namespace circuit::testing
