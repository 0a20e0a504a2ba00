// Fuzz target: tokenizer files. The input is encoder.json, a NUL byte, then
// vocab.bpe; a tokenizer that loads then encodes and decodes a fixed text and
// its own files.
#include <cstring>

#include "circuit/core/tokenizer.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input = circuit::fuzz::AsString(data, size);
  const size_t nul = input.find('\0');
  const std::string encoder = input.substr(0, nul);
  const std::string merges = nul == std::string::npos ? "" : input.substr(nul + 1);
  absl::StatusOr<circuit::Tokenizer> t = circuit::Tokenizer::FromStrings(encoder, merges);
  if (!t.ok()) return 0;
  for (const std::string& text : {std::string("def f(x):\n    return 'a' + \"b\"\n"), merges}) {
    std::vector<int32_t> ids = t->Encode(text);
    (void)t->Decode(ids);
  }
  (void)t->EncoderJson();
  (void)t->VocabBpe();
  return 0;
}
