// `circuit sweep` as a user runs it: one process, two MPI ranks, a sweep killed
// with SIGKILL and resumed, failing units, --emit-slurm, bad usage.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "circuit/core/h5.h"
#include "circuit/sweep/results.h"
#include "circuit/sweep/spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/require.h"
#include "testing/run.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

extern char** environ;

namespace circuit::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kMpirun[] = "/usr/bin/mpirun";

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// A spec over `models` and `tasks` with seeds and tiny splits, so units take ~1 s.
std::string SpecJson(const std::vector<std::string>& models, const std::vector<std::string>& tasks,
                     const std::string& seeds = "[0]", int epochs = 1, int n_train = 16) {
  auto list = [](const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? ", \"" : "\"") + items[i] + "\"";
    return out + "]";
  };
  return "{\"name\": \"test\", \"models\": " + list(models) + ", \"tasks\": " + list(tasks) +
         ", \"target_losses\": [0.3], \"seeds\": " + seeds +
         ", \"epochs\": " + std::to_string(epochs) + ", \"n_train\": " + std::to_string(n_train) +
         "}";
}

struct Summary {
  int total = -1, skipped = -1, ran = -1, failed = -1, ranks = -1;
};

// Parses the final line of `circuit sweep` (see cli/cmd_sweep.cc).
Summary ParseSummary(const std::string& out) {
  static const std::regex kLine(
      R"((\d+) units: (\d+) skipped \(finished before\), (\d+) ran, (\d+) failed; [0-9.]+ s on (\d+) rank)");
  std::smatch m;
  Summary s;
  if (std::regex_search(out, m, kLine)) {
    s = {std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3]), std::stoi(m[4]), std::stoi(m[5])};
  }
  return s;
}

std::map<std::string, UnitResult> RowsById(const std::string& path) {
  absl::StatusOr<std::vector<UnitResult>> rows = ResultsFile::Read(path);
  EXPECT_THAT(rows, IsOk());
  std::map<std::string, UnitResult> by_id;
  if (!rows.ok()) return by_id;
  for (const UnitResult& r : *rows) {
    EXPECT_TRUE(by_id.emplace(r.unit.id, r).second) << "row repeated: " << r.unit.id;
  }
  return by_id;
}

// The weights digest a model file records at its root (what `circuit sweep`
// computes from the loaded weights); "" when the file cannot be read.
std::string RecordedDigest(const std::string& model) {
  absl::StatusOr<H5Reader> r = H5Reader::Open(model);
  if (!r.ok()) return "";
  absl::StatusOr<std::string> digest = r->ReadStringAttribute("/", "digest");
  return digest.ok() ? *digest : "";
}

// The units as `circuit sweep` enumerates them: keyed by each model's digest.
std::vector<WorkUnit> UnitsOf(const std::string& spec_path) {
  absl::StatusOr<SweepSpec> spec = LoadSweepSpec(spec_path);
  EXPECT_THAT(spec, IsOk());
  if (!spec.ok()) return {};
  for (const std::string& model : spec->models) spec->model_digests.push_back(RecordedDigest(model));
  return EnumerateUnits(*spec);
}

// Every unit of the spec has exactly one ok row and its circuit file.
void ExpectAllOk(const std::string& spec_path, const std::string& out_dir) {
  const std::vector<WorkUnit> units = UnitsOf(spec_path);
  std::map<std::string, UnitResult> rows = RowsById(out_dir + "/results.h5");
  EXPECT_EQ(rows.size(), units.size());
  for (const WorkUnit& u : units) {
    ASSERT_EQ(rows.count(u.id), 1u) << u.id;
    const UnitResult& r = rows[u.id];
    EXPECT_TRUE(r.ok) << u.id << ": " << r.error;
    EXPECT_EQ(r.circuit_file, "units/" + u.id + ".h5");
    EXPECT_TRUE(std::filesystem::exists(out_dir + "/" + r.circuit_file)) << r.circuit_file;
    EXPECT_GT(r.total_nodes, 0);
    EXPECT_GT(r.n_nodes, 0);
    EXPECT_LE(r.n_nodes, r.total_nodes);
    EXPECT_GT(r.prune_seconds, 0.0);
    EXPECT_LE(r.prune_seconds, r.seconds);
    // Not audited (the spec's "audit" is off by default): no audit figures.
    EXPECT_TRUE(std::isnan(r.cpr) && std::isnan(r.cmd) && std::isnan(r.jaccard) &&
                std::isnan(r.control_ratio)) << u.id;
  }
}

class SweepCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    model_ = dir_->File("tiny.h5");
    RunResult r = InitTinyModel(model_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
  static std::string model_;
  TempDir tmp_;
};
TempDir* SweepCliTest::dir_ = nullptr;
std::string SweepCliTest::model_;

TEST_F(SweepCliTest, HelpDocumentsTheExitCode) {
  RunResult r = RunCommand(CircuitBinary() + " sweep --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("usage: circuit sweep SPEC.json --out DIR"));
  EXPECT_THAT(r.out, HasSubstr("Exit code: 0 when the sweep ran, even if some units failed"));
  EXPECT_THAT(r.out, HasSubstr("--retry-failed"));
  EXPECT_THAT(r.out, HasSubstr("--emit-slurm"));
}

TEST_F(SweepCliTest, BadUsageAndBadSpecGiveOneLine) {
  const std::string spec = tmp_.File("spec.json");
  WriteFile(spec, R"({"models": ["m.h5"], "tasks": ["single_double_quote"], "epoch": 3})");
  RunResult r = RunCommand(CircuitBinary() + " sweep " + spec + " --out " + tmp_.File("out"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "circuit sweep: " + spec + ": epoch: unknown field\n");
  r = RunCommand(CircuitBinary() + " sweep " + spec);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "circuit sweep: --out is required\n");
  r = RunCommand(CircuitBinary() + " sweep " + tmp_.File("none.json") + " --out " + tmp_.File("o"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("none.json: cannot read"));
  EXPECT_FALSE(std::filesystem::exists(tmp_.File("out")));
}

TEST_F(SweepCliTest, EmitSlurmWritesTheScriptAndRunsNothing) {
  const std::string spec = tmp_.File("spec.json");
  WriteFile(spec, SpecJson({model_}, {"single_double_quote"}));
  const std::string out = tmp_.File("out");
  RunResult r =
      RunCommand(CircuitBinary() + " sweep " + spec + " --out " + out + " --emit-slurm --tasks 8");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("sweep.sbatch"));
  const std::string script = ReadText(out + "/sweep.sbatch");
  EXPECT_THAT(script, HasSubstr("#SBATCH --ntasks=8\n"));
  EXPECT_THAT(script, HasSubstr(" sweep " + spec + " --out " + out + "\n"));
  EXPECT_FALSE(std::filesystem::exists(out + "/results.h5"));
}

// (d) A missing model and an unknown task fail their units only; the sweep ends
// with exit code 0 and says how many failed; --retry-failed runs just those.
TEST_F(SweepCliTest, FailingUnitsAreRecordedAndTheSweepGoesOn) {
  const std::string spec = tmp_.File("spec.json");
  const std::string missing = tmp_.File("missing.h5");
  WriteFile(spec, SpecJson({model_, missing}, {"single_double_quote", "no_such_task"}));
  const std::string out = tmp_.File("out");
  const std::string command = CircuitBinary() + " sweep " + spec + " --out " + out + " --threads 1";
  RunResult r = RunCommand(command);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Summary s = ParseSummary(r.out);
  EXPECT_EQ(s.total, 4) << r.out;
  EXPECT_EQ(s.ran, 4);
  EXPECT_EQ(s.failed, 3);
  EXPECT_THAT(r.err, HasSubstr("FAILED"));
  EXPECT_THAT(r.err, HasSubstr("target NOT met: whole model kept"));

  std::map<std::string, UnitResult> rows = RowsById(out + "/results.h5");
  ASSERT_EQ(rows.size(), 4u);
  int ok = 0;
  for (const auto& [id, row] : rows) {
    if (row.unit.model == model_ && row.unit.task == "single_double_quote") {
      EXPECT_TRUE(row.ok) << row.error;
      EXPECT_TRUE(std::filesystem::exists(out + "/" + row.circuit_file));
      // A random tiny model cannot reach loss 0.3: the unit finishes, keeping every node.
      EXPECT_FALSE(row.met_target);
      EXPECT_EQ(row.n_nodes, row.total_nodes);
      ++ok;
      continue;
    }
    EXPECT_FALSE(row.ok) << id;
    EXPECT_EQ(row.circuit_file, "") << id;
    if (row.unit.model == missing) {
      EXPECT_THAT(row.error, HasSubstr("missing.h5")) << id;
    } else {
      EXPECT_THAT(row.error, HasSubstr("no_such_task")) << id;
    }
  }
  EXPECT_EQ(ok, 1);

  r = RunCommand(command);  // failures count as finished
  ASSERT_EQ(r.exit_code, 0) << r.err;
  s = ParseSummary(r.out);
  EXPECT_EQ(s.skipped, 4) << r.out;
  EXPECT_EQ(s.ran, 0);

  r = RunCommand(command + " --retry-failed");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  s = ParseSummary(r.out);
  EXPECT_EQ(s.skipped, 1) << r.out;
  EXPECT_EQ(s.ran, 3);
  EXPECT_EQ(s.failed, 3);
  EXPECT_EQ(RowsById(out + "/results.h5").size(), 4u);
}

// (c) SIGKILL once a unit has finished, run the same command again: every unit
// then has exactly one row, and the file stayed readable throughout.
TEST_F(SweepCliTest, KilledSweepResumesWhereItStopped) {
  const std::string spec = tmp_.File("spec.json");
  WriteFile(spec, SpecJson({model_}, {"single_double_quote", "bracket_counting", "set_or_string"},
                           "[0, 1, 2]", /*epochs=*/2, /*n_train=*/32));
  const std::string out = tmp_.File("out");
  const std::string results = out + "/results.h5";
  const std::string command = CircuitBinary() + " sweep " + spec + " --out " + out + " --threads 1";

  const std::string shell = "exec " + command + " >" + tmp_.File("log") + " 2>&1";
  const char* argv[] = {"/bin/sh", "-c", shell.c_str(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  size_t rows_at_kill = 0;
  bool exited = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    if (std::filesystem::exists(results)) {
      absl::StatusOr<std::vector<UnitResult>> rows = ResultsFile::Read(results);
      ASSERT_THAT(rows, IsOk());  // readable at any moment
      if (!rows->empty()) {
        ASSERT_EQ(kill(pid, SIGKILL), 0);
        waitpid(pid, &status, 0);
        rows_at_kill = rows->size();
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_FALSE(exited) << "the sweep finished before it could be killed:\n"
                       << ReadText(tmp_.File("log"));
  ASSERT_GE(rows_at_kill, 1u) << ReadText(tmp_.File("log"));
  absl::StatusOr<std::vector<UnitResult>> after_kill = ResultsFile::Read(results);
  ASSERT_THAT(after_kill, IsOk());
  ASSERT_LT(after_kill->size(), 9u) << "all units finished before the kill";

  RunResult r = RunCommand(command);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Summary s = ParseSummary(r.out);
  EXPECT_EQ(s.total, 9) << r.out;
  EXPECT_EQ(s.skipped, static_cast<int>(after_kill->size()));
  EXPECT_EQ(s.skipped + s.ran, 9);
  EXPECT_EQ(s.failed, 0) << r.err;
  ExpectAllOk(spec, out);
}

// A model file replaced in place (same path, other weights) is a different
// model: its units run again instead of being skipped as finished, and each row
// names the weights it ran on.
TEST_F(SweepCliTest, ModelChangedInPlaceRunsAgain) {
  const std::string model = tmp_.File("changing.h5");
  ASSERT_EQ(InitTinyModel(model, /*seed=*/1).exit_code, 0);
  const std::string first_digest = RecordedDigest(model);
  const std::string spec = tmp_.File("spec.json");
  WriteFile(spec, SpecJson({model}, {"single_double_quote"}));
  const std::string out = tmp_.File("out");
  const std::string command = CircuitBinary() + " sweep " + spec + " --out " + out + " --threads 1";
  RunResult r = RunCommand(command);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ParseSummary(r.out).ran, 1) << r.out;
  r = RunCommand(command);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ParseSummary(r.out).skipped, 1) << r.out;

  ASSERT_EQ(InitTinyModel(model, /*seed=*/2).exit_code, 0);
  ASSERT_NE(RecordedDigest(model), first_digest);
  r = RunCommand(command);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Summary s = ParseSummary(r.out);
  EXPECT_EQ(s.skipped, 0) << r.out;
  EXPECT_EQ(s.ran, 1) << r.out;
  const std::vector<WorkUnit> units = UnitsOf(spec);  // the new model's unit, under its own id
  ASSERT_EQ(units.size(), 1u);
  std::map<std::string, UnitResult> rows = RowsById(out + "/results.h5");
  ASSERT_EQ(rows.count(units[0].id), 1u);
  EXPECT_TRUE(rows[units[0].id].ok) << rows[units[0].id].error;
  std::set<std::string> digests;
  for (const auto& [id, row] : rows) digests.insert(row.unit.model_digest);
  EXPECT_EQ(digests, (std::set<std::string>{first_digest, RecordedDigest(model)}));
}

TEST_F(SweepCliTest, TwoModelsWithOneStemAreABadSpec) {
  std::filesystem::create_directories(tmp_.File("a"));
  std::filesystem::create_directories(tmp_.File("b"));
  const std::string spec = tmp_.File("spec.json");
  WriteFile(spec, SpecJson({tmp_.File("a/m.h5"), tmp_.File("b/m.h5")}, {"single_double_quote"}));
  RunResult r = RunCommand(CircuitBinary() + " sweep " + spec + " --out " + tmp_.File("out"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("models[1]: '" + tmp_.File("b/m.h5") + "' has the same name stem"));
}

// (b) Two MPI ranks: rank 0 dispatches, rank 1 runs every unit.
void ExpectMpiSweepRuns(const TempDir& tmp, const std::string& model, int n_train) {
  if (!std::filesystem::exists(kMpirun)) CIRCUIT_SKIP_UNLESS_CI() << kMpirun << " is not installed";
  const std::string spec = tmp.File("spec.json");
  WriteFile(spec, SpecJson({model}, {"single_double_quote", "bracket_counting"}, "[0, 1]",
                           /*epochs=*/1, n_train));
  const std::string out = tmp.File("out");
  RunResult r = RunCommand(std::string(kMpirun) + " --allow-run-as-root --oversubscribe -np 2 " +
                           CircuitBinary() + " sweep " + spec + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  Summary s = ParseSummary(r.out);
  EXPECT_EQ(s.total, 4) << r.out;
  EXPECT_EQ(s.ran, 4);
  EXPECT_EQ(s.failed, 0) << r.err;
  EXPECT_EQ(s.ranks, 2);
  ExpectAllOk(spec, out);
  for (const auto& [id, row] : RowsById(out + "/results.h5")) EXPECT_EQ(row.rank, 1) << id;
  // One summary line: the worker rank prints nothing.
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
}

TEST_F(SweepCliTest, TwoMpiRanksOnATinyModel) { ExpectMpiSweepRuns(tmp_, model_, /*n_train=*/16); }

// "audit": true audits every unit: its row gains CPR, CMD, the stability
// Jaccard and the control ratio, and `circuit report` shows them.
TEST_F(SweepCliTest, AuditedSweepRowsCarryTheAuditFigures) {
  if (!std::filesystem::exists(kMpirun)) CIRCUIT_SKIP_UNLESS_CI() << kMpirun << " is not installed";
  std::string json = SpecJson({model_}, {"single_double_quote"});
  json.back() = ',';
  json += " \"audit\": true, \"audit_seeds\": 2}";
  const std::string spec = tmp_.File("spec.json");
  WriteFile(spec, json);
  const std::string out = tmp_.File("out");
  RunResult r = RunCommand(std::string(kMpirun) + " --allow-run-as-root --oversubscribe -np 2 " +
                           CircuitBinary() + " sweep " + spec + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(ParseSummary(r.out).failed, 0) << r.err;
  std::map<std::string, UnitResult> rows = RowsById(out + "/results.h5");
  ASSERT_EQ(rows.size(), 1u);
  const UnitResult& row = rows.begin()->second;
  ASSERT_TRUE(row.ok) << row.error;
  EXPECT_TRUE(std::isfinite(row.cpr)) << row.cpr;
  EXPECT_TRUE(std::isfinite(row.cmd)) << row.cmd;
  EXPECT_GE(row.jaccard, 0.0);
  EXPECT_LE(row.jaccard, 1.0);
  EXPECT_GT(row.control_ratio, 0.0);
  RunResult report = RunCommand(CircuitBinary() + " report " + out);
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_THAT(report.out, HasSubstr("single_double_quote: CPR "));
  EXPECT_THAT(report.out, HasSubstr("control ratio"));
  EXPECT_THAT(ReadText(out + "/report.csv"), HasSubstr(",cpr,cmd,jaccard,control_ratio"));
}

TEST_F(SweepCliTest, TwoMpiRanksOnTheBundledModel) {
  const std::string model = SourceDir() + "/data/models/default.h5";
  if (!std::filesystem::exists(model)) {
    GTEST_SKIP() << model << " does not exist yet (the bundled model is not trained)";
  }
  ExpectMpiSweepRuns(tmp_, model, /*n_train=*/32);
}

}  // namespace
}  // namespace circuit::testing
