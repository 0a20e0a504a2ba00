// User task files in JSON Lines (`--task file:path.jsonl`): reading and
// validating the text. Every line is checked on its own and errors name
// "path:line", because such files are usually written by hand or a quick script.
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"
#include "circuit/core/task.h"
#include "nlohmann/json.hpp"
#include "task_spec.h"

namespace circuit {
namespace internal {
namespace {

using nlohmann::json;

std::string TypeName(const json& value) { return value.type_name(); }

bool IsBlank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

// Reads key `key` of `object` into *out; `required` keys must be present.
absl::Status ReadString(const json& object, const char* key, bool required, const std::string& where,
                        std::string* out, bool* present) {
  *present = object.contains(key);
  if (!*present) {
    if (!required) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(where, ": missing key \"", key, "\""));
  }
  const json& value = object.at(key);
  if (!value.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": \"", key, "\" must be a string, got ", TypeName(value)));
  }
  *out = value.get<std::string>();
  if (out->empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": \"", key, "\" is empty"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<NumberedPair>> ReadNumberedTaskFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the task file"));
  std::vector<NumberedPair> out;
  std::map<std::string, int> first_line;  // prompt text -> line that had it
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (IsBlank(line)) continue;
    const std::string where = absl::StrCat(path, ":", number);
    const json object = json::parse(line, /*cb=*/nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": not valid JSON"));
    }
    if (!object.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected a JSON object, got ", TypeName(object)));
    }
    NumberedPair entry;
    entry.line = number;
    TaskPair& p = entry.pair;
    bool present = false, has_twin = false;
    CIRCUIT_RETURN_IF_ERROR(ReadString(object, "prompt", true, where, &p.prompt, &present));
    CIRCUIT_RETURN_IF_ERROR(ReadString(object, "correct", true, where, &p.correct, &present));
    CIRCUIT_RETURN_IF_ERROR(ReadString(object, "alternative", true, where, &p.alternative, &present));
    CIRCUIT_RETURN_IF_ERROR(ReadString(object, "twin", false, where, &p.twin, &has_twin));
    if (p.correct == p.alternative) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": \"correct\" and \"alternative\" are the same (",
                                                     ShowText(p.correct), ")"));
    }
    for (const std::string* text : {&p.prompt, &p.twin}) {
      if (text->empty()) continue;
      auto [it, inserted] = first_line.emplace(*text, number);
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": ", text == &p.prompt ? "prompt" : "twin", " repeats a prompt of line ",
            it->second, " (splits must not share prompts)"));
      }
    }
    out.push_back(std::move(entry));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no datapoints"));
  return out;
}

}  // namespace internal

absl::StatusOr<std::vector<TaskPair>> ReadTaskFile(const std::string& path) {
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<internal::NumberedPair> entries,
                           internal::ReadNumberedTaskFile(path));
  std::vector<TaskPair> out;
  out.reserve(entries.size());
  for (internal::NumberedPair& e : entries) out.push_back(std::move(e.pair));
  return out;
}

}  // namespace circuit
