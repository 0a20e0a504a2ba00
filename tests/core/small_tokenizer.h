// A 300-token BPE tokenizer learned from generated Python lines, for the core
// tests' checkpoints (GPT and BDH).
#ifndef CIRCUIT_TESTS_CORE_SMALL_TOKENIZER_H_
#define CIRCUIT_TESTS_CORE_SMALL_TOKENIZER_H_

#include <string>
#include <utility>
#include <vector>

#include "circuit/core/status.h"
#include "circuit/core/tokenizer.h"

namespace circuit::testing {

inline Tokenizer SmallTokenizer() {
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) {
    texts.push_back("def f" + std::to_string(i) + "(x, y):\n    return x * " + std::to_string(i) +
                    " + y\nprint('value', f" + std::to_string(i % 17) + "(1, 2))\n");
  }
  absl::StatusOr<Tokenizer> tok = Tokenizer::Train(texts, 300);
  CIRCUIT_CHECK(tok.ok());
  return std::move(*tok);
}

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTS_CORE_SMALL_TOKENIZER_H_
