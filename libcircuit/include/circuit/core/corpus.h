// The training corpus: Python sources installed on the machine, deduplicated,
// split into train/validation by file, tokenized into compact token files.
// Torch-free.
//
//   CorpusOptions o;
//   o.roots = {"/usr/lib/python3.11"};
//   o.tokenizer_dir = "data/tokenizer";
//   o.out = "corpus";
//   CIRCUIT_ASSIGN_OR_RETURN(CorpusSummary s, BuildCorpus(o));
//   CIRCUIT_ASSIGN_OR_RETURN(TokenFile val, TokenFile::Open("corpus/val.bin"));
//
// A corpus folder holds train.bin and val.bin (little-endian uint16 token ids,
// every file followed by <|endoftext|>), manifest.json (format "circuit.corpus":
// file list with split, bytes, tokens and digest; per-split counts and token-file
// digests) and the tokenizer's encoder.json and vocab.bpe. Every file is written
// under a temporary name and renamed; manifest.json comes last, so a folder with a
// manifest is complete. See docs/training.md.
#ifndef CIRCUIT_CORE_CORPUS_H_
#define CIRCUIT_CORE_CORPUS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace circuit {

struct CorpusOptions {
  std::vector<std::string> roots;  // folders searched recursively for *.py
  std::string tokenizer_dir;       // encoder.json + vocab.bpe
  std::string out;                 // the corpus folder (created)
  int val_per_mille = 30;          // share of files (by content hash) in the validation split
  int64_t max_file_bytes = 1 << 20;  // larger files (generated tables, data) are skipped
  int threads = 0;                 // tokenizer threads; 0 = all cores
};

struct CorpusSplitSummary {
  int64_t files = 0;
  int64_t bytes = 0;
  int64_t tokens = 0;
  std::string digest;  // of the token file's bytes
};

struct CorpusSummary {
  int64_t files_found = 0;
  int64_t duplicates = 0;  // files whose content equals an earlier file's
  int64_t skipped = 0;     // too large, empty or unreadable
  CorpusSplitSummary train;
  CorpusSplitSummary val;
  std::string digest;      // of both token files: names the corpus in model provenance
};

// Gathers *.py under the roots in sorted path order, drops exact duplicates (the
// first path wins), assigns each file to val when its content hash mod 1000 <
// val_per_mille (stable across machines and file orders), tokenizes in parallel
// and writes the folder. Deterministic: the same sources give the same bytes.
absl::StatusOr<CorpusSummary> BuildCorpus(const CorpusOptions& options);

// The *.py files under `roots` (recursively, symlinked folders not followed),
// sorted, without repeats. Unreadable folders are skipped.
std::vector<std::string> FindPythonFiles(const std::vector<std::string>& roots);

// Reads manifest.json of a built corpus; errors name the file and field.
absl::StatusOr<CorpusSummary> ReadCorpusManifest(const std::string& dir);

// A token file held in memory. Open checks that the size is a whole number of
// ids; `vocab_size` > 0 also checks every id.
class TokenFile {
 public:
  static absl::StatusOr<TokenFile> Open(const std::string& path, int vocab_size = 0);
  int64_t size() const { return static_cast<int64_t>(tokens_->size()); }
  const uint16_t* data() const { return tokens_->data(); }
  const std::string& digest() const { return digest_; }

 private:
  std::shared_ptr<const std::vector<uint16_t>> tokens_;
  std::string digest_;
};

}  // namespace circuit

#endif  // CIRCUIT_CORE_CORPUS_H_
