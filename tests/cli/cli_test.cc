// The circuit program as a user runs it: help, init, inspect, generate, corpus, and bad input.
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/run.h"
#include "testing/temp_dir.h"

namespace circuit::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// One line on stderr, starting with "circuit <command>:".
void ExpectOneLineError(const RunResult& r, const std::string& command) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, ::testing::StartsWith("circuit " + command + ": "));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

class CliTest : public ::testing::Test {
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
};
TempDir* CliTest::dir_ = nullptr;
std::string CliTest::model_;

TEST_F(CliTest, HelpListsTheSubcommands) {
  RunResult r = RunCommand(CircuitBinary() + " --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* command : {"generate", "init", "inspect"}) {
    EXPECT_THAT(r.out, HasSubstr("\n  " + std::string(command))) << command;
  }
  r = RunCommand(CircuitBinary() + " inspect --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("usage: circuit inspect FILE"));
}

TEST_F(CliTest, UnknownCommandAndOption) {
  RunResult r = RunCommand(CircuitBinary() + " frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command 'frobnicate'"));
  r = RunCommand(CircuitBinary() + " inspect --bogus " + model_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown option --bogus"));
}

TEST_F(CliTest, InspectShowsConfigDensityAndProvenance) {
  RunResult r = RunCommand(CircuitBinary() + " inspect " + model_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("2 layers, d_model 32, 2 heads x 16, d_mlp 64"));
  EXPECT_THAT(r.out, HasSubstr("transformer.h.1.mlp.c_fc.weight"));
  EXPECT_THAT(r.out, HasSubstr("nodes"));
  EXPECT_THAT(r.out, HasSubstr("seed 1"));
}

TEST_F(CliTest, CorruptedFileGivesOneLine) {
  const std::string bad = dir_->File("bad.h5");
  {
    std::ifstream in(model_, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(bad, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  }
  ExpectOneLineError(RunCommand(CircuitBinary() + " inspect " + bad), "inspect");
  std::ofstream(dir_->File("text.h5")) << "hello\n";
  RunResult r = RunCommand(CircuitBinary() + " inspect " + dir_->File("text.h5"));
  ExpectOneLineError(r, "inspect");
  EXPECT_THAT(r.err, HasSubstr("not an HDF5 file"));
  ExpectOneLineError(RunCommand(CircuitBinary() + " inspect " + dir_->File("none.h5")), "inspect");
}

TEST_F(CliTest, GenerateSamplesDeterministically) {
  const std::string cmd = CircuitBinary() + " generate --model " + model_ +
                          " --prompt 'x = ' --tokens 8 --seed 3 --threads 1";
  RunResult a = RunCommand(cmd), b = RunCommand(cmd);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_THAT(a.out, ::testing::StartsWith("x = "));
  EXPECT_EQ(a.out, b.out);
}

TEST_F(CliTest, InitRejectsBadShapes) {
  RunResult r = RunCommand(CircuitBinary() + " init --d-model 0 --out " + dir_->File("x.h5"));
  ExpectOneLineError(r, "init");
  EXPECT_THAT(r.err, HasSubstr("d_model must be > 0"));
  r = RunCommand(CircuitBinary() + " init --vocab 100 --out " + dir_->File("x.h5"));
  ExpectOneLineError(r, "init");
}

TEST_F(CliTest, CorpusBuildInfoAndErrors) {
  std::filesystem::create_directories(dir_->File("src/pkg"));
  for (int i = 0; i < 30; ++i) {
    std::ofstream(dir_->File("src/pkg/m" + std::to_string(i) + ".py"))
        << "def f" << i << "(x):\n    return 'v" << i << "' + x\n";
  }
  const std::string build = CircuitBinary() + " corpus build --root " + dir_->File("src") +
                            " --val-per-mille 300 --out " + dir_->File("corpus");
  RunResult r = RunCommand(build);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("30 found, 0 duplicates"));
  r = RunCommand(CircuitBinary() + " corpus info " + dir_->File("corpus"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("tokens"));

  ExpectOneLineError(RunCommand(CircuitBinary() + " corpus build --root " + dir_->File("nowhere") +
                                " --out " + dir_->File("c2")),
                     "corpus");
  ExpectOneLineError(RunCommand(CircuitBinary() + " corpus info " + dir_->File("src")), "corpus");
  ExpectOneLineError(RunCommand(CircuitBinary() + " corpus"), "corpus");
}

// extract writes the circuit file and its diagram; ablate re-verifies it and
// ranks its nodes; a circuit from another model is refused.
TEST_F(CliTest, ExtractThenAblate) {
  const std::string out = dir_->File("quote");
  RunResult r = RunCommand(CircuitBinary() + " extract --task single_double_quote --pairs 16 --epochs 1 " +
                           "--no-importance --threads 1 --model " + model_ + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("circuit.h5"));
  EXPECT_TRUE(std::filesystem::exists(out + "/circuit.h5"));
  EXPECT_TRUE(std::filesystem::exists(out + "/circuit.dot"));
  // summary.json: the circuit's JSON (as `circuit files --json` would give) plus the run.
  std::ifstream summary_file(out + "/summary.json");
  ASSERT_TRUE(summary_file.good());
  const nlohmann::json summary = nlohmann::json::parse(summary_file);
  EXPECT_EQ(summary["format"], "circuit.json");
  EXPECT_EQ(summary["task"], "single_double_quote");
  EXPECT_EQ(summary["nodes"].size(), summary["figures"]["n_nodes"].get<size_t>());
  EXPECT_TRUE(summary["extract"]["time_seconds"]["total"].get<double>() > 0);
  EXPECT_EQ(summary["extract"]["mask_steps"], 1);
  // k was chosen by the validation loss's upper confidence bound.
  const nlohmann::json& val = summary["extract"]["validation_loss"];
  EXPECT_EQ(val["confidence"], 0.9);
  EXPECT_GE(val["bound_at_k"].get<double>(), val["at_k"].get<double>());
  RunResult bad = RunCommand(CircuitBinary() + " extract --task single_double_quote --confidence 0.3 " +
                             "--model " + model_ + " --out " + out);
  ExpectOneLineError(bad, "extract");
  EXPECT_THAT(bad.err, HasSubstr("--confidence must be in [0.5, 1)"));
  // Refinement ran (or says why not) and the summary reports it.
  const nlohmann::json& refine = summary["extract"]["refine"];
  EXPECT_EQ(refine["enabled"], true);
  EXPECT_EQ(refine["ran"].get<bool>(), summary["figures"]["refined"].get<bool>());
  if (refine["ran"].get<bool>()) {
    EXPECT_EQ(summary["figures"]["minimality"], 1.0);
    EXPECT_THAT(r.out, HasSubstr("  refined   "));
  }
  bad = RunCommand(CircuitBinary() + " extract --task single_double_quote --refine-limit -1 " +
                   "--model " + model_ + " --out " + out);
  ExpectOneLineError(bad, "extract");
  EXPECT_THAT(bad.err, HasSubstr("--refine-limit must be >= 0, got -1"));

  r = RunCommand(CircuitBinary() + " ablate --pairs 16 --top 3 --random-draws 1 --threads 1 --model " + model_ +
                 " --circuit " + out + "/circuit.h5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("location importance"));
  EXPECT_THAT(r.out, HasSubstr("node importance"));

  r = RunCommand(CircuitBinary() + " inspect " + out + "/circuit.h5");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("single_double_quote"));
  r = RunCommand(CircuitBinary() + " inspect --json " + out + "/circuit.h5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json inspected = nlohmann::json::parse(r.out);
  EXPECT_EQ(inspected["nodes"], summary["nodes"]);
  EXPECT_EQ(inspected["figures"]["circuit_loss"], summary["figures"]["circuit_loss"]);

  RunResult other = InitTinyModel(dir_->File("other.h5"), /*seed=*/2);
  ASSERT_EQ(other.exit_code, 0) << other.err;
  ExpectOneLineError(RunCommand(CircuitBinary() + " ablate --model " + dir_->File("other.h5") +
                                " --circuit " + out + "/circuit.h5"),
                     "ablate");
  ExpectOneLineError(RunCommand(CircuitBinary() + " ablate --circuit " + dir_->File("none.h5")), "ablate");
}

}  // namespace
}  // namespace circuit::testing
