#include "train_corpus.h"

#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "circuit/core/digest.h"
#include "circuit/core/status.h"

namespace circuit::internal {
namespace {

// PROVISIONAL until circuit/core/corpus.h lands: raw little-endian uint16 ids.
absl::StatusOr<std::shared_ptr<std::vector<uint16_t>>> ReadTokens(const std::string& path,
                                                                  Digest* digest) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  digest->Update(bytes);
  auto tokens = std::make_shared<std::vector<uint16_t>>(bytes.size() / 2);
  std::memcpy(tokens->data(), bytes.data(), tokens->size() * 2);
  return tokens;
}

absl::StatusOr<std::unique_ptr<WindowSampler>> Sampler(const std::string& path, int64_t window,
                                                      Digest* digest) {
  CIRCUIT_ASSIGN_OR_RETURN(std::shared_ptr<std::vector<uint16_t>> tokens, ReadTokens(path, digest));
  const int64_t n = static_cast<int64_t>(tokens->size());
  if (n < window) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", n, " tokens, fewer than one window of ",
                                                   window, " (n_ctx + 1)"));
  }
  return std::make_unique<WindowSampler>(n, window, [tokens](int64_t offset, int64_t count, int64_t* out) {
    for (int64_t i = 0; i < count; ++i) out[i] = (*tokens)[offset + i];
  });
}

}  // namespace

absl::StatusOr<TrainCorpus> OpenTrainCorpus(const std::string& dir, const std::string& tokenizer_dir,
                                            const ModelConfig& config) {
  TrainCorpus c;
  Digest digest;
  const int64_t window = config.n_ctx + 1;
  CIRCUIT_ASSIGN_OR_RETURN(c.train, Sampler(dir + "/train.bin", window, &digest));
  CIRCUIT_ASSIGN_OR_RETURN(c.val, Sampler(dir + "/val.bin", window, &digest));
  c.digest = digest.Hex();
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

}  // namespace circuit::internal
