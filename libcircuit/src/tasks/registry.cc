// The list of built-in tasks and their text-level generation.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "circuit/core/digest.h"
#include "circuit/core/task.h"
#include "task_spec.h"

namespace circuit {
namespace internal {

const std::vector<TaskSpec>& TaskSpecs() {
  static const std::vector<TaskSpec>* const kSpecs = [] {
    auto* specs = new std::vector<TaskSpec>();
    AddQuoteTasks(specs);
    AddBracketTasks(specs);
    AddVariableTasks(specs);
    AddControlTasks(specs);
    AddFunctionTasks(specs);
    std::sort(specs->begin(), specs->end(),
              [](const TaskSpec& a, const TaskSpec& b) { return a.name < b.name; });
    return specs;
  }();
  return *kSpecs;
}

const TaskSpec* FindTaskSpec(const std::string& name) {
  for (const TaskSpec& spec : TaskSpecs()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

absl::Status UnknownTask(const std::string& name) {
  return absl::NotFoundError(absl::StrCat("unknown task '", name,
                                          "' (`circuit tasks` lists the built-in names; a user "
                                          "task is file:path.jsonl)"));
}

}  // namespace internal

std::vector<TaskInfo> BuiltinTasks() {
  std::vector<TaskInfo> out;
  for (const internal::TaskSpec& spec : internal::TaskSpecs()) {
    out.push_back(TaskInfo{spec.name, spec.description, spec.variants, spec.families});
  }
  return out;
}

absl::StatusOr<std::vector<TaskPair>> GenerateTaskPairs(const std::string& name, int count,
                                                        uint64_t seed) {
  const internal::TaskSpec* spec = internal::FindTaskSpec(name);
  if (spec == nullptr) return internal::UnknownTask(name);
  if (count < 0) return absl::InvalidArgumentError(absl::StrCat("count must be >= 0, got ", count));
  // The name enters the seed, so that tasks do not share their filler code.
  Digest digest;
  digest.Update(name);
  digest.Update(&seed, sizeof(seed));
  internal::TextRng rng(digest.value());
  std::vector<TaskPair> out;
  out.reserve(count);
  for (int i = 0; i < count; ++i) out.push_back(spec->generate(rng, spec->variants.front()));
  return out;
}

}  // namespace circuit
