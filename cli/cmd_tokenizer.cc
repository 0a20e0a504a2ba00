// circuit tokenizer train|encode: learn a byte-level BPE from Python sources, or try one.
#include <filesystem>
#include <iostream>
#include <iterator>

#include "absl/strings/escaping.h"
#include "args.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/corpus.h"
#include "circuit/core/file_util.h"
#include "circuit/core/tokenizer.h"
#include "command.h"
#include "nlohmann/json.hpp"

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
  ArgParser parser("circuit tokenizer encode [TEXT | --file F | -] [--model M | --tokenizer DIR] [--json]",
                   "Show how a text splits into tokens: one line per token, its id and its bytes "
                   "C-escaped (a newline prints as \\n, a backslash as \\\\), so every token "
                   "reads unambiguously. TEXT takes C escapes (\\n, \\t, \\\\, \\x41); "
                   "--file F and - (standard input) are read as raw bytes.");
  std::string text, file, dir, model;
  bool json = false;
  parser.OptionalPositional("TEXT", "the text, with C escapes; - reads standard input", &text);
  parser.Option("file", "read the text from this file, as it is", &file);
  parser.Option("model", "use this model's tokenizer (default: the bundled model's)", &model);
  parser.Option("tokenizer", "use the tokenizer in this folder (encoder.json, vocab.bpe)", &dir);
  parser.Flag("json", "print {\"ids\": [...], \"tokens\": [...]} instead", &json);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  std::string input;
  if (!file.empty() || text == "-") {
    if (!file.empty() && !text.empty()) return Fail("tokenizer", "give TEXT or --file, not both", kExitUsage);
    if (file.empty()) {
      input.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      absl::StatusOr<std::string> read = ReadFile(file);
      if (!read.ok()) return Fail("tokenizer", std::string(read.status().message()), kExitUsage);
      input = *std::move(read);
    }
  } else {
    std::string error;
    if (!absl::CUnescape(text, &input, &error)) {
      return Fail("tokenizer", "TEXT: bad escape: " + error, kExitUsage);
    }
  }
  if (!dir.empty() && !model.empty()) return Fail("tokenizer", "give --model or --tokenizer, not both", kExitUsage);
  absl::StatusOr<Tokenizer> tok = absl::InternalError("unset");
  if (!dir.empty()) {
    tok = Tokenizer::FromFiles(dir + "/encoder.json", dir + "/vocab.bpe");
  } else {
    absl::StatusOr<ModelFile> m = LoadModel(model.empty() ? DefaultModelPath() : model);
    if (!m.ok()) return Fail("tokenizer", std::string(m.status().message()), kExitUsage);
    tok = std::move(m->tokenizer);
  }
  if (!tok.ok()) return Fail("tokenizer", std::string(tok.status().message()), kExitUsage);
  const std::vector<int32_t> ids = tok->Encode(input);
  if (json) {
    std::vector<std::string> tokens;
    for (int32_t id : ids) tokens.push_back(tok->TokenBytes(id));
    const nlohmann::json j = {{"ids", ids}, {"tokens", tokens}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  for (int32_t id : ids) std::cout << id << "\t\"" << absl::CEscape(tok->TokenBytes(id)) << "\"\n";
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
