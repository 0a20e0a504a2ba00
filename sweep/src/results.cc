#include "circuit/sweep/results.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

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

// Rows appended to the journal before results.h5 is rewritten: a quarter of the
// rows results.h5 already holds (at least one).
int64_t CompactAfter(size_t rows_in_h5) { return std::max<int64_t>(1, rows_in_h5 / 4); }

// Reads the journal's rows in order. A last line without its newline was cut
// short by a kill (or a full disk) and is ignored; any other bad line is an error.
absl::StatusOr<std::vector<UnitResult>> ReadJournal(const std::string& path) {
  std::vector<UnitResult> rows;
  std::ifstream in(path, std::ios::binary);
  if (!in) return rows;  // no journal: every row is in results.h5
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (in.eof()) break;  // no newline: a torn last line
    absl::StatusOr<UnitResult> row = ResultFromJson(line);
    if (!row.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": ", row.status().message()));
    }
    rows.push_back(*std::move(row));
  }
  return rows;
}

// Appends one line with a single write; a short write (disk full) is undone.
absl::Status AppendLine(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": cannot open for appending"));
  const off_t size = ::lseek(fd, 0, SEEK_END);
  const ssize_t n = ::write(fd, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    if (size >= 0 && ::ftruncate(fd, size) != 0) {
      // The torn line stays; Read() ignores a last line without its newline.
    }
    ::close(fd);
    return absl::ResourceExhaustedError(absl::StrCat(path, ": cannot append a row (disk full?)"));
  }
  if (::close(fd) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": cannot append a row (disk full?)"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ResultToJson(const UnitResult& row) {
  nlohmann::json j;
  for (const StringColumn& c : kStrings) j[c.name] = Get(row, c);
  for (const DoubleColumn& c : kDoubles) {
    const double v = Get(row, c);
    j[c.name] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
  }
  for (const IntColumn& c : kInts) j[c.name] = row.*c.field;
  j["seed"] = row.unit.seed;
  j["ok"] = row.ok;
  j["rank"] = row.rank;
  j["met_target"] = row.met_target;
  // An error message may quote a file name that is not UTF-8.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<UnitResult> ResultFromJson(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError("not a JSON object");
  UnitResult row;
  auto missing = [](const char* name, const char* type) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\": expected ", type));
  };
  for (const StringColumn& c : kStrings) {
    const auto it = j.find(c.name);
    if (it == j.end() && c.optional) continue;
    if (it == j.end() || !it->is_string()) return missing(c.name, "a string");
    Get(row, c) = it->get<std::string>();
  }
  for (const DoubleColumn& c : kDoubles) {
    const auto it = j.find(c.name);
    if (it == j.end() && c.optional) continue;
    if (it != j.end() && it->is_null()) {
      Get(row, c) = kNoFigure;
      continue;
    }
    if (it == j.end() || !it->is_number()) return missing(c.name, "a number");
    Get(row, c) = it->get<double>();
  }
  for (const IntColumn& c : kInts) {
    const auto it = j.find(c.name);
    if (it == j.end() || !it->is_number_integer()) return missing(c.name, "an integer");
    row.*c.field = it->get<int64_t>();
  }
  const auto seed = j.find("seed"), ok = j.find("ok"), rank = j.find("rank"),
             met = j.find("met_target");
  if (seed == j.end() || !seed->is_number_unsigned()) return missing("seed", "an unsigned integer");
  if (ok == j.end() || !ok->is_boolean()) return missing("ok", "true or false");
  if (rank == j.end() || !rank->is_number_integer()) return missing("rank", "an integer");
  if (met == j.end() || !met->is_boolean()) return missing("met_target", "true or false");
  if (row.unit.id.empty()) return absl::InvalidArgumentError("\"id\": empty");
  row.unit.seed = seed->get<uint64_t>();
  row.ok = ok->get<bool>();
  row.rank = rank->get<int>();
  row.met_target = met->get<bool>();
  return row;
}

namespace {

absl::StatusOr<std::vector<UnitResult>> ReadH5Rows(const std::string& path) {
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
    CIRCUIT_ASSIGN_OR_RETURN(const bool present, r.Exists(name));
    if (c.optional && !present) continue;
    CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> col, r.ReadStrings(name));
    CIRCUIT_RETURN_IF_ERROR(check_len(c.name, col.size()));
    for (size_t i = 0; i < rows.size(); ++i) Get(rows[i], c) = std::move(col[i]);
  }
  for (const DoubleColumn& c : kDoubles) {
    const std::string name = absl::StrCat("/units/", c.name);
    CIRCUIT_ASSIGN_OR_RETURN(const bool present, r.Exists(name));
    if (c.optional && !present) continue;
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
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_met, r.Exists("/units/met_target"));
  if (has_met) {
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

// Adds `later` to `rows`, a row replacing the one with its id.
void Merge(std::vector<UnitResult> later, std::vector<UnitResult>* rows,
           std::map<std::string, size_t>* index) {
  for (UnitResult& row : later) {
    const auto [it, fresh] = index->emplace(row.unit.id, rows->size());
    if (fresh) {
      rows->push_back(std::move(row));
    } else {
      (*rows)[it->second] = std::move(row);
    }
  }
}

}  // namespace

absl::StatusOr<std::vector<UnitResult>> ResultsFile::Read(const std::string& path) {
  std::error_code ec;
  std::vector<UnitResult> rows;
  std::map<std::string, size_t> index;
  // A sweep killed before its first compaction leaves only the journal.
  if (std::filesystem::exists(path, ec) || !std::filesystem::exists(JournalPath(path), ec)) {
    CIRCUIT_ASSIGN_OR_RETURN(std::vector<UnitResult> stored, ReadH5Rows(path));
    Merge(std::move(stored), &rows, &index);
  }
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<UnitResult> journal, ReadJournal(JournalPath(path)));
  Merge(std::move(journal), &rows, &index);
  return rows;
}

absl::StatusOr<ResultsFile> ResultsFile::Open(const std::string& path, const std::string& spec_name,
                                              const std::string& spec_source) {
  ResultsFile file;
  file.path_ = path;
  file.spec_name_ = spec_name;
  file.spec_source_ = spec_source;
  std::error_code ec;
  const bool journal = std::filesystem::exists(JournalPath(path), ec);
  if (journal || std::filesystem::exists(path, ec)) {
    CIRCUIT_ASSIGN_OR_RETURN(std::vector<UnitResult> rows, Read(path));
    Merge(std::move(rows), &file.rows_, &file.index_);
    file.stored_rows_ = file.rows_.size();
  }
  // A journal left by a killed sweep (perhaps with a torn last line) is folded
  // into results.h5 before anything is appended to it.
  if (journal) CIRCUIT_RETURN_IF_ERROR(file.Compact());
  return file;
}

absl::Status ResultsFile::Append(UnitResult row) {
  const std::string line = ResultToJson(row) + "\n";
  Merge({std::move(row)}, &rows_, &index_);
  ++journal_rows_;
  if (journal_rows_ >= CompactAfter(stored_rows_)) return Compact();
  return AppendLine(JournalPath(path_), line);
}

absl::Status ResultsFile::Close() { return journal_rows_ > 0 ? Compact() : absl::OkStatus(); }

void ResultsFile::ForgetFailures() {
  std::vector<UnitResult> kept;
  for (UnitResult& row : rows_) {
    if (row.ok) kept.push_back(std::move(row));
  }
  rows_.clear();
  index_.clear();
  Merge(std::move(kept), &rows_, &index_);
}

absl::Status ResultsFile::Compact() {
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
  CIRCUIT_RETURN_IF_ERROR(w.Commit());
  // Every journal row is in results.h5 now; a kill before the removal leaves
  // rows in both, which Read() counts once.
  std::error_code ec;
  std::filesystem::remove(JournalPath(path_), ec);
  journal_rows_ = 0;
  stored_rows_ = rows_.size();
  return absl::OkStatus();
}

}  // namespace circuit
