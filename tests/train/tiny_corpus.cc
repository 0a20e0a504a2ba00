#include "tiny_corpus.h"

#include <cstdint>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
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

void WriteBin(const std::string& path, const Tokenizer& tok, const std::vector<std::string>& texts) {
  std::vector<uint16_t> ids;
  for (const std::string& t : texts) {
    for (int32_t id : tok.Encode(t)) ids.push_back(static_cast<uint16_t>(id));
    ids.push_back(static_cast<uint16_t>(tok.eot_id()));
  }
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(ids.data()), static_cast<std::streamsize>(ids.size() * 2));
  CIRCUIT_CHECK(out.good());
}

}  // namespace

void WriteTinyCorpus(const std::string& dir) {
  const std::vector<std::string> train = Snippets(400, 0), val = Snippets(60, 1000);
  absl::StatusOr<Tokenizer> tok = Tokenizer::Train(train, kTinyVocab);
  CIRCUIT_CHECK(tok.ok());
  CIRCUIT_CHECK(tok->SaveFiles(dir).ok());
  WriteBin(dir + "/train.bin", *tok, train);
  WriteBin(dir + "/val.bin", *tok, val);
}

}  // namespace circuit::testing
