// circuit tokenizer train|encode: learn a byte-level BPE from Python sources, or try one.
#include <filesystem>
#include <iostream>

#include "args.h"
#include "circuit/core/corpus.h"
#include "circuit/core/file_util.h"
#include "circuit/core/tokenizer.h"
#include "command.h"

namespace circuit::cli {
namespace {

// The .py files under `roots` below 1 MB, in sorted path order, read until `max_bytes`.
std::vector<std::string> ReadPythonFiles(const std::vector<std::string>& roots, int64_t max_bytes) {
  std::vector<std::string> texts;
  int64_t total = 0;
  for (const std::string& path : FindPythonFiles(roots)) {
    std::error_code ec;
    if (std::filesystem::file_size(path, ec) >= (1 << 20) || ec) continue;
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) continue;
    total += static_cast<int64_t>(text->size());
    texts.push_back(*std::move(text));
    if (total >= max_bytes) break;
  }
  return texts;
}

int RunTrain(int argc, char** argv) {
  ArgParser parser("circuit tokenizer train --out DIR [--root R ...]",
                   "Learn a byte-level BPE (GPT-2 file format, tinypython pre-tokenisation) from "
                   "the .py files under the roots, in sorted path order.");
  std::string out;
  int vocab = 2048;
  int64_t max_mb = 8;
  std::vector<std::string> roots;
  parser.Option("out", "folder for encoder.json and vocab.bpe", &out);
  parser.Option("vocab", "vocabulary size, <|endoftext|> included", &vocab);
  parser.Option("max-mb", "megabytes of source to learn from", &max_mb);
  parser.List("root", "folder to search for .py files (default: /usr/lib/python3.11)", &roots);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (out.empty()) return Fail("tokenizer", "--out is required", kExitUsage);
  if (roots.empty()) roots.push_back("/usr/lib/python3.11");
  std::vector<std::string> texts = ReadPythonFiles(roots, max_mb << 20);
  if (texts.empty()) return Fail("tokenizer", "no .py files under the roots", kExitUsage);
  absl::StatusOr<Tokenizer> tok = Tokenizer::Train(texts, vocab);
  if (!tok.ok()) return Fail("tokenizer", std::string(tok.status().message()), kExitUsage);
  if (absl::Status s = tok->SaveFiles(out); !s.ok()) {
    return Fail("tokenizer", std::string(s.message()), kExitFailure);
  }
  std::cout << "learned " << tok->vocab_size() << " tokens from " << texts.size()
            << " files; wrote " << out << "/encoder.json and vocab.bpe\n";
  return kExitOk;
}

int RunEncode(int argc, char** argv) {
  ArgParser parser("circuit tokenizer encode TEXT", "Show how a text splits into tokens.");
  std::string text, dir = DataPath("tokenizer");
  parser.Positional("TEXT", "the text (\\n is a newline)", &text);
  parser.Option("tokenizer", "folder with encoder.json and vocab.bpe", &dir);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  std::string unescaped;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
      unescaped += '\n';
      ++i;
    } else {
      unescaped += text[i];
    }
  }
  absl::StatusOr<Tokenizer> tok = Tokenizer::FromFiles(dir + "/encoder.json", dir + "/vocab.bpe");
  if (!tok.ok()) return Fail("tokenizer", std::string(tok.status().message()), kExitUsage);
  for (int32_t id : tok->Encode(unescaped)) {
    std::string shown;
    for (char c : tok->TokenBytes(id)) shown += c == '\n' ? std::string("\\n") : std::string(1, c);
    std::cout << id << "\t'" << shown << "'\n";
  }
  return kExitOk;
}

int RunTokenizer(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "train") return RunTrain(argc - 1, argv + 1);
  if (argc >= 2 && std::string(argv[1]) == "encode") return RunEncode(argc - 1, argv + 1);
  return Fail("tokenizer", "expected 'train' or 'encode' (see circuit tokenizer train --help)",
              kExitUsage);
}

}  // namespace

CIRCUIT_COMMAND(tokenizer, "tokenizer", "learn a BPE tokenizer (train) or try one (encode)",
                RunTokenizer);

}  // namespace circuit::cli
