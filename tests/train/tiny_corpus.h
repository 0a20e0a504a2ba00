// A tiny corpus for trainer tests, built in a temporary directory from a few
// hundred generated Python snippets (dir/src/*.py) by BuildCorpus, with a
// 300-token tokenizer trained on them. Torch-free.
#ifndef CIRCUIT_TESTS_TRAIN_TINY_CORPUS_H_
#define CIRCUIT_TESTS_TRAIN_TINY_CORPUS_H_

#include <string>

namespace circuit::testing {

inline constexpr int kTinyVocab = 300;

// Writes the corpus (and the tokenizer files) into `dir`. Aborts on failure.
void WriteTinyCorpus(const std::string& dir);

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTS_TRAIN_TINY_CORPUS_H_
