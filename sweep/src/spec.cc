#include "circuit/sweep/spec.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "circuit/core/digest.h"
#include "circuit/core/status.h"

namespace circuit {
namespace {

using Json = nlohmann::json;

absl::Status FieldError(const std::string& origin, const std::string& field,
                        const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", field, ": ", what));
}

bool OneOf(const std::string& value, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (value == a) return true;
  }
  return false;
}

// Reads an optional list field of strings into *out, checking allowed values.
absl::Status StringList(const Json& j, const std::string& origin, const char* field,
                        std::vector<std::string>* out,
                        std::initializer_list<const char*> allowed = {}) {
  if (!j.contains(field)) return absl::OkStatus();
  const Json& v = j.at(field);
  if (!v.is_array() || v.empty()) return FieldError(origin, field, "expected a non-empty list");
  out->clear();
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = absl::StrCat(field, "[", i, "]");
    if (!v[i].is_string()) return FieldError(origin, where, "expected a string");
    std::string s = v[i].get<std::string>();
    if (allowed.size() > 0 && !OneOf(s, allowed)) {
      std::string names;
      for (const char* a : allowed) absl::StrAppend(&names, names.empty() ? "" : ", ", a);
      return FieldError(origin, where, absl::StrCat("'", s, "' is not one of ", names));
    }
    out->push_back(std::move(s));
  }
  return absl::OkStatus();
}

absl::Status NumberList(const Json& j, const std::string& origin, const char* field,
                        std::vector<double>* out, double min, double max) {
  if (!j.contains(field)) return absl::OkStatus();
  const Json& v = j.at(field);
  if (!v.is_array() || v.empty()) return FieldError(origin, field, "expected a non-empty list");
  out->clear();
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = absl::StrCat(field, "[", i, "]");
    if (!v[i].is_number()) return FieldError(origin, where, "expected a number");
    const double x = v[i].get<double>();
    if (!(x >= min && x <= max)) {
      return FieldError(origin, where, absl::StrCat(x, " is outside [", min, ", ", max, "]"));
    }
    out->push_back(x);
  }
  return absl::OkStatus();
}

absl::Status Number(const Json& j, const std::string& origin, const char* field, double* out,
                    double min, double max) {
  if (!j.contains(field)) return absl::OkStatus();
  const Json& v = j.at(field);
  if (!v.is_number() || !(v.get<double>() >= min && v.get<double>() <= max)) {
    return FieldError(origin, field, absl::StrCat("expected a number in [", min, ", ", max, "]"));
  }
  *out = v.get<double>();
  return absl::OkStatus();
}

absl::Status Integer(const Json& j, const std::string& origin, const char* field, int* out,
                     int min, int max) {
  if (!j.contains(field)) return absl::OkStatus();
  const Json& v = j.at(field);
  if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max) {
    return FieldError(origin, field, absl::StrCat("expected an integer in [", min, ", ", max, "]"));
  }
  *out = v.get<int>();
  return absl::OkStatus();
}

}  // namespace

std::string FileStem(const std::string& path) {
  return std::filesystem::path(path).stem().string();
}

absl::StatusOr<SweepSpec> ParseSweepSpec(const std::string& json_text, const std::string& origin) {
  Json j;
  try {
    j = Json::parse(json_text);
  } catch (const Json::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not valid JSON (byte ", e.byte, ")"));
  } catch (const Json::exception& e) {  // e.g. out_of_range: a number like 1e400
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", e.what()));
  }
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(origin, ": expected an object"));
  static const char* kKnown[] = {"name",      "studies",       "models",  "tasks",
                                 "target_losses", "ablations", "penalties", "penalty_coefs",
                                 "methods",   "seeds",         "epochs",  "lr",      "batch",   "confidence", "search",
                                 "random_draws", "n_train",    "n_validation", "n_test",
                                 "audit",     "audit_seeds"};
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    if (!known) return FieldError(origin, key, "unknown field");
  }
  SweepSpec spec;
  spec.source = json_text;
  if (j.contains("name")) {
    if (!j["name"].is_string()) return FieldError(origin, "name", "expected a string");
    spec.name = j["name"].get<std::string>();
  }
  for (const char* required : {"models", "tasks"}) {
    if (!j.contains(required)) return FieldError(origin, required, "missing (a list is required)");
  }
  CIRCUIT_RETURN_IF_ERROR(StringList(j, origin, "models", &spec.models));
  CIRCUIT_RETURN_IF_ERROR(StringList(j, origin, "tasks", &spec.tasks));
  for (size_t i = 0; i < spec.models.size(); ++i) {
    for (size_t k = 0; k < i; ++k) {
      if (FileStem(spec.models[i]) == FileStem(spec.models[k])) {
        return FieldError(origin, absl::StrCat("models[", i, "]"),
                          absl::StrCat("'", spec.models[i], "' has the same name stem as models[",
                                       k, "] '", spec.models[k],
                                       "' (unit ids and circuit files are named by it); rename one"));
      }
    }
  }
  CIRCUIT_RETURN_IF_ERROR(
      StringList(j, origin, "studies", &spec.studies, {"extract", "node_ablation", "random_baseline"}));
  CIRCUIT_RETURN_IF_ERROR(StringList(j, origin, "ablations", &spec.ablations, {"mean", "zero", "resample"}));
  CIRCUIT_RETURN_IF_ERROR(StringList(j, origin, "penalties", &spec.penalties, {"linear", "log"}));
  CIRCUIT_RETURN_IF_ERROR(StringList(j, origin, "methods", &spec.methods, {"masks", "attribution"}));
  CIRCUIT_RETURN_IF_ERROR(NumberList(j, origin, "target_losses", &spec.target_losses, 1e-6, 100.0));
  CIRCUIT_RETURN_IF_ERROR(NumberList(j, origin, "penalty_coefs", &spec.penalty_coefs, 0.0, 100.0));
  if (j.contains("seeds")) {
    const Json& v = j["seeds"];
    if (!v.is_array() || v.empty()) return FieldError(origin, "seeds", "expected a non-empty list");
    spec.seeds.clear();
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_number_unsigned()) {
        return FieldError(origin, absl::StrCat("seeds[", i, "]"), "expected a non-negative integer");
      }
      spec.seeds.push_back(v[i].get<uint64_t>());
    }
  }
  CIRCUIT_RETURN_IF_ERROR(Integer(j, origin, "epochs", &spec.epochs, 0, 100000));
  CIRCUIT_RETURN_IF_ERROR(Number(j, origin, "lr", &spec.lr, 0.0, 10.0));
  CIRCUIT_RETURN_IF_ERROR(Integer(j, origin, "batch", &spec.batch, 0, 1000000));
  CIRCUIT_RETURN_IF_ERROR(Number(j, origin, "confidence", &spec.confidence, 0.0, 0.9999));
  if (spec.confidence > 0 && spec.confidence < 0.5) {
    return FieldError(origin, "confidence", "expected 0 (the default) or a value in [0.5, 1)");
  }
  CIRCUIT_RETURN_IF_ERROR(Integer(j, origin, "search", &spec.search, 0, 10000));
  CIRCUIT_RETURN_IF_ERROR(Integer(j, origin, "random_draws", &spec.random_draws, 1, 10000));
  CIRCUIT_RETURN_IF_ERROR(Integer(j, origin, "n_train", &spec.n_train, 0, 1000000));
  CIRCUIT_RETURN_IF_ERROR(Integer(j, origin, "n_validation", &spec.n_validation, 0, 1000000));
  CIRCUIT_RETURN_IF_ERROR(Integer(j, origin, "n_test", &spec.n_test, 0, 1000000));
  if (j.contains("audit")) {
    if (!j["audit"].is_boolean()) return FieldError(origin, "audit", "expected true or false");
    spec.audit = j["audit"].get<bool>();
  }
  CIRCUIT_RETURN_IF_ERROR(Integer(j, origin, "audit_seeds", &spec.audit_seeds, 0, 100));
  // Bound the work a spec can ask for before anything enumerates it: a 1 KB
  // spec of long lists multiplies out to 10^10 units.
  double units = 1;
  for (size_t n : {spec.models.size(), spec.tasks.size(), spec.studies.size(),
                   spec.target_losses.size(), spec.ablations.size(), spec.penalties.size(),
                   spec.penalty_coefs.size(), spec.methods.size(), spec.seeds.size()}) {
    units *= static_cast<double>(n);
  }
  if (units > kMaxSweepUnits) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": the lists multiply out to ", units,
                                                   " work units, more than ", kMaxSweepUnits,
                                                   "; split the sweep"));
  }
  return spec;
}

absl::StatusOr<SweepSpec> LoadSweepSpec(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  std::stringstream text;
  text << in.rdbuf();
  CIRCUIT_ASSIGN_OR_RETURN(SweepSpec spec, ParseSweepSpec(text.str(), path));
  // Model paths are relative to the working directory, else to the spec's folder.
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  for (std::string& model : spec.models) {
    std::error_code ec;
    if (!std::filesystem::exists(model, ec) && std::filesystem::exists(folder / model, ec)) {
      model = (folder / model).string();
    }
  }
  return spec;
}

std::vector<WorkUnit> EnumerateUnits(const SweepSpec& spec) {
  std::vector<WorkUnit> units;
  for (size_t m = 0; m < spec.models.size(); ++m)
    for (const std::string& task : spec.tasks)
      for (const std::string& study : spec.studies)
        for (double target : spec.target_losses)
          for (const std::string& ablation : spec.ablations)
            for (const std::string& penalty : spec.penalties)
              for (double coef : spec.penalty_coefs)
                for (const std::string& method : spec.methods)
                  for (uint64_t seed : spec.seeds) {
                    const std::string& model = spec.models[m];
                    const std::string digest =
                        m < spec.model_digests.size() ? spec.model_digests[m] : "";
                    WorkUnit u{"", study, model, task, ablation, penalty, method, target, coef,
                               seed, digest};
                    // The id hashes every parameter (and the sweep-wide settings that
                    // change results), never the position in the lists.
                    const std::string key = absl::StrCat(
                        study, "|", FileStem(model), "|", task, "|", target, "|", ablation, "|",
                        penalty, "|", coef, "|", method, "|", seed, "|", spec.epochs, "|",
                        spec.search, "|", spec.n_train, "|", spec.n_validation, "|", spec.n_test,
                        // Appended only when set, so that earlier sweeps keep their ids.
                        spec.lr > 0 ? absl::StrCat("|lr", spec.lr) : "",
                        spec.batch > 0 ? absl::StrCat("|batch", spec.batch) : "",
                        spec.confidence > 0 ? absl::StrCat("|conf", spec.confidence) : "",
                        spec.audit ? absl::StrCat("|audit", spec.audit_seeds) : "",
                        // The model's content, not only its name: a model changed
                        // in place is a different unit.
                        digest.empty() ? "" : absl::StrCat("|weights", digest));
                    std::string task_name = task.rfind("file:", 0) == 0 ? FileStem(task.substr(5)) : task;
                    u.id = absl::StrCat(task_name, "-", FileStem(model), "-", DigestHex(key));
                    units.push_back(std::move(u));
                  }
  return units;
}

}  // namespace circuit
