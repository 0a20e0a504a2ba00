// Byte-level BPE tokenizer in the GPT-2 `encoder.json` + `vocab.bpe` format, with
// the tinypython pre-tokenisation rule (PAPER.md §1.4). Torch-free.
//
//   CIRCUIT_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::FromFiles("encoder.json", "vocab.bpe"));
//   std::vector<int32_t> ids = tok.Encode("print('hi')\n");
//   assert(tok.Decode(ids) == "print('hi')\n");
#ifndef CIRCUIT_CORE_TOKENIZER_H_
#define CIRCUIT_CORE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace circuit {

class Tokenizer {
 public:
  inline static constexpr std::string_view kEndOfText = "<|endoftext|>";

  // Loads the two GPT-2 files. Errors name the file and the bad entry.
  static absl::StatusOr<Tokenizer> FromFiles(const std::string& encoder_json_path,
                                             const std::string& vocab_bpe_path);
  // Same, from the files' contents (as stored in checkpoints under /tokenizer/).
  static absl::StatusOr<Tokenizer> FromStrings(const std::string& encoder_json,
                                               const std::string& vocab_bpe);
  // Learns byte-level BPE merges from `texts` until the vocabulary has
  // `vocab_size` entries: 256 byte tokens, merges, and <|endoftext|> as the last id.
  static absl::StatusOr<Tokenizer> Train(const std::vector<std::string>& texts, int vocab_size);

  Tokenizer(const Tokenizer&);
  Tokenizer& operator=(const Tokenizer&);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Encodes any bytes; the special <|endoftext|> text is encoded as plain bytes.
  std::vector<int32_t> Encode(std::string_view text) const;
  // Inverse of Encode: Decode(Encode(s)) == s for every byte string s.
  std::string Decode(absl::Span<const int32_t> ids) const;
  // The id of `text` when it encodes to exactly one token, else an error that
  // shows how it splits.
  absl::StatusOr<int32_t> SingleToken(std::string_view text) const;
  // The bytes of one token.
  std::string TokenBytes(int32_t id) const;

  int vocab_size() const;
  int32_t eot_id() const;  // <|endoftext|>, the last id

  // Serialisations in the GPT-2 file formats.
  std::string EncoderJson() const;
  std::string VocabBpe() const;
  absl::Status SaveFiles(const std::string& directory) const;  // encoder.json, vocab.bpe

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Splits text into pre-tokens by the tinypython rule; exposed for tests.
std::vector<std::string_view> PreTokenize(std::string_view text);

}  // namespace circuit

#endif  // CIRCUIT_CORE_TOKENIZER_H_
