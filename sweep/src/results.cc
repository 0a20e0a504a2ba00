#include "circuit/sweep/results.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "circuit/core/h5.h"
#include "circuit/core/status.h"

namespace circuit {
namespace {

constexpr char kFormat[] = "circuit.sweep";

// Columns: name -> getter/setter over UnitResult, so writing and reading share one table.
struct StringColumn {
  const char* name;
  std::string UnitResult::*field = nullptr;
  std::string WorkUnit::*unit_field = nullptr;
  bool optional = false;  // added later: absent in older files, read as ""
};
struct DoubleColumn {
  const char* name;
  double UnitResult::*field = nullptr;
  double WorkUnit::*unit_field = nullptr;
  bool optional = false;  // added later: absent in older files, read as the field's default
};
struct IntColumn {
  const char* name;
  int64_t UnitResult::*field;
};

const StringColumn kStrings[] = {
    {"id", nullptr, &WorkUnit::id},         {"study", nullptr, &WorkUnit::study},
    {"model", nullptr, &WorkUnit::model},   {"task", nullptr, &WorkUnit::task},
    {"ablation", nullptr, &WorkUnit::ablation}, {"penalty", nullptr, &WorkUnit::penalty},
    {"method", nullptr, &WorkUnit::method}, {"error", &UnitResult::error, nullptr},
    {"circuit_file", &UnitResult::circuit_file, nullptr},
    {"model_digest", nullptr, &WorkUnit::model_digest, /*optional=*/true},
};
const DoubleColumn kDoubles[] = {
    {"target_loss", nullptr, &WorkUnit::target_loss},
    {"penalty_coef", nullptr, &WorkUnit::penalty_coef},
    {"full_model_loss", &UnitResult::full_model_loss, nullptr},
    {"circuit_loss", &UnitResult::circuit_loss, nullptr},
    {"necessity_loss", &UnitResult::necessity_loss, nullptr},
    {"random_baseline_loss", &UnitResult::random_baseline_loss, nullptr},
    {"accuracy", &UnitResult::accuracy, nullptr},
    {"seconds", &UnitResult::seconds, nullptr},
    {"prune_seconds", &UnitResult::prune_seconds, nullptr, /*optional=*/true},
    // Audit figures (NaN when the unit was not audited; absent in older files).
    {"cpr", &UnitResult::cpr, nullptr, /*optional=*/true},
    {"cmd", &UnitResult::cmd, nullptr, /*optional=*/true},
    {"jaccard", &UnitResult::jaccard, nullptr, /*optional=*/true},
    {"control_ratio", &UnitResult::control_ratio, nullptr, /*optional=*/true},
};
const IntColumn kInts[] = {
    {"n_nodes", &UnitResult::n_nodes},
    {"n_edges", &UnitResult::n_edges},
    {"total_nodes", &UnitResult::total_nodes},
};

std::string& Get(UnitResult& r, const StringColumn& c) {
  return c.field ? r.*c.field : r.unit.*c.unit_field;
}
const std::string& Get(const UnitResult& r, const StringColumn& c) {
  return c.field ? r.*c.field : r.unit.*c.unit_field;
}
double& Get(UnitResult& r, const DoubleColumn& c) {
  return c.field ? r.*c.field : r.unit.*c.unit_field;
}
double Get(const UnitResult& r, const DoubleColumn& c) {
  return c.field ? r.*c.field : r.unit.*c.unit_field;
}

}  // namespace

absl::StatusOr<std::vector<UnitResult>> ResultsFile::Read(const std::string& path) {
  CIRCUIT_ASSIGN_OR_RETURN(H5Reader r, H5Reader::Open(path));
  CIRCUIT_RETURN_IF_ERROR(r.CheckFormat(kFormat, kSweepFormatVersion));
  CIRCUIT_ASSIGN_OR_RETURN(int64_t n, r.ReadIntAttribute("/", "n_units"));
  // n_units is only a claim: it must match a column the file really stores
  // (ReadStrings checks that against the bytes in the file) before rows are
  // allocated for it.
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> ids, r.ReadStrings("/units/id"));
  if (n < 0 || ids.size() != static_cast<uint64_t>(n)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": n_units ", n, " but /units/id has ", ids.size(), " rows"));
  }
  std::vector<UnitResult> rows(static_cast<size_t>(n));
  auto check_len = [&](const std::string& name, size_t len) -> absl::Status {
    if (len == rows.size()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(path, ": /units/", name, ": ", len,
                                                   " rows, expected ", rows.size()));
  };
  for (const StringColumn& c : kStrings) {
    const std::string name = absl::StrCat("/units/", c.name);
    if (c.optional && !r.Exists(name)) continue;
    CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> col, r.ReadStrings(name));
    CIRCUIT_RETURN_IF_ERROR(check_len(c.name, col.size()));
    for (size_t i = 0; i < rows.size(); ++i) Get(rows[i], c) = std::move(col[i]);
  }
  for (const DoubleColumn& c : kDoubles) {
    const std::string name = absl::StrCat("/units/", c.name);
    if (c.optional && !r.Exists(name)) continue;
    CIRCUIT_ASSIGN_OR_RETURN(std::vector<double> col, r.ReadDoubles(name));
    CIRCUIT_RETURN_IF_ERROR(check_len(c.name, col.size()));
    for (size_t i = 0; i < rows.size(); ++i) Get(rows[i], c) = col[i];
  }
  for (const IntColumn& c : kInts) {
    CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> col, r.ReadInt64s(absl::StrCat("/units/", c.name)));
    CIRCUIT_RETURN_IF_ERROR(check_len(c.name, col.size()));
    for (size_t i = 0; i < rows.size(); ++i) rows[i].*c.field = col[i];
  }
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int64_t> seeds, r.ReadInt64s("/units/seed"));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int32_t> ok, r.ReadInt32s("/units/ok"));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<int32_t> ranks, r.ReadInt32s("/units/rank"));
  CIRCUIT_RETURN_IF_ERROR(check_len("seed", seeds.size()));
  CIRCUIT_RETURN_IF_ERROR(check_len("ok", ok.size()));
  CIRCUIT_RETURN_IF_ERROR(check_len("rank", ranks.size()));
  // Added later; files of earlier versions marked a missed target only by keeping
  // every node.
  std::vector<int32_t> met;
  if (r.Exists("/units/met_target")) {
    CIRCUIT_ASSIGN_OR_RETURN(met, r.ReadInt32s("/units/met_target"));
    CIRCUIT_RETURN_IF_ERROR(check_len("met_target", met.size()));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    UnitResult& row = rows[i];
    row.unit.seed = static_cast<uint64_t>(seeds[i]);
    row.ok = ok[i] != 0;
    row.rank = ranks[i];
    row.met_target = met.empty() ? row.ok && row.n_nodes < row.total_nodes : met[i] != 0;
  }
  return rows;
}

absl::StatusOr<ResultsFile> ResultsFile::Open(const std::string& path, const std::string& spec_name,
                                              const std::string& spec_source) {
  ResultsFile file;
  file.path_ = path;
  file.spec_name_ = spec_name;
  file.spec_source_ = spec_source;
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    CIRCUIT_ASSIGN_OR_RETURN(file.rows_, Read(path));
    for (const UnitResult& row : file.rows_) file.ids_.insert(row.unit.id);
  }
  return file;
}

absl::Status ResultsFile::Append(UnitResult row) {
  if (Has(row.unit.id)) {
    for (UnitResult& existing : rows_) {
      if (existing.unit.id == row.unit.id) existing = std::move(row);
    }
  } else {
    ids_.insert(row.unit.id);
    rows_.push_back(std::move(row));
  }
  return Write();
}

void ResultsFile::ForgetFailures() {
  std::vector<UnitResult> kept;
  ids_.clear();
  for (UnitResult& row : rows_) {
    if (!row.ok) continue;
    ids_.insert(row.unit.id);
    kept.push_back(std::move(row));
  }
  rows_ = std::move(kept);
}

absl::Status ResultsFile::Write() const {
  CIRCUIT_ASSIGN_OR_RETURN(H5Writer w, H5Writer::Create(path_));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "format", kFormat));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "format_version", kSweepFormatVersion));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "name", spec_name_));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "spec", spec_source_));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "n_units", static_cast<int64_t>(rows_.size())));
  for (const StringColumn& c : kStrings) {
    std::vector<std::string> col;
    for (const UnitResult& r : rows_) col.push_back(Get(r, c));
    CIRCUIT_RETURN_IF_ERROR(w.WriteStrings(absl::StrCat("/units/", c.name), col));
  }
  for (const DoubleColumn& c : kDoubles) {
    std::vector<double> col;
    for (const UnitResult& r : rows_) col.push_back(Get(r, c));
    CIRCUIT_RETURN_IF_ERROR(w.WriteDoubles(absl::StrCat("/units/", c.name), col));
  }
  for (const IntColumn& c : kInts) {
    std::vector<int64_t> col;
    for (const UnitResult& r : rows_) col.push_back(r.*c.field);
    CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(absl::StrCat("/units/", c.name), col));
  }
  std::vector<int64_t> seeds;
  std::vector<int32_t> ok, ranks, met;
  for (const UnitResult& r : rows_) {
    seeds.push_back(static_cast<int64_t>(r.unit.seed));
    ok.push_back(r.ok ? 1 : 0);
    ranks.push_back(r.rank);
    met.push_back(r.met_target ? 1 : 0);
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s("/units/seed", seeds));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt32s("/units/ok", ok));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt32s("/units/rank", ranks));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt32s("/units/met_target", met));
  return w.Commit();
}

}  // namespace circuit
