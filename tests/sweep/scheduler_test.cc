// The sweep scheduler in one process, with a fake unit runner: every unit runs
// once, reruns skip finished units, failures become rows, --retry-failed.
#include "circuit/sweep/scheduler.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "circuit/core/status.h"
#include "circuit/sweep/results.h"
#include "circuit/sweep/spec.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::testing::HasSubstr;

// 2 tasks x 2 targets x 2 seeds = 8 units; "bracket_counting" units at target
// 0.3 are the ones the failing runner below rejects (2 units).
constexpr char kSpec[] = R"({
  "name": "fake",
  "models": ["m.h5"],
  "tasks": ["single_double_quote", "bracket_counting"],
  "target_losses": [0.15, 0.3],
  "seeds": [0, 1]
})";

SweepSpec Spec(const char* json = kSpec) {
  absl::StatusOr<SweepSpec> spec = ParseSweepSpec(json, "spec.json");
  CIRCUIT_CHECK(spec.ok());
  return *spec;
}

bool Rejected(const WorkUnit& unit) {
  return unit.task == "bracket_counting" && unit.target_loss == 0.3;
}

// Counts calls per unit id; fails the Rejected() units while `fail` is set.
struct FakeRunner {
  std::map<std::string, int> calls;
  bool fail = false;
  // Rows found in results.h5 when each unit started (the file is always readable).
  std::vector<size_t> rows_seen;
  std::string results_path;

  UnitRunner AsRunner() {
    return [this](const WorkUnit& unit, const std::string& out_dir) {
      ++calls[unit.id];
      if (!results_path.empty() && std::filesystem::exists(results_path)) {
        absl::StatusOr<std::vector<UnitResult>> rows = ResultsFile::Read(results_path);
        rows_seen.push_back(rows.ok() ? rows->size() : static_cast<size_t>(-1));
      } else if (!results_path.empty()) {
        rows_seen.push_back(0);
      }
      UnitResult r;
      if (fail && Rejected(unit)) {
        r.ok = false;
        r.error = "bracket_counting: the fake runner refuses target 0.3";
        return r;
      }
      r.ok = true;
      r.met_target = true;
      r.circuit_file = "units/" + unit.id + ".h5";
      r.n_nodes = static_cast<int64_t>(10 + unit.seed);
      r.n_edges = 20;
      r.circuit_loss = unit.target_loss;
      (void)out_dir;
      return r;
    };
  }
};

SweepOptions Options(const testing::TempDir& dir, bool retry_failed = false) {
  SweepOptions o;
  o.out_dir = dir.File("out");
  o.retry_failed = retry_failed;
  o.progress = false;
  return o;
}

std::map<std::string, UnitResult> RowsById(const std::string& path) {
  absl::StatusOr<std::vector<UnitResult>> rows = ResultsFile::Read(path);
  EXPECT_THAT(rows, testing::IsOk());
  std::map<std::string, UnitResult> by_id;
  if (!rows.ok()) return by_id;
  for (const UnitResult& r : *rows) {
    EXPECT_TRUE(by_id.emplace(r.unit.id, r).second) << "row repeated: " << r.unit.id;
  }
  return by_id;
}

TEST(SweepScheduler, EveryUnitRunsExactlyOnce) {
  testing::TempDir dir;
  const SweepSpec spec = Spec();
  FakeRunner fake;
  fake.results_path = dir.File("out/results.h5");
  absl::StatusOr<SweepSummary> s = RunSweep(spec, Options(dir), fake.AsRunner());
  ASSERT_THAT(s, testing::IsOk());
  EXPECT_EQ(s->total, 8);
  EXPECT_EQ(s->ran, 8);
  EXPECT_EQ(s->skipped, 0);
  EXPECT_EQ(s->failed, 0);
  EXPECT_EQ(s->ranks, 1);

  const std::vector<WorkUnit> units = EnumerateUnits(spec);
  ASSERT_EQ(fake.calls.size(), units.size());
  for (const WorkUnit& u : units) EXPECT_EQ(fake.calls[u.id], 1) << u.id;

  // Rows are written as units finish: the i-th unit saw i rows, never a broken file.
  ASSERT_EQ(fake.rows_seen.size(), 8u);
  for (size_t i = 0; i < fake.rows_seen.size(); ++i) EXPECT_EQ(fake.rows_seen[i], i);

  std::map<std::string, UnitResult> rows = RowsById(dir.File("out/results.h5"));
  ASSERT_EQ(rows.size(), units.size());
  for (const WorkUnit& u : units) {
    ASSERT_TRUE(rows.count(u.id)) << u.id;
    const UnitResult& r = rows[u.id];
    EXPECT_TRUE(r.ok);
    EXPECT_TRUE(r.met_target);
    EXPECT_EQ(r.unit.task, u.task);
    EXPECT_EQ(r.unit.seed, u.seed);
    EXPECT_DOUBLE_EQ(r.unit.target_loss, u.target_loss);
    EXPECT_EQ(r.n_nodes, static_cast<int64_t>(10 + u.seed));
    EXPECT_EQ(r.circuit_file, "units/" + u.id + ".h5");
    EXPECT_GE(r.seconds, 0.0);
    EXPECT_EQ(r.rank, 0);
  }
}

TEST(SweepScheduler, RerunSkipsFinishedUnitsAndRunsOnlyNewOnes) {
  testing::TempDir dir;
  FakeRunner first;
  ASSERT_THAT(RunSweep(Spec(), Options(dir), first.AsRunner()), testing::IsOk());

  FakeRunner second;
  absl::StatusOr<SweepSummary> s = RunSweep(Spec(), Options(dir), second.AsRunner());
  ASSERT_THAT(s, testing::IsOk());
  EXPECT_EQ(s->skipped, 8);
  EXPECT_EQ(s->ran, 0);
  EXPECT_TRUE(second.calls.empty());

  // A third seed adds 4 units; only those run, and the file then holds all 12.
  const SweepSpec grown = Spec(R"({
    "name": "fake", "models": ["m.h5"], "tasks": ["single_double_quote", "bracket_counting"],
    "target_losses": [0.15, 0.3], "seeds": [0, 1, 2]})");
  FakeRunner third;
  s = RunSweep(grown, Options(dir), third.AsRunner());
  ASSERT_THAT(s, testing::IsOk());
  EXPECT_EQ(s->skipped, 8);
  EXPECT_EQ(s->ran, 4);
  EXPECT_EQ(third.calls.size(), 4u);
  for (const WorkUnit& u : EnumerateUnits(grown)) {
    EXPECT_EQ(third.calls.count(u.id), u.seed == 2 ? 1u : 0u) << u.id;
  }
  EXPECT_EQ(RowsById(dir.File("out/results.h5")).size(), 12u);
}

TEST(SweepScheduler, FailingUnitIsRecordedAndTheRestStillRun) {
  testing::TempDir dir;
  FakeRunner fake;
  fake.fail = true;
  absl::StatusOr<SweepSummary> s = RunSweep(Spec(), Options(dir), fake.AsRunner());
  ASSERT_THAT(s, testing::IsOk());
  EXPECT_EQ(s->ran, 8);
  EXPECT_EQ(s->failed, 2);
  EXPECT_EQ(fake.calls.size(), 8u);

  std::map<std::string, UnitResult> rows = RowsById(dir.File("out/results.h5"));
  ASSERT_EQ(rows.size(), 8u);
  for (const WorkUnit& u : EnumerateUnits(Spec())) {
    const UnitResult& r = rows[u.id];
    if (Rejected(u)) {
      EXPECT_FALSE(r.ok) << u.id;
      EXPECT_THAT(r.error, HasSubstr("refuses target 0.3"));
      EXPECT_EQ(r.circuit_file, "");
    } else {
      EXPECT_TRUE(r.ok) << u.id;
      EXPECT_EQ(r.error, "");
    }
  }
}

TEST(SweepScheduler, RetryFailedRunsOnlyTheFailedUnitsAgain) {
  testing::TempDir dir;
  FakeRunner failing;
  failing.fail = true;
  ASSERT_THAT(RunSweep(Spec(), Options(dir), failing.AsRunner()), testing::IsOk());

  // Without --retry-failed a failure row counts as finished.
  FakeRunner plain;
  absl::StatusOr<SweepSummary> s = RunSweep(Spec(), Options(dir), plain.AsRunner());
  ASSERT_THAT(s, testing::IsOk());
  EXPECT_EQ(s->skipped, 8);
  EXPECT_TRUE(plain.calls.empty());

  // With it, exactly the two failed units run again; their rows are replaced.
  FakeRunner retry;
  s = RunSweep(Spec(), Options(dir, /*retry_failed=*/true), retry.AsRunner());
  ASSERT_THAT(s, testing::IsOk());
  EXPECT_EQ(s->skipped, 6);
  EXPECT_EQ(s->ran, 2);
  EXPECT_EQ(s->failed, 0);
  ASSERT_EQ(retry.calls.size(), 2u);
  for (const auto& [id, n] : retry.calls) {
    EXPECT_EQ(n, 1);
    EXPECT_THAT(id, ::testing::StartsWith("bracket_counting-"));
  }
  std::map<std::string, UnitResult> rows = RowsById(dir.File("out/results.h5"));
  ASSERT_EQ(rows.size(), 8u);
  for (const auto& [id, r] : rows) EXPECT_TRUE(r.ok) << id;

  // Retrying when nothing failed runs nothing.
  FakeRunner idle;
  s = RunSweep(Spec(), Options(dir, /*retry_failed=*/true), idle.AsRunner());
  ASSERT_THAT(s, testing::IsOk());
  EXPECT_EQ(s->ran, 0);
  EXPECT_TRUE(idle.calls.empty());
}

TEST(SweepScheduler, UnwritableOutputIsAnError) {
  testing::TempDir dir;
  // A file where the output folder should be.
  FILE* f = std::fopen(dir.File("out").c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  FakeRunner fake;
  EXPECT_THAT(RunSweep(Spec(), Options(dir), fake.AsRunner()),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot create")));
  EXPECT_TRUE(fake.calls.empty());
}

TEST(SweepScheduler, SlurmScriptRunsTheSameSweepThroughSrun) {
  const std::string script = SlurmScript("/abs/spec.json", "/abs/out", 16, "/opt/bin/circuit");
  EXPECT_THAT(script, ::testing::StartsWith("#!/bin/bash\n"));
  EXPECT_THAT(script, HasSubstr("#SBATCH --ntasks=16\n"));
  EXPECT_THAT(script, HasSubstr("srun /opt/bin/circuit sweep /abs/spec.json --out /abs/out\n"));
}

}  // namespace
}  // namespace circuit
