// BuildTask: from generated text pairs to tokenized, disjoint, fixed-seed splits.
#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "circuit/core/digest.h"
#include "circuit/core/status.h"
#include "circuit/core/task.h"
#include "task_spec.h"

namespace circuit {
namespace internal {
namespace {

enum Split { kTrain = 0, kValidation = 1, kTest = 2 };

// Each split has its own stream, so the test split stays the same when the
// train or validation counts change.
uint64_t SplitSeed(const std::string& task, uint64_t seed, Split split) {
  Digest d;
  d.Update(task);
  d.Update(&seed, sizeof(seed));
  const uint64_t s = split;
  d.Update(&s, sizeof(s));
  return d.value();
}

// Draws pairs for one split. Pairs whose prompts were seen before (in any
// split), whose per-pair candidates are not single tokens, whose prompts do not
// end at a token boundary, or whose twins become equal after truncation are
// skipped and redrawn; too many skips mean the task does not fit this tokenizer.
// Twins that become equal are counted with the candidate misfits.
class SplitDrawer {
 public:
  SplitDrawer(const TaskSpec& spec, const std::vector<std::string>& fixed,
              const Tokenizer& tokenizer, int n_ctx, std::set<std::string>* seen)
      : spec_(spec), fixed_(fixed), tokenizer_(tokenizer), n_ctx_(n_ctx), seen_(seen) {}

  // Keep only pairs of template family `family` (or, with `exclude`, of any other).
  void SetFamily(const std::string& family, bool exclude) {
    family_ = family;
    exclude_ = exclude;
  }

  absl::Status Draw(uint64_t seed, int count, std::vector<TaskExample>* out) {
    TextRng rng(seed);
    int made = 0, drawn = 0, duplicates = 0, misfits = 0, boundary = 0;
    // A family filter discards the other families' draws (8 families at most).
    const int max_draws = (100 + 20 * count) * (family_.empty() ? 1 : 8);
    while (made < count) {
      // A prompt that does not end at a token boundary is a flaw of the task's
      // design for this tokenizer; a per-pair name that is not one token only
      // filters the names, so it merely costs draws.
      if (boundary > 20 && boundary * 2 > drawn) {
        return absl::FailedPreconditionError(absl::StrCat(
            spec_.name, ": ", boundary, " of ", drawn,
            " generated prompts do not end at a token boundary for this tokenizer; first: ",
            first_boundary_));
      }
      if (drawn >= max_draws) {
        return absl::FailedPreconditionError(absl::StrCat(
            spec_.name, ": only ", made, " usable pairs after ", drawn, " draws (", duplicates,
            " repeated a prompt, ", misfits, " had a candidate that is not one token",
            first_misfit_.empty() ? "" : ", first: " + first_misfit_, ")"));
      }
      TaskPair pair = spec_.generate(rng, fixed_);
      ++drawn;
      if (!family_.empty() && (pair.family == family_) == exclude_) continue;
      if (seen_->count(pair.prompt) || seen_->count(pair.twin) || pair.prompt == pair.twin) {
        ++duplicates;
        continue;
      }
      TaskExample a, b;
      bool boundary_failure = false;
      if (absl::Status s = Encode(pair, &a, &b, &boundary_failure); !s.ok()) {
        std::string& first = boundary_failure ? first_boundary_ : first_misfit_;
        if (first.empty()) first = std::string(s.message());
        ++(boundary_failure ? boundary : misfits);
        continue;
      }
      seen_->insert(pair.prompt);
      seen_->insert(pair.twin);
      out->push_back(std::move(a));
      out->push_back(std::move(b));
      ++made;
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<int32_t> Candidate(const std::string& text) {
    auto it = candidates_.find(text);
    if (it == candidates_.end()) it = candidates_.emplace(text, CandidateToken(tokenizer_, text)).first;
    return it->second;
  }

  // The prompt must tokenize as its own tokens followed by the candidate token.
  absl::StatusOr<std::vector<int32_t>> EncodeAtBoundary(const std::string& prompt,
                                                        const std::string& answer, int32_t id) {
    std::vector<int32_t> tokens = tokenizer_.Encode(prompt);
    std::vector<int32_t> joined = tokenizer_.Encode(prompt + answer);
    std::vector<int32_t> expected = tokens;
    expected.push_back(id);
    if (joined != expected) {
      const size_t keep = std::min<size_t>(prompt.size(), 24);
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt ending ", ShowText(prompt.substr(prompt.size() - keep)), " + ",
          ShowText(answer), " does not split at the prompt's end"));
    }
    if (static_cast<int>(tokens.size()) > n_ctx_) tokens.erase(tokens.begin(), tokens.end() - n_ctx_);
    return tokens;
  }

  // Sets *boundary_failure when the error is a prompt that does not end at a
  // token boundary (the other errors: candidates, twins equal after truncation).
  absl::Status Encode(const TaskPair& pair, TaskExample* a, TaskExample* b, bool* boundary_failure) {
    CIRCUIT_ASSIGN_OR_RETURN(const int32_t correct, Candidate(pair.correct));
    CIRCUIT_ASSIGN_OR_RETURN(const int32_t alternative, Candidate(pair.alternative));
    if (correct == alternative) {
      return absl::InvalidArgumentError(absl::StrCat("candidates ", ShowText(pair.correct), " and ",
                                                     ShowText(pair.alternative), " are one token"));
    }
    *boundary_failure = true;
    CIRCUIT_ASSIGN_OR_RETURN(a->tokens, EncodeAtBoundary(pair.prompt, pair.correct, correct));
    CIRCUIT_ASSIGN_OR_RETURN(b->tokens, EncodeAtBoundary(pair.twin, pair.alternative, alternative));
    *boundary_failure = false;
    if (a->tokens == b->tokens) {
      return absl::InvalidArgumentError("the twins are equal after truncation to n_ctx");
    }
    a->correct = b->alternative = correct;
    a->alternative = b->correct = alternative;
    return absl::OkStatus();
  }

  const TaskSpec& spec_;
  const std::vector<std::string>& fixed_;
  const Tokenizer& tokenizer_;
  const int n_ctx_;
  std::set<std::string>* seen_;
  std::map<std::string, absl::StatusOr<int32_t>> candidates_;
  std::string first_misfit_, first_boundary_;
  std::string family_;
  bool exclude_ = false;
};

// The first variant whose fixed candidates are single tokens.
absl::StatusOr<std::vector<std::string>> ChooseVariant(const TaskSpec& spec,
                                                       const Tokenizer& tokenizer) {
  std::string first_error;
  for (const std::vector<std::string>& variant : spec.variants) {
    absl::Status status;
    for (const std::string& text : variant) {
      if (text.empty()) continue;
      if (absl::StatusOr<int32_t> id = CandidateToken(tokenizer, text); !id.ok()) {
        status = id.status();
        break;
      }
    }
    if (status.ok()) return variant;
    if (first_error.empty()) first_error = std::string(status.message());
  }
  return absl::FailedPreconditionError(absl::StrCat(
      spec.name, ": ", first_error,
      spec.variants.size() > 1 ? " (and the fallback candidates do not fit either)" : ""));
}

absl::StatusOr<TaskData> BuildBuiltinTask(const TaskSpec& spec, const Tokenizer& tokenizer,
                                          const TaskOptions& options, const std::string& family,
                                          bool exclude) {
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> fixed, ChooseVariant(spec, tokenizer));
  TaskData data;
  data.name = family.empty() ? spec.name : absl::StrCat(spec.name, "@", exclude ? "!" : "", family);
  data.description = spec.description;
  data.candidates = fixed;
  std::set<std::string> seen;
  SplitDrawer drawer(spec, fixed, tokenizer, options.n_ctx, &seen);
  drawer.SetFamily(family, exclude);
  // Test first, so that it depends on nothing but the seed and n_test.
  CIRCUIT_RETURN_IF_ERROR(drawer.Draw(SplitSeed(spec.name, options.seed, kTest), options.n_test,
                                      &data.test));
  CIRCUIT_RETURN_IF_ERROR(drawer.Draw(SplitSeed(spec.name, options.seed, kValidation),
                                      options.n_validation, &data.validation));
  CIRCUIT_RETURN_IF_ERROR(drawer.Draw(SplitSeed(spec.name, options.seed, kTrain), options.n_train,
                                      &data.train));
  return data;
}

}  // namespace

absl::StatusOr<int32_t> CandidateToken(const Tokenizer& tokenizer, const std::string& text) {
  const std::vector<int32_t> ids = tokenizer.Encode(text);
  if (ids.size() == 1) return ids[0];
  std::vector<std::string> parts;
  for (int32_t id : ids) parts.push_back(ShowText(tokenizer.TokenBytes(id)));
  return absl::InvalidArgumentError(absl::StrCat("candidate ", ShowText(text), " is ", ids.size(),
                                                 " tokens for this tokenizer (",
                                                 absl::StrJoin(parts, ", "), ")"));
}

std::vector<int32_t> EncodePrompt(const Tokenizer& tokenizer, const std::string& text, int n_ctx) {
  std::vector<int32_t> tokens = tokenizer.Encode(text);
  if (static_cast<int>(tokens.size()) > n_ctx) tokens.erase(tokens.begin(), tokens.end() - n_ctx);
  return tokens;
}

}  // namespace internal

TaskOptions PruningSplits(int n_train, int n_ctx, uint64_t seed) {
  TaskOptions o;
  o.n_ctx = n_ctx;
  o.seed = seed;
  o.n_train = n_train;
  o.n_validation = o.n_test = std::max(8, n_train / 4);
  return o;
}

absl::StatusOr<TaskData> BuildTask(const std::string& name, const Tokenizer& tokenizer,
                                   const TaskOptions& options) {
  if (options.n_ctx < 1 || options.n_train < 0 || options.n_validation < 0 || options.n_test < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "task options: n_ctx must be >= 1 and the split sizes >= 0, got n_ctx ", options.n_ctx,
        ", train ", options.n_train, ", validation ", options.n_validation, ", test ",
        options.n_test));
  }
  const std::string prefix = kTaskFilePrefix;
  if (name.compare(0, prefix.size(), prefix) == 0) {
    return internal::BuildUserTask(name.substr(prefix.size()), tokenizer, options);
  }
  // NAME@FAMILY or NAME@!FAMILY: one template family, or all but one.
  const size_t at = name.find('@');
  const std::string base = name.substr(0, at);
  std::string family = at == std::string::npos ? "" : name.substr(at + 1);
  const bool exclude = !family.empty() && family[0] == '!';
  if (exclude) family.erase(0, 1);
  const internal::TaskSpec* spec = internal::FindTaskSpec(base);
  if (spec == nullptr) return internal::UnknownTask(name);
  if (at != std::string::npos &&
      std::find(spec->families.begin(), spec->families.end(), family) == spec->families.end()) {
    return absl::NotFoundError(absl::StrCat(
        "task ", name, ": unknown template family '", family, "' (",
        spec->families.empty() ? std::string("this task has none")
                               : "families: " + absl::StrJoin(spec->families, ", "),
        ")"));
  }
  return internal::BuildBuiltinTask(*spec, tokenizer, options, family, exclude);
}

}  // namespace circuit
