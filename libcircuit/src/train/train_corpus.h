// The trainer's view of a built corpus (circuit/core/corpus.h): window samplers
// over train.bin and val.bin, the corpus digest, and the tokenizer. Private.
#ifndef CIRCUIT_CORE_SRC_TRAIN_CORPUS_H_
#define CIRCUIT_CORE_SRC_TRAIN_CORPUS_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "circuit/core/checkpoint.h"  // TrainingInfo
#include "circuit/core/config.h"
#include "circuit/core/tokenizer.h"
#include "train/train_data.h"

namespace circuit::internal {

struct TrainCorpus {
  std::unique_ptr<WindowSampler> train;  // windows of n_ctx + 1 tokens
  std::unique_ptr<WindowSampler> val;
  std::string digest;
  std::optional<Tokenizer> tokenizer;
};

// Opens `dir`; the tokenizer comes from `tokenizer_dir` when given, else from the
// corpus. Errors: no manifest, token files that disagree with it, ids outside
// the vocabulary, a tokenizer whose size differs from config.vocab_size, or a
// split shorter than one window.
absl::StatusOr<TrainCorpus> OpenTrainCorpus(const std::string& dir,
                                            const std::string& tokenizer_dir,
                                            const ModelConfig& config);

// A run that starts from the model at `init_path` (--init, either architecture):
// the model's tokenizer must be the corpus's, else InvalidArgument naming both.
absl::Status RequireCorpusTokenizer(const TrainCorpus& corpus, const Tokenizer& model_tokenizer,
                                    const std::string& init_path, const std::string& corpus_dir);
// Its TrainingInfo::init_from: "<file> digest <d>, <steps> steps, <tokens> tokens".
std::string InitFromText(const std::string& init_path, const std::string& digest,
                         const TrainingInfo& training);

}  // namespace circuit::internal

#endif  // CIRCUIT_CORE_SRC_TRAIN_CORPUS_H_
