// Sweep specs and the results file: parsing, field-named errors, stable ids,
// atomic and resumable rows.
#include <algorithm>
#include <cmath>
#include <limits>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "circuit/core/h5.h"
#include "circuit/core/status.h"
#include "circuit/sweep/report.h"
#include "circuit/sweep/results.h"
#include "circuit/sweep/spec.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

constexpr char kSpec[] = R"({
  "name": "demo",
  "models": ["a.h5", "b.h5"],
  "tasks": ["single_double_quote", "bracket_counting"],
  "studies": ["extract", "random_baseline"],
  "target_losses": [0.15, 0.3],
  "seeds": [0, 1]
})";

TEST(SweepSpec, CrossProductWithStableIds) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(kSpec, "spec.json");
  ASSERT_THAT(spec, testing::IsOk());
  std::vector<WorkUnit> units = EnumerateUnits(*spec);
  EXPECT_EQ(units.size(), 2u * 2 * 2 * 2 * 2);
  std::set<std::string> ids;
  for (const WorkUnit& u : units) ids.insert(u.id);
  EXPECT_EQ(ids.size(), units.size());
  EXPECT_EQ(units[0].ablation, "mean");
  EXPECT_EQ(units[0].method, "masks");
  EXPECT_THAT(units[0].id, ::testing::StartsWith("single_double_quote-a-"));

  // Reordering the lists changes the order, not the ids.
  absl::StatusOr<SweepSpec> reordered = ParseSweepSpec(R"({
    "name": "demo", "models": ["b.h5", "a.h5"],
    "tasks": ["bracket_counting", "single_double_quote"],
    "studies": ["random_baseline", "extract"], "target_losses": [0.3, 0.15], "seeds": [1, 0]})",
                                                       "spec.json");
  ASSERT_THAT(reordered, testing::IsOk());
  std::set<std::string> reordered_ids;
  for (const WorkUnit& u : EnumerateUnits(*reordered)) reordered_ids.insert(u.id);
  EXPECT_EQ(ids, reordered_ids);
}

TEST(SweepSpec, MaskSettingsChangeTheIdsOnlyWhenSet) {
  const std::string base = R"({"models": ["a.h5"], "tasks": ["single_double_quote"])";
  absl::StatusOr<SweepSpec> plain = ParseSweepSpec(base + "}", "s");
  absl::StatusOr<SweepSpec> tuned =
      ParseSweepSpec(base + R"(, "lr": 0.02, "batch": 16, "confidence": 0.5})", "s");
  absl::StatusOr<SweepSpec> zero =
      ParseSweepSpec(base + R"(, "lr": 0, "batch": 0, "confidence": 0})", "s");
  ASSERT_THAT(plain, testing::IsOk());
  ASSERT_THAT(tuned, testing::IsOk());
  ASSERT_THAT(zero, testing::IsOk());
  EXPECT_EQ(tuned->lr, 0.02);
  EXPECT_EQ(tuned->batch, 16);
  EXPECT_EQ(tuned->confidence, 0.5);
  EXPECT_NE(EnumerateUnits(*plain)[0].id, EnumerateUnits(*tuned)[0].id);
  EXPECT_EQ(EnumerateUnits(*plain)[0].id, EnumerateUnits(*zero)[0].id);  // 0 = the defaults
  // Auditing is off by default; switched on, it is a different unit.
  absl::StatusOr<SweepSpec> audited =
      ParseSweepSpec(base + R"(, "audit": true, "audit_seeds": 2})", "s");
  ASSERT_THAT(audited, testing::IsOk());
  EXPECT_FALSE(plain->audit);
  EXPECT_TRUE(audited->audit);
  EXPECT_EQ(audited->audit_seeds, 2);
  EXPECT_NE(EnumerateUnits(*plain)[0].id, EnumerateUnits(*audited)[0].id);
  EXPECT_EQ(EnumerateUnits(*plain)[0].id,
            EnumerateUnits(*ParseSweepSpec(base + R"(, "audit": false})", "s"))[0].id);
}

TEST(SweepSpec, TheModelsWeightsDigestIsPartOfTheId) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(kSpec, "spec.json");
  ASSERT_THAT(spec, testing::IsOk());
  spec->model_digests = {"00000000000000aa", "00000000000000bb"};
  const std::vector<WorkUnit> before = EnumerateUnits(*spec);
  EXPECT_EQ(before[0].model_digest, "00000000000000aa");
  EXPECT_EQ(before.back().model_digest, "00000000000000bb");
  spec->model_digests[0] = "00000000000000cc";  // a.h5 changed in place
  const std::vector<WorkUnit> after = EnumerateUnits(*spec);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i].model == "a.h5") {
      EXPECT_NE(before[i].id, after[i].id);
      EXPECT_THAT(after[i].id, ::testing::StartsWith(before[i].id.substr(0, before[i].id.size() - 16)));
    } else {
      EXPECT_EQ(before[i].id, after[i].id);
    }
  }
}

TEST(SweepSpec, TwoModelsWithOneStemAreRejected) {
  EXPECT_THAT(ParseSweepSpec(R"({"models": ["a/m.h5", "x.h5", "b/m.h5"], "tasks": ["t"]})", "spec.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("spec.json: models[2]: 'b/m.h5' has the same name stem as "
                                 "models[0] 'a/m.h5'")));
}

TEST(SweepSpec, RejectsBadSpecsNamingTheField) {
  struct Case {
    const char* json;
    const char* message;
  } cases[] = {
      {"[1, 2]", "spec.json: expected an object"},
      {"{", "spec.json: not valid JSON"},
      {R"({"tasks": ["x"]})", "spec.json: models: missing"},
      {R"({"models": [], "tasks": ["x"]})", "spec.json: models: expected a non-empty list"},
      {R"({"models": ["m"], "tasks": ["x", 3]})", "spec.json: tasks[1]: expected a string"},
      {R"({"models": ["m"], "tasks": ["x"], "ablations": ["mean", "median"]})",
       "ablations[1]: 'median' is not one of mean, zero, resample"},
      {R"({"models": ["m"], "tasks": ["x"], "target_losses": [-1]})",
       "target_losses[0]: -1 is outside"},
      {R"({"models": ["m"], "tasks": ["x"], "seeds": [-3]})", "seeds[0]: expected a non-negative"},
      {R"({"models": ["m"], "tasks": ["x"], "studies": ["nope"]})", "studies[0]: 'nope'"},
      {R"({"models": ["m"], "tasks": ["x"], "colour": "red"})", "colour: unknown field"},
      {R"({"models": ["m"], "tasks": ["x"], "epochs": 1.5})", "epochs: expected an integer"},
      {R"({"models": ["m"], "tasks": ["x"], "lr": "fast"})", "lr: expected a number in [0, 10]"},
      {R"({"models": ["m"], "tasks": ["x"], "batch": -2})", "batch: expected an integer"},
      {R"({"models": ["m"], "tasks": ["x"], "confidence": 0.2})", "confidence: expected 0"},
      {R"({"models": ["m"], "tasks": ["x"], "audit": 1})", "audit: expected true or false"},
      {R"({"models": ["m"], "tasks": ["x"], "audit_seeds": -1})", "audit_seeds: expected an integer"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseSweepSpec(c.json, "spec.json"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.json;
  }
}

TEST(ResultsFile, AppendsAtomicallyAndReopens) {
  testing::TempDir dir;
  const std::string path = dir.File("results.h5");
  std::vector<WorkUnit> units = EnumerateUnits(*ParseSweepSpec(kSpec, "spec.json"));
  {
    absl::StatusOr<ResultsFile> file = ResultsFile::Open(path, "demo", kSpec);
    ASSERT_THAT(file, testing::IsOk());
    UnitResult ok{units[0], true, "", "units/x.h5", 12, 9, 5760, 0.05, 0.11, 3.2, 0.7, 0.98, 1.5, 1.25, 1, true};
    UnitResult bad{units[1], false, "task 'x': unknown"};
    ASSERT_THAT(file->Append(ok), testing::IsOk());
    ASSERT_THAT(file->Append(bad), testing::IsOk());
  }
  absl::StatusOr<ResultsFile> again = ResultsFile::Open(path, "demo", kSpec);
  ASSERT_THAT(again, testing::IsOk());
  ASSERT_EQ(again->rows().size(), 2u);
  EXPECT_TRUE(again->Has(units[0].id));
  EXPECT_TRUE(again->Has(units[1].id));
  EXPECT_FALSE(again->Has(units[2].id));
  const UnitResult& row = again->rows()[0];
  EXPECT_EQ(row.n_edges, 9);
  EXPECT_EQ(row.unit.task, "single_double_quote");
  EXPECT_DOUBLE_EQ(row.circuit_loss, 0.11);
  EXPECT_EQ(row.rank, 1);
  EXPECT_TRUE(row.met_target);
  EXPECT_FALSE(again->rows()[1].met_target);
  EXPECT_DOUBLE_EQ(row.prune_seconds, 1.25);
  EXPECT_TRUE(std::isnan(row.cpr));  // not audited
  EXPECT_TRUE(std::isnan(row.control_ratio));
  EXPECT_EQ(again->rows()[1].error, "task 'x': unknown");
  // Retrying a failure replaces its row instead of adding one.
  again->ForgetFailures();
  EXPECT_FALSE(again->Has(units[1].id));
  ASSERT_THAT(again->Append(UnitResult{units[1], true}), testing::IsOk());
  EXPECT_EQ(ResultsFile::Read(path)->size(), 2u);
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos);
  }
}

TEST(ResultsFile, RowsRecordTheModelsDigestAndOlderFilesStillRead) {
  testing::TempDir dir;
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(kSpec, "spec.json");
  ASSERT_THAT(spec, testing::IsOk());
  spec->model_digests = {"00000000000000aa", "00000000000000bb"};
  const std::vector<WorkUnit> units = EnumerateUnits(*spec);
  {
    absl::StatusOr<ResultsFile> file = ResultsFile::Open(dir.File("results.h5"), "demo", kSpec);
    ASSERT_THAT(file, testing::IsOk());
    ASSERT_THAT(file->Append(UnitResult{units.back(), true}), testing::IsOk());
  }
  absl::StatusOr<std::vector<UnitResult>> rows = ResultsFile::Read(dir.File("results.h5"));
  ASSERT_THAT(rows, testing::IsOk());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].unit.model_digest, "00000000000000bb");

  // A file of an earlier version: the same columns less model_digest.
  const std::string old_path = dir.File("old.h5");
  {
    absl::StatusOr<H5Writer> w = H5Writer::Create(old_path);
    ASSERT_THAT(w, testing::IsOk());
    ASSERT_THAT(w->WriteAttribute("/", "format", "circuit.sweep"), testing::IsOk());
    ASSERT_THAT(w->WriteAttribute("/", "format_version", int64_t{1}), testing::IsOk());
    ASSERT_THAT(w->WriteAttribute("/", "n_units", int64_t{1}), testing::IsOk());
    for (const char* c : {"id", "study", "model", "task", "ablation", "penalty", "method", "error",
                          "circuit_file"}) {
      ASSERT_THAT(w->WriteStrings(absl::StrCat("/units/", c), {c}), testing::IsOk());
    }
    for (const char* c : {"target_loss", "penalty_coef", "full_model_loss", "circuit_loss",
                          "necessity_loss", "random_baseline_loss", "accuracy", "seconds"}) {
      ASSERT_THAT(w->WriteDoubles(absl::StrCat("/units/", c), std::vector<double>{0.5}), testing::IsOk());
    }
    for (const char* c : {"n_nodes", "n_edges", "total_nodes", "seed"}) {
      ASSERT_THAT(w->WriteInt64s(absl::StrCat("/units/", c), std::vector<int64_t>{3}), testing::IsOk());
    }
    for (const char* c : {"ok", "rank"}) {
      ASSERT_THAT(w->WriteInt32s(absl::StrCat("/units/", c), std::vector<int32_t>{1}), testing::IsOk());
    }
    ASSERT_THAT(w->Commit(), testing::IsOk());
  }
  absl::StatusOr<std::vector<UnitResult>> old_rows = ResultsFile::Read(old_path);
  ASSERT_THAT(old_rows, testing::IsOk());
  ASSERT_EQ(old_rows->size(), 1u);
  EXPECT_EQ((*old_rows)[0].unit.id, "id");
  EXPECT_EQ((*old_rows)[0].unit.model_digest, "");
}

TEST(ResultsFile, RejectsOtherFiles) {
  testing::TempDir dir;
  std::ofstream(dir.File("results.h5")) << "garbage";
  EXPECT_THAT(ResultsFile::Open(dir.File("results.h5"), "demo", "{}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an HDF5 file")));
}

// Rows since the last compaction live in the journal: a row per line, folded into
// results.h5 once the journal holds a quarter of its rows, and on Close.
TEST(ResultsFile, AppendsToAJournalAndCompactsGeometrically) {
  testing::TempDir dir;
  const std::string path = dir.File("results.h5");
  const std::string journal = ResultsFile::JournalPath(path);
  absl::StatusOr<ResultsFile> file = ResultsFile::Open(path, "demo", kSpec);
  ASSERT_THAT(file, testing::IsOk());
  int compactions = 0;
  for (int i = 0; i < 200; ++i) {
    UnitResult r{WorkUnit{absl::StrCat("unit-", i)}, true};
    r.circuit_loss = i == 7 ? std::numeric_limits<double>::quiet_NaN() : 0.01 * i;
    r.unit.seed = static_cast<uint64_t>(i);
    ASSERT_THAT(file->Append(r), testing::IsOk());
    if (!std::filesystem::exists(journal)) ++compactions;
    // Every row is readable at every moment, from results.h5 and the journal together.
    if (i % 37 == 0) ASSERT_EQ(ResultsFile::Read(path)->size(), static_cast<size_t>(i + 1));
  }
  EXPECT_GT(compactions, 5);   // results.h5 follows the journal...
  EXPECT_LT(compactions, 40);  // ...without being rewritten for every row
  ASSERT_THAT(file->Close(), testing::IsOk());
  EXPECT_FALSE(std::filesystem::exists(journal));
  absl::StatusOr<std::vector<UnitResult>> rows = ResultsFile::Read(path);
  ASSERT_THAT(rows, testing::IsOk());
  ASSERT_EQ(rows->size(), 200u);
  EXPECT_EQ((*rows)[199].unit.id, "unit-199");
  EXPECT_EQ((*rows)[199].unit.seed, 199u);
  EXPECT_TRUE(std::isnan((*rows)[7].circuit_loss));
  EXPECT_DOUBLE_EQ((*rows)[8].circuit_loss, 0.08);
}

// A kill can leave a journal with a torn last line, or rows in both files (killed
// between the rewrite of results.h5 and the journal's removal).
TEST(ResultsFile, JournalLeftByAKillIsReadAndFolded) {
  testing::TempDir dir;
  const std::string path = dir.File("results.h5");
  const std::string journal = ResultsFile::JournalPath(path);
  {
    absl::StatusOr<ResultsFile> file = ResultsFile::Open(path, "demo", kSpec);
    ASSERT_THAT(file, testing::IsOk());
    ASSERT_THAT(file->Append(UnitResult{WorkUnit{"a"}, false, "failed once"}), testing::IsOk());
  }
  UnitResult again{WorkUnit{"a"}, true};
  again.n_nodes = 12;
  const std::string torn = ResultToJson(UnitResult{WorkUnit{"c"}, true});
  std::ofstream(journal, std::ios::binary)
      << ResultToJson(again) << "\n"
      << ResultToJson(UnitResult{WorkUnit{"b"}, true}) << "\n"
      << torn.substr(0, torn.size() / 2);
  absl::StatusOr<std::vector<UnitResult>> rows = ResultsFile::Read(path);
  ASSERT_THAT(rows, testing::IsOk());
  ASSERT_EQ(rows->size(), 2u);  // "a" once (the journal's copy), "b"; the torn "c" is not there
  EXPECT_TRUE((*rows)[0].ok);
  EXPECT_EQ((*rows)[0].n_nodes, 12);
  absl::StatusOr<ResultsFile> reopened = ResultsFile::Open(path, "demo", kSpec);
  ASSERT_THAT(reopened, testing::IsOk());
  EXPECT_FALSE(std::filesystem::exists(journal));  // folded into results.h5
  EXPECT_EQ(ResultsFile::Read(path)->size(), 2u);
  EXPECT_FALSE(reopened->Has("c"));

  // A bad line that is not the last one is an error naming the line.
  std::ofstream(journal, std::ios::binary) << "{\"id\": 3}\n" << ResultToJson(again) << "\n";
  EXPECT_THAT(ResultsFile::Read(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("results.h5.journal:1: \"id\": expected a string")));
}

TEST(ResultsFile, JournalWithoutResultsFileIsRead) {
  testing::TempDir dir;
  const std::string path = dir.File("results.h5");
  std::ofstream(ResultsFile::JournalPath(path), std::ios::binary)
      << ResultToJson(UnitResult{WorkUnit{"only"}, true}) << "\n";
  absl::StatusOr<std::vector<UnitResult>> rows = ResultsFile::Read(path);
  ASSERT_THAT(rows, testing::IsOk());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].unit.id, "only");
}

}  // namespace
}  // namespace circuit

namespace circuit {
namespace {

// Writes a stand-in model file that only says whether it was trained dense.
void WriteModelStub(const std::string& path, bool dense) {
  absl::StatusOr<H5Writer> w = H5Writer::Create(path);
  ASSERT_THAT(w, testing::IsOk());
  ASSERT_THAT(w->WriteAttribute("/training", "dense", int64_t{dense ? 1 : 0}), testing::IsOk());
  ASSERT_THAT(w->Commit(), testing::IsOk());
}

// A sweep over a sparse and a dense model stand-in and tasks t1, t2 at target 0.15;
// edges[i] is the circuit size of the i-th unit (sparse t1, sparse t2, dense t1,
// dense t2): -1 for a failed unit, -2 for one that missed the target (and so kept
// the whole model, 1000 edges).
// audit[i]: the i-th unit's {cpr, cmd, jaccard, control_ratio} (none: not audited).
using AuditFigures = std::tuple<double, double, double, double>;
absl::StatusOr<SweepReport> ReportOf(const testing::TempDir& dir, const std::vector<int>& edges,
                                     const std::vector<AuditFigures>& audit = {}) {
  WriteModelStub(dir.File("sparse.h5"), false);
  WriteModelStub(dir.File("dense.h5"), true);
  const std::string spec_json = absl::StrCat(R"({"models": [")", dir.File("sparse.h5"), R"(", ")",
                                             dir.File("dense.h5"),
                                             R"("], "tasks": ["t1", "t2"]})");
  CIRCUIT_ASSIGN_OR_RETURN(SweepSpec spec, ParseSweepSpec(spec_json, "spec.json"));
  CIRCUIT_ASSIGN_OR_RETURN(ResultsFile results,
                           ResultsFile::Open(dir.File("results.h5"), "demo", spec_json));
  const std::vector<WorkUnit> units = EnumerateUnits(spec);
  for (size_t i = 0; i < units.size(); ++i) {
    UnitResult r{units[i], edges.at(i) != -1};
    r.met_target = edges[i] >= 0;
    r.n_edges = r.met_target ? edges[i] : r.ok ? 1000 : 0;
    r.circuit_loss = r.met_target ? 0.1 : 0.4;
    if (!r.ok) r.error = "model file: no such file";
    if (i < audit.size()) std::tie(r.cpr, r.cmd, r.jaccard, r.control_ratio) = audit[i];
    CIRCUIT_RETURN_IF_ERROR(results.Append(r));
  }
  return BuildSweepReport(dir.path());
}

// Audited rows: their figures in the table and the CSV, by task; NaN (a
// stability-less audit's Jaccard) is left out, rows without an audit add nothing.
TEST(SweepReport, AuditFiguresPerTask) {
  testing::TempDir dir;
  const double nan = kNoFigure;
  absl::StatusOr<SweepReport> report =
      ReportOf(dir, {4, 16, 32, -2},
               {{0.61, 0.29, 0.75, 12.5}, {nan, nan, nan, nan}, {0.4, 0.5, nan, 1.5},
                {0.1, 0.8, 0.2, 1.0}});
  ASSERT_THAT(report, testing::IsOk());
  EXPECT_THAT(report->table, HasSubstr("audit sparse target 0.15, mean, log, masks, t1: CPR 0.610, "
                                       "CMD 0.290, Jaccard 0.75, control ratio 12.5"));
  EXPECT_THAT(report->table, ::testing::Not(HasSubstr("masks, t2: CPR nan")));
  EXPECT_THAT(report->table, HasSubstr("masks, t1: CPR 0.400, CMD 0.500, Jaccard nan"));
  // The dense t2 unit missed the target; its audit still shows.
  EXPECT_THAT(report->table, HasSubstr("masks, t2: CPR 0.100, CMD 0.800, Jaccard 0.20"));
  EXPECT_THAT(report->csv, HasSubstr("t1,4.00,0.10000,1,0.6100,0.2900,0.7500,12.5000,0.00,gpt\n"));
  EXPECT_THAT(report->csv, HasSubstr("t2,16.00,0.10000,1,,,,,0.00,gpt\n"));
  EXPECT_THAT(report->csv, HasSubstr("t1,32.00,0.10000,1,0.4000,0.5000,,1.5000,0.00,gpt\n"));
}

// Rows of a model's earlier weights (the file changed in place, the sweep ran
// again) stay in results.h5 but not in the report.
TEST(SweepReport, OnlyTheRowsOfEachModelsLatestWeights) {
  testing::TempDir dir;
  WriteModelStub(dir.File("m.h5"), false);
  const std::string spec_json =
      absl::StrCat(R"({"models": [")", dir.File("m.h5"), R"("], "tasks": ["t1"]})");
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(spec_json, "spec.json");
  ASSERT_THAT(spec, testing::IsOk());
  absl::StatusOr<ResultsFile> results = ResultsFile::Open(dir.File("results.h5"), "demo", spec_json);
  ASSERT_THAT(results, testing::IsOk());
  for (const auto& [digest, edges] : {std::pair<std::string, int>{"00000000000000aa", 100},
                                      std::pair<std::string, int>{"00000000000000bb", 7}}) {
    spec->model_digests = {digest};
    UnitResult r{EnumerateUnits(*spec)[0], true};
    r.met_target = true;
    r.n_edges = edges;
    ASSERT_THAT(results->Append(r), testing::IsOk());
  }
  absl::StatusOr<SweepReport> report = BuildSweepReport(dir.path());
  ASSERT_THAT(report, testing::IsOk());
  ASSERT_EQ(report->groups.size(), 1u);
  EXPECT_EQ(report->groups[0].edges_by_task.at("t1"), 7.0);
}

TEST(SweepReport, GeometricMeansAndDenseOverSparse) {
  testing::TempDir dir;
  // sparse: 4 and 16 edges (geomean 8); dense: 32 and 128 (geomean 64).
  absl::StatusOr<SweepReport> report = ReportOf(dir, {4, 16, 32, 128});
  ASSERT_THAT(report, testing::IsOk());
  ASSERT_EQ(report->groups.size(), 2u);
  for (const ReportGroup& g : report->groups) {
    EXPECT_NEAR(g.geomean_edges, g.dense ? 64.0 : 8.0, 1e-9) << g.model;
  }
  const std::string setting = "target 0.15, mean, log, masks";
  ASSERT_EQ(report->dense_over_sparse.size(), 1u);
  ASSERT_EQ(report->dense_over_sparse.at(setting).size(), 1u);
  const DenseSparseRatio& r = report->dense_over_sparse.at(setting)[0];
  EXPECT_EQ(r.dense_model, "dense");
  EXPECT_NEAR(r.ratio, 8.0, 1e-9);
  EXPECT_EQ(r.n_tasks, 2);
  EXPECT_THAT(report->table, HasSubstr("dense/sparse circuit size at " + setting +
                                       ": dense 8.00x (2 tasks both solved)"));
  EXPECT_THAT(report->csv, HasSubstr("sparse,0,\"" + setting + "\",t1,4.00"));
  ASSERT_THAT(WriteSweepReport(*report, dir.path()), testing::IsOk());
  EXPECT_TRUE(std::filesystem::exists(dir.File("report.svg")));
  EXPECT_THAT(report->svg, HasSubstr("<polyline"));
}

// A BDH model is its own kind: not a dense baseline (its edges are defined
// otherwise), compared with the sparse models by nodes.
TEST(SweepReport, BdhModelsAreGroupedByArchitectureAndComparedByNodes) {
  testing::TempDir dir;
  WriteModelStub(dir.File("sparse.h5"), false);
  {
    absl::StatusOr<H5Writer> w = H5Writer::Create(dir.File("bdh.h5"));
    ASSERT_THAT(w, testing::IsOk());
    ASSERT_THAT(w->WriteAttribute("/", "format", std::string("circuit.model")), testing::IsOk());
    ASSERT_THAT(w->WriteAttribute("/", "format_version", int64_t{1}), testing::IsOk());
    ASSERT_THAT(w->WriteAttribute("/", "arch", std::string("bdh")), testing::IsOk());
    ASSERT_THAT(w->WriteAttribute("/training", "dense", int64_t{1}), testing::IsOk());
    ASSERT_THAT(w->Commit(), testing::IsOk());
  }
  const std::string spec_json = absl::StrCat(R"({"models": [")", dir.File("sparse.h5"), R"(", ")",
                                             dir.File("bdh.h5"), R"("], "tasks": ["t1"]})");
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(spec_json, "spec.json");
  ASSERT_THAT(spec, testing::IsOk());
  absl::StatusOr<ResultsFile> results = ResultsFile::Open(dir.File("results.h5"), "demo", spec_json);
  ASSERT_THAT(results, testing::IsOk());
  const std::vector<WorkUnit> units = EnumerateUnits(*spec);
  ASSERT_EQ(units.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {  // sparse: 10 nodes, 12 edges; bdh: 30 nodes, 900 edges
    UnitResult r{units[i], true};
    r.met_target = true;
    r.n_nodes = i == 0 ? 10 : 30;
    r.n_edges = i == 0 ? 12 : 900;
    ASSERT_THAT(results->Append(r), testing::IsOk());
  }
  absl::StatusOr<SweepReport> report = BuildSweepReport(dir.path());
  ASSERT_THAT(report, testing::IsOk());
  EXPECT_TRUE(report->dense_over_sparse.empty());
  const std::string setting = "target 0.15, mean, log, masks";
  ASSERT_EQ(report->bdh_over_sparse.at(setting).size(), 1u);
  EXPECT_NEAR(report->bdh_over_sparse.at(setting)[0].ratio, 3.0, 1e-9);
  EXPECT_THAT(report->table, HasSubstr("bdh    " + setting));
  EXPECT_THAT(report->table, HasSubstr("bdh/sparse circuit nodes at " + setting + ": bdh 3.00x"));
  EXPECT_THAT(report->csv, HasSubstr("t1,900.00,0.00000,1,,,,,30.00,bdh\n"));
}

TEST(SweepReport, RatioOnlyOverTasksBothKindsSolved) {
  testing::TempDir dir;
  // The dense model failed t2: comparing geomeans over different task sets would
  // give 32 / 8 = 4; over t1 alone it is 32 / 4.
  absl::StatusOr<SweepReport> report = ReportOf(dir, {4, 16, 32, -1});
  ASSERT_THAT(report, testing::IsOk());
  const DenseSparseRatio r = report->dense_over_sparse.at("target 0.15, mean, log, masks").at(0);
  EXPECT_NEAR(r.ratio, 8.0, 1e-9);
  EXPECT_EQ(r.n_tasks, 1);
  EXPECT_THAT(report->table, HasSubstr("8.00x (1 task both solved)"));
  EXPECT_THAT(report->table, HasSubstr("1 failed"));
}

TEST(SweepReport, UnitsThatMissedTheTargetHaveNoSize) {
  testing::TempDir dir;
  // The dense model missed the target on t2 and kept the whole model (1000 edges):
  // that is no circuit size, and the ratio is over t1 alone.
  absl::StatusOr<SweepReport> report = ReportOf(dir, {4, 16, 32, -2});
  ASSERT_THAT(report, testing::IsOk());
  for (const ReportGroup& g : report->groups) {
    EXPECT_EQ(g.not_met, g.dense ? 1 : 0) << g.model;
    EXPECT_NEAR(g.geomean_edges, g.dense ? 32.0 : 8.0, 1e-9) << g.model;
  }
  EXPECT_NEAR(report->dense_over_sparse.at("target 0.15, mean, log, masks").at(0).ratio, 8.0, 1e-9);
  EXPECT_THAT(report->table, HasSubstr("1 target not met"));
  EXPECT_THAT(report->csv, ::testing::Not(HasSubstr("t2,1000")));
}

}  // namespace
}  // namespace circuit
