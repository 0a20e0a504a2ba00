#include "circuit/core/corpus.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <thread>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "circuit/core/digest.h"
#include "circuit/core/file_util.h"
#include "circuit/core/status.h"
#include "circuit/core/tokenizer.h"
#include "nlohmann/json.hpp"

namespace circuit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kFormat[] = "circuit.corpus";
constexpr int kFormatVersion = 1;

struct SourceFile {
  std::string path;
  std::string text;
  std::string digest;
  bool val = false;
  std::vector<uint16_t> tokens;
};

// Tokenizes every file on `threads` threads, each with its own tokenizer copy
// (the encoder's word cache is per instance).
void Tokenize(const Tokenizer& tokenizer, int threads, std::vector<SourceFile>* files) {
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      Tokenizer local = tokenizer;
      for (size_t i = t; i < files->size(); i += threads) {
        SourceFile& f = (*files)[i];
        for (int32_t id : local.Encode(f.text)) f.tokens.push_back(static_cast<uint16_t>(id));
        f.tokens.push_back(static_cast<uint16_t>(local.eot_id()));
      }
    });
  }
  for (std::thread& w : workers) w.join();
}

std::string TokenBytes(const std::vector<SourceFile>& files, bool val) {
  std::string bytes;
  for (const SourceFile& f : files) {
    if (f.val != val) continue;
    for (uint16_t id : f.tokens) {  // little endian, whatever the host
      bytes.push_back(static_cast<char>(id & 0xff));
      bytes.push_back(static_cast<char>(id >> 8));
    }
  }
  return bytes;
}

json SplitJson(const CorpusSplitSummary& s) {
  return {{"files", s.files}, {"bytes", s.bytes}, {"tokens", s.tokens}, {"digest", s.digest}};
}

absl::StatusOr<CorpusSplitSummary> SplitFromJson(const json& j, const std::string& where) {
  CorpusSplitSummary s;
  try {
    s.files = j.at("files").get<int64_t>();
    s.bytes = j.at("bytes").get<int64_t>();
    s.tokens = j.at("tokens").get<int64_t>();
    s.digest = j.at("digest").get<std::string>();
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", e.what()));
  }
  return s;
}

}  // namespace

std::vector<std::string> FindPythonFiles(const std::vector<std::string>& roots) {
  std::vector<std::string> paths;
  for (const std::string& root : roots) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->path().extension() == ".py" && it->is_regular_file(ec)) paths.push_back(it->path().string());
    }
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  return paths;
}

absl::StatusOr<CorpusSummary> BuildCorpus(const CorpusOptions& o) {
  if (o.roots.empty()) return absl::InvalidArgumentError("corpus: no source folders given");
  for (const std::string& root : o.roots) {
    if (!fs::is_directory(root)) return absl::NotFoundError(absl::StrCat(root, ": not a folder"));
  }
  if (o.val_per_mille < 1 || o.val_per_mille > 500) {
    return absl::InvalidArgumentError(
        absl::StrCat("corpus: validation share ", o.val_per_mille, " per mille is outside 1..500"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(Tokenizer tokenizer,
                           Tokenizer::FromFiles(o.tokenizer_dir + "/encoder.json",
                                                o.tokenizer_dir + "/vocab.bpe"));
  if (tokenizer.vocab_size() > 65536) {
    return absl::InvalidArgumentError(absl::StrCat(o.tokenizer_dir, ": ", tokenizer.vocab_size(),
                                                   " tokens do not fit 16-bit token files"));
  }

  CorpusSummary summary;
  std::vector<SourceFile> files;
  std::unordered_set<std::string> seen;
  for (const std::string& path : FindPythonFiles(o.roots)) {
    ++summary.files_found;
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec || size == 0 || static_cast<int64_t>(size) > o.max_file_bytes) {
      ++summary.skipped;
      continue;
    }
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) {
      ++summary.skipped;
      continue;
    }
    SourceFile f{path, *std::move(text)};
    // FNV-1a of the content plus its length: the dedupe key and the split hash.
    Digest hash;
    hash.Update(f.text);
    f.digest = absl::StrCat(hash.Hex(), "-", f.text.size());
    if (!seen.insert(f.digest).second) {
      ++summary.duplicates;
      continue;
    }
    f.val = hash.value() % 1000 < static_cast<uint64_t>(o.val_per_mille);
    files.push_back(std::move(f));
  }
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat("corpus: no .py files under ", o.roots.front(),
                                            o.roots.size() > 1 ? " and the other roots" : ""));
  }

  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  Tokenize(tokenizer, threads, &files);

  json manifest_files = json::array();
  for (const SourceFile& f : files) {
    CorpusSplitSummary& s = f.val ? summary.val : summary.train;
    ++s.files;
    s.bytes += static_cast<int64_t>(f.text.size());
    s.tokens += static_cast<int64_t>(f.tokens.size());
    manifest_files.push_back({{"path", f.path},
                              {"split", f.val ? "val" : "train"},
                              {"bytes", f.text.size()},
                              {"tokens", f.tokens.size()},
                              {"digest", f.digest}});
  }
  if (summary.train.files == 0 || summary.val.files == 0) {
    return absl::InvalidArgumentError(absl::StrCat("corpus: ", files.size(),
                                                   " files are too few for both a train and a validation split"));
  }

  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(o.out, ": cannot create: ", ec.message()));
  // An old manifest would vouch for token files that are about to change.
  fs::remove(fs::path(o.out) / "manifest.json", ec);

  Digest corpus_digest;
  for (bool val : {false, true}) {
    const std::string bytes = TokenBytes(files, val);
    CorpusSplitSummary& s = val ? summary.val : summary.train;
    s.digest = DigestHex(bytes);
    corpus_digest.Update(bytes);
    CIRCUIT_RETURN_IF_ERROR(WriteFileAtomically(o.out + (val ? "/val.bin" : "/train.bin"), bytes));
  }
  summary.digest = corpus_digest.Hex();
  CIRCUIT_RETURN_IF_ERROR(WriteFileAtomically(o.out + "/encoder.json", tokenizer.EncoderJson()));
  CIRCUIT_RETURN_IF_ERROR(WriteFileAtomically(o.out + "/vocab.bpe", tokenizer.VocabBpe()));

  const json manifest = {{"format", kFormat},
                         {"format_version", kFormatVersion},
                         {"digest", summary.digest},
                         {"tokenizer_digest", DigestHex(tokenizer.EncoderJson() + tokenizer.VocabBpe())},
                         {"vocab_size", tokenizer.vocab_size()},
                         {"roots", o.roots},
                         {"val_per_mille", o.val_per_mille},
                         {"max_file_bytes", o.max_file_bytes},
                         {"files_found", summary.files_found},
                         {"duplicates", summary.duplicates},
                         {"skipped", summary.skipped},
                         {"train", SplitJson(summary.train)},
                         {"val", SplitJson(summary.val)},
                         {"files", manifest_files}};
  CIRCUIT_RETURN_IF_ERROR(WriteFileAtomically(o.out + "/manifest.json", manifest.dump(1) + "\n"));
  return summary;
}

absl::StatusOr<CorpusSummary> ReadCorpusManifest(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat(path, ": missing; build the corpus with `circuit corpus build`"));
  }
  const json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": not JSON"));
  if (j.value("format", "") != kFormat) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": format is not \"", kFormat, "\""));
  }
  if (j.value("format_version", 0) < 1 || j.value("format_version", 0) > kFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": unsupported format_version"));
  }
  CorpusSummary s;
  s.digest = j.value("digest", "");
  s.files_found = j.value("files_found", int64_t{0});
  s.duplicates = j.value("duplicates", int64_t{0});
  s.skipped = j.value("skipped", int64_t{0});
  if (!j.contains("train") || !j.contains("val")) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": missing \"train\" or \"val\""));
  }
  CIRCUIT_ASSIGN_OR_RETURN(s.train, SplitFromJson(j["train"], path + " train"));
  CIRCUIT_ASSIGN_OR_RETURN(s.val, SplitFromJson(j["val"], path + " val"));
  return s;
}

absl::StatusOr<TokenFile> TokenFile::Open(const std::string& path, int vocab_size) {
  CIRCUIT_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  if (bytes.size() % 2 != 0) {
    return absl::DataLossError(absl::StrCat(path, ": ", bytes.size(), " bytes is not a whole number of 16-bit ids"));
  }
  auto tokens = std::make_shared<std::vector<uint16_t>>(bytes.size() / 2);
  for (size_t i = 0; i < tokens->size(); ++i) {
    const auto lo = static_cast<unsigned char>(bytes[2 * i]), hi = static_cast<unsigned char>(bytes[2 * i + 1]);
    const uint16_t id = static_cast<uint16_t>(lo | (hi << 8));
    if (vocab_size > 0 && id >= vocab_size) {
      return absl::DataLossError(absl::StrCat(path, ": token ", i, " is id ", id, ", outside the vocabulary of ",
                                              vocab_size));
    }
    (*tokens)[i] = id;
  }
  TokenFile f;
  f.digest_ = DigestHex(bytes);
  f.tokens_ = std::move(tokens);
  return f;
}

}  // namespace circuit
