#include "train/train_corpus.h"

#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "circuit/core/corpus.h"
#include "circuit/core/status.h"

namespace circuit::internal {
namespace {

// Opens one split's token file and checks it against the manifest's figures.
absl::StatusOr<std::unique_ptr<WindowSampler>> Sampler(const std::string& path,
                                                      const CorpusSplitSummary& expected,
                                                      const ModelConfig& config) {
  CIRCUIT_ASSIGN_OR_RETURN(TokenFile tokens, TokenFile::Open(path, config.vocab_size));
  if (tokens.size() != expected.tokens || tokens.digest() != expected.digest) {
    return absl::DataLossError(absl::StrCat(path, ": does not match manifest.json (", tokens.size(),
                                            " tokens, digest ", tokens.digest(), "; expected ",
                                            expected.tokens, ", ", expected.digest, "); rebuild the corpus"));
  }
  const int64_t window = config.n_ctx + 1;
  if (tokens.size() < window) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", tokens.size(),
                                                   " tokens, fewer than one window of ", window,
                                                   " (n_ctx + 1)"));
  }
  return std::make_unique<WindowSampler>(tokens.size(), window,
                                         [tokens](int64_t offset, int64_t count, int64_t* out) {
                                           const uint16_t* p = tokens.data() + offset;
                                           for (int64_t i = 0; i < count; ++i) out[i] = p[i];
                                         });
}

}  // namespace

absl::StatusOr<TrainCorpus> OpenTrainCorpus(const std::string& dir, const std::string& tokenizer_dir,
                                            const ModelConfig& config) {
  CIRCUIT_ASSIGN_OR_RETURN(CorpusSummary manifest, ReadCorpusManifest(dir));
  TrainCorpus c;
  CIRCUIT_ASSIGN_OR_RETURN(c.train, Sampler(dir + "/train.bin", manifest.train, config));
  CIRCUIT_ASSIGN_OR_RETURN(c.val, Sampler(dir + "/val.bin", manifest.val, config));
  c.digest = manifest.digest;
  const std::string tdir = tokenizer_dir.empty() ? dir : tokenizer_dir;
  CIRCUIT_ASSIGN_OR_RETURN(Tokenizer tok,
                           Tokenizer::FromFiles(tdir + "/encoder.json", tdir + "/vocab.bpe"));
  if (tok.vocab_size() != config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(tdir, ": tokenizer has ", tok.vocab_size(),
                                                   " tokens, the model's vocab is ", config.vocab_size));
  }
  c.tokenizer = std::move(tok);
  return c;
}

absl::Status RequireCorpusTokenizer(const TrainCorpus& corpus, const Tokenizer& model_tokenizer,
                                    const std::string& init_path, const std::string& corpus_dir) {
  if (corpus.tokenizer->EncoderJson() != model_tokenizer.EncoderJson() ||
      corpus.tokenizer->VocabBpe() != model_tokenizer.VocabBpe()) {
    return absl::InvalidArgumentError(absl::StrCat(
        init_path, ": the model's tokenizer differs from the corpus's (", corpus_dir, ")"));
  }
  return absl::OkStatus();
}

std::string InitFromText(const std::string& init_path, const std::string& digest,
                         const TrainingInfo& training) {
  return absl::StrCat(std::filesystem::path(init_path).filename().string(), " digest ", digest,
                      ", ", training.steps, " steps, ", training.tokens, " tokens");
}

}  // namespace circuit::internal
