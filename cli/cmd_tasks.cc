// circuit tasks: the built-in binary next-token tasks, each with its
// description, candidate tokens and one example pair.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "args.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/task.h"
#include "command.h"
#include "nlohmann/json.hpp"

namespace circuit::cli {
namespace {

std::string Quoted(const std::string& text) { return "\"" + absl::CEscape(text) + "\""; }

// The last line of a prompt, at most `width` characters, with "…" when cut.
std::string Tail(const std::string& prompt, size_t width = 44) {
  const size_t nl = prompt.rfind('\n');
  std::string line = nl == std::string::npos ? prompt : prompt.substr(nl + 1);
  if (line.empty() && nl != std::string::npos) {  // the prompt ends with a newline
    const size_t prev = prompt.rfind('\n', nl - 1);
    line = prompt.substr(prev == std::string::npos ? 0 : prev + 1);
  }
  if (line.size() > width) line = "..." + line.substr(line.size() - width);
  return absl::CEscape(line);
}

std::string Candidates(const std::vector<std::string>& variant) {
  std::vector<std::string> shown;
  for (const std::string& c : variant) shown.push_back(c.empty() ? "<name>" : Quoted(c));
  return absl::StrJoin(shown, " vs ");
}

// One JSON line per example of the chosen splits, in split order: the prompts
// `circuit extract --seed S --pairs N` builds, as text and token ids.
int Dump(const std::string& name, const std::string& model_path, const std::string& split,
         int pairs, uint64_t seed) {
  if (split != "all" && split != "train" && split != "validation" && split != "test") {
    return Fail("tasks", "--split must be all, train, validation or test, got '" + split + "'",
                kExitUsage);
  }
  if (pairs < 1) return Fail("tasks", "--pairs must be >= 1", kExitUsage);
  absl::StatusOr<ModelFile> file = LoadModel(model_path);
  if (!file.ok()) return Fail("tasks", std::string(file.status().message()), kExitUsage);
  absl::StatusOr<TaskData> task =
      BuildTask(name, file->tokenizer, PruningSplits(pairs, file->model.config().n_ctx, seed));
  if (!task.ok()) return Fail("tasks", std::string(task.status().message()), kExitUsage);
  const Tokenizer& tok = file->tokenizer;
  const std::pair<const char*, const std::vector<TaskExample>*> splits[] = {
      {"train", &task->train}, {"validation", &task->validation}, {"test", &task->test}};
  for (const auto& [split_name, examples] : splits) {
    if (split != "all" && split != split_name) continue;
    for (size_t i = 0; i < examples->size(); ++i) {
      const TaskExample& ex = (*examples)[i];
      nlohmann::json line = {{"task", task->name},
                             {"split", split_name},
                             {"index", i},
                             {"text", tok.Decode(ex.tokens)},
                             {"tokens", ex.tokens},
                             {"correct", ex.correct},
                             {"correct_text", tok.TokenBytes(ex.correct)},
                             {"alternative", ex.alternative},
                             {"alternative_text", tok.TokenBytes(ex.alternative)}};
      if (task->paired) {
        line["pair"] = i / 2;
        line["role"] = i % 2 == 0 ? "prompt" : "twin";
      }
      // A prompt cut to n_ctx may start inside a UTF-8 sequence: replace, never abort.
      std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    }
  }
  return kExitOk;
}

int RunTasks(int argc, char** argv) {
  ArgParser parser("circuit tasks [--json] | circuit tasks --dump NAME [--split S] [--pairs N] [--seed S]",
                   "List the built-in tasks: what each tests, its candidate tokens, and an example "
                   "pair (the end of each prompt and its answer). User tasks: --task "
                   "file:path.jsonl (docs/tasks.md). With --dump, write one task's built splits "
                   "as JSON lines (text, token ids, answers): the prompts `circuit extract` uses "
                   "with the same --seed and --pairs.");
  bool json = false;
  uint64_t seed = 0;
  std::string dump, split = "all", model = DefaultModelPath();
  int pairs = 512;
  parser.Flag("json", "print one JSON array with full example prompts", &json);
  parser.Option("seed", "seed of the example pairs (--dump: of the splits, as extract's --seed)", &seed);
  parser.Option("dump", "task name or file:path.jsonl: print its splits as JSON lines", &dump);
  parser.Option("split", "--dump: all, train, validation or test", &split);
  parser.Option("pairs", "--dump: train datapoints, as extract's --pairs (validation and test "
                "get a quarter each)", &pairs);
  parser.Option("model", "--dump: the model whose tokenizer and context length to use", &model);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (!dump.empty()) return Dump(dump, model, split, pairs, seed);

  nlohmann::json out = nlohmann::json::array();
  for (const TaskInfo& info : BuiltinTasks()) {
    absl::StatusOr<std::vector<TaskPair>> pairs = GenerateTaskPairs(info.name, 1, seed);
    if (!pairs.ok()) return Fail("tasks", std::string(pairs.status().message()), kExitFailure);
    const TaskPair& p = pairs->front();
    if (json) {
      out.push_back({{"name", info.name},
                     {"description", info.description},
                     {"candidates", info.candidate_variants},
                     {"example",
                      {{"prompt", p.prompt},
                       {"twin", p.twin},
                       {"correct", p.correct},
                       {"alternative", p.alternative}}},
                     {"families", info.families}});
      continue;
    }
    std::cout << absl::StrFormat("%-28s %s\n", info.name, info.description);
    std::vector<std::string> variants;
    for (const auto& v : info.candidate_variants) variants.push_back(Candidates(v));
    std::cout << absl::StrFormat("    candidates  %s\n", absl::StrJoin(variants, ", else "));
    std::cout << absl::StrFormat("    prompt      %-50s -> %s\n", Tail(p.prompt), Quoted(p.correct));
    std::cout << absl::StrFormat("    twin        %-50s -> %s\n", Tail(p.twin), Quoted(p.alternative));
    if (!info.families.empty()) {
      std::cout << absl::StrFormat("    families    %s (NAME@FAMILY, NAME@!FAMILY)\n",
                                   absl::StrJoin(info.families, ", "));
    }
  }
  if (json) std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(tasks, "tasks", "list the built-in tasks with an example pair each", RunTasks);

}  // namespace circuit::cli
