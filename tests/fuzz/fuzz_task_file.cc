// Fuzz target: a user task file (JSON Lines) through ReadTaskFile, then
// BuildTask with the bundled tokenizer (the tokenizer checks and the splits).
#include "circuit/core/task.h"
#include "circuit/core/tokenizer.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const circuit::Tokenizer* tokenizer = [] {
    auto t = circuit::Tokenizer::FromFiles(CIRCUIT_SOURCE_DIR "/data/tokenizer/encoder.json",
                                           CIRCUIT_SOURCE_DIR "/data/tokenizer/vocab.bpe");
    return t.ok() ? new circuit::Tokenizer(std::move(*t)) : nullptr;
  }();
  if (tokenizer == nullptr) __builtin_trap();  // the bundled tokenizer must load
  const std::string path = circuit::fuzz::WriteInput(data, size, ".jsonl");
  if (!circuit::ReadTaskFile(path).ok()) return 0;
  circuit::TaskOptions options;
  options.n_ctx = 64;
  options.n_train = 4;
  options.n_validation = 2;
  options.n_test = 2;
  (void)circuit::BuildTask(circuit::kTaskFilePrefix + path, *tokenizer, options);
  return 0;
}
