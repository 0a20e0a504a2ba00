// circuit corpus build|info: the training corpus from the machine's Python sources.
#include <filesystem>
#include <iostream>

#include "absl/strings/str_format.h"
#include "args.h"
#include "circuit/core/corpus.h"
#include "command.h"

namespace circuit::cli {
namespace {

void PrintSummary(const std::string& dir, const CorpusSummary& s) {
  std::cout << absl::StrFormat("corpus      %s (digest %s)\n", dir, s.digest);
  std::cout << absl::StrFormat("files       %d found, %d duplicates dropped, %d skipped\n", s.files_found,
                               s.duplicates, s.skipped);
  for (const auto& [name, split] : {std::pair{"train", s.train}, std::pair{"val", s.val}}) {
    std::cout << absl::StrFormat("%-11s %d files, %.1f MB, %d tokens (%.2f bytes/token)\n", name, split.files,
                                 split.bytes / 1e6, split.tokens,
                                 split.tokens > 0 ? static_cast<double>(split.bytes) / split.tokens : 0.0);
  }
}

int RunBuild(int argc, char** argv) {
  ArgParser parser("circuit corpus build --out DIR [--root R ...]",
                   "Gather the .py files under the roots (default: the Debian Python standard library "
                   "and the packages scripts/bootstrap installs), drop duplicates, split train/val by a "
                   "hash of each file's content, and tokenize into DIR/train.bin and DIR/val.bin with "
                   "DIR/manifest.json. Deterministic; nothing is downloaded.");
  CorpusOptions o;
  o.tokenizer_dir = DataPath("tokenizer");
  parser.Option("out", "corpus folder to write", &o.out);
  parser.List("root", "folder searched for .py files (repeatable)", &o.roots);
  parser.Option("tokenizer", "folder with encoder.json and vocab.bpe", &o.tokenizer_dir);
  parser.Option("val-per-mille", "share of files in the validation split, per mille", &o.val_per_mille);
  int64_t max_file_kb = 1024;
  parser.Option("max-file-kb", "skip larger files (generated tables, data)", &max_file_kb);
  parser.Option("threads", "tokenizer threads (0: all cores)", &o.threads);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (o.out.empty()) return Fail("corpus", "--out is required", kExitUsage);
  o.max_file_bytes = max_file_kb * 1024;
  if (o.roots.empty()) {
    for (const char* root : {"/usr/lib/python3.11", "/usr/lib/python3/dist-packages"}) {
      if (std::filesystem::is_directory(root)) o.roots.push_back(root);
    }
  }
  absl::StatusOr<CorpusSummary> s = BuildCorpus(o);
  if (!s.ok()) {
    return Fail("corpus", std::string(s.status().message()),
                absl::IsResourceExhausted(s.status()) || absl::IsPermissionDenied(s.status()) ? kExitFailure
                                                                                                : kExitUsage);
  }
  PrintSummary(o.out, *s);
  return kExitOk;
}

int RunInfo(int argc, char** argv) {
  ArgParser parser("circuit corpus info DIR", "Summarise a built corpus from its manifest.");
  std::string dir;
  parser.Positional("DIR", "corpus folder", &dir);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  absl::StatusOr<CorpusSummary> s = ReadCorpusManifest(dir);
  if (!s.ok()) return Fail("corpus", std::string(s.status().message()), kExitUsage);
  PrintSummary(dir, *s);
  return kExitOk;
}

int RunCorpus(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "build") return RunBuild(argc - 1, argv + 1);
  if (argc >= 2 && std::string(argv[1]) == "info") return RunInfo(argc - 1, argv + 1);
  return Fail("corpus", "expected 'build' or 'info' (see circuit corpus build --help)", kExitUsage);
}

}  // namespace

CIRCUIT_COMMAND(corpus, "corpus", "build the training corpus from installed Python sources (build, info)",
                RunCorpus);

}  // namespace circuit::cli
