// circuit tasks: the built-in binary next-token tasks, each with its
// description, candidate tokens and one example pair.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "args.h"
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

int RunTasks(int argc, char** argv) {
  ArgParser parser("circuit tasks [--json]",
                   "List the built-in tasks: what each tests, its candidate tokens, and an example "
                   "pair (the end of each prompt and its answer). User tasks: --task "
                   "file:path.jsonl (docs/tasks.md).");
  bool json = false;
  uint64_t seed = 0;
  parser.Flag("json", "print one JSON array with full example prompts", &json);
  parser.Option("seed", "seed of the example pairs", &seed);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;

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
  if (json) std::cout << out.dump(2) << "\n";
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(tasks, "tasks", "list the built-in tasks with an example pair each", RunTasks);

}  // namespace circuit::cli
