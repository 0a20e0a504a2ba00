// User-defined tasks: tokenizing a task file's datapoints and splitting them
// by the seed (the file itself is read in task_file.cc).
#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"
#include "circuit/core/task.h"
#include "task_spec.h"

namespace circuit {
namespace internal {

absl::StatusOr<TaskData> BuildUserTask(const std::string& path, const Tokenizer& tokenizer,
                                       const TaskOptions& options) {
  CIRCUIT_ASSIGN_OR_RETURN(const std::vector<NumberedPair> entries, ReadNumberedTaskFile(path));
  TaskData data;
  data.name = absl::StrCat(kTaskFilePrefix, path);
  data.description = absl::StrCat("user task from ", path);

  // Tokenize every line in file order, so the first bad line is the one named.
  struct Encoded {
    TaskExample prompt, twin;
    bool has_twin = false;
  };
  std::vector<Encoded> encoded;
  encoded.reserve(entries.size());
  for (const NumberedPair& entry : entries) {
    const std::string where = absl::StrCat(path, ":", entry.line);
    auto token = [&](const std::string& text) -> absl::StatusOr<int32_t> {
      absl::StatusOr<int32_t> id = CandidateToken(tokenizer, text);
      if (!id.ok()) return Annotate(id.status(), where);
      return id;
    };
    const TaskPair& p = entry.pair;
    CIRCUIT_ASSIGN_OR_RETURN(const int32_t correct, token(p.correct));
    CIRCUIT_ASSIGN_OR_RETURN(const int32_t alternative, token(p.alternative));
    Encoded e;
    e.prompt = TaskExample{EncodePrompt(tokenizer, p.prompt, options.n_ctx), correct, alternative};
    e.has_twin = !p.twin.empty();
    if (e.has_twin) {
      e.twin = TaskExample{EncodePrompt(tokenizer, p.twin, options.n_ctx), alternative, correct};
      if (e.prompt.tokens == e.twin.tokens) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": prompt and twin are the same after left-truncation to ", options.n_ctx,
            " tokens"));
      }
    } else if (data.paired) {
      data.paired = false;
      data.first_twinless = where;
    }
    encoded.push_back(std::move(e));
  }

  // Shuffle by the seed, then test, validation, train: exact counts when the
  // file has enough datapoints, else shares in the proportions asked for (at
  // least one each when the file has three or more).
  TextRng rng(options.seed ^ 0x757365727461736bull);
  for (size_t i = encoded.size(); i > 1; --i) {
    std::swap(encoded[i - 1], encoded[rng.Below(static_cast<int>(i))]);
  }
  const int64_t total = static_cast<int64_t>(encoded.size());
  const int64_t want = int64_t{options.n_train} + options.n_validation + options.n_test;
  int64_t n_test = options.n_test, n_validation = options.n_validation;
  if (total < want) {
    auto share = [&](int asked) -> int64_t {
      if (asked == 0) return 0;
      return std::max<int64_t>(total >= 3 ? 1 : 0, total * asked / want);
    };
    n_test = share(options.n_test);
    n_validation = share(options.n_validation);
  }
  const int64_t n_train = std::min<int64_t>(options.n_train, total - n_test - n_validation);
  int64_t next = 0;
  auto take = [&](int64_t count, std::vector<TaskExample>* split) {
    for (int64_t i = 0; i < count; ++i, ++next) {
      split->push_back(encoded[next].prompt);
      if (encoded[next].has_twin) split->push_back(encoded[next].twin);
    }
  };
  take(n_test, &data.test);
  take(n_validation, &data.validation);
  take(n_train, &data.train);
  return data;
}

}  // namespace internal

namespace {
absl::Status TwinlessError(const std::string& where) {
  return absl::InvalidArgumentError(absl::StrCat(
      where, ": no \"twin\": pruning, ablation and audits compare each prompt with its twin, "
             "so every line of the task file needs one"));
}
}  // namespace

absl::Status RequireTwins(const TaskData& data) {
  if (data.paired) return absl::OkStatus();
  return TwinlessError(data.first_twinless.empty() ? data.name : data.first_twinless);
}

absl::Status RequireTwins(const std::string& task_name) {
  if (task_name.rfind(kTaskFilePrefix, 0) != 0) return absl::OkStatus();
  const std::string path = task_name.substr(sizeof(kTaskFilePrefix) - 1);
  absl::StatusOr<std::vector<internal::NumberedPair>> entries =
      internal::ReadNumberedTaskFile(path);
  if (!entries.ok()) return absl::OkStatus();  // BuildTask reports it, per unit
  for (const internal::NumberedPair& entry : *entries) {
    if (entry.pair.twin.empty()) return TwinlessError(absl::StrCat(path, ":", entry.line));
  }
  return absl::OkStatus();
}

}  // namespace circuit
