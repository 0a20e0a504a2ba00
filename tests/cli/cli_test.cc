// The circuit program as a user runs it: help, init, inspect, generate, corpus, and bad input.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "circuit/core/file_util.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/one_line_error.h"
#include "testing/run.h"
#include "testing/temp_dir.h"

namespace circuit::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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

// Sizes whose product overflows int (n_head * d_head = 2^32) or that would
// need terabytes: a message, not bad_alloc or a wrapped negative width.
TEST_F(CliTest, InitRejectsAbsurdSizes) {
  RunResult r = RunCommand(CircuitBinary() + " init --heads 65536 --d-head 65536 --out " +
                           dir_->File("x.h5"));
  ExpectOneLineError(r, "init");
  EXPECT_THAT(r.err, HasSubstr("n_head * d_head must be <= 65536, got 4294967296"));
  r = RunCommand(CircuitBinary() + " init --layers 1000000000 --out " + dir_->File("x.h5"));
  ExpectOneLineError(r, "init");
  EXPECT_THAT(r.err, HasSubstr("n_layer must be <= 1024"));
  r = RunCommand(CircuitBinary() + " init --layers 1024 --d-model 65536 --d-mlp 65536 --out " +
                 dir_->File("x.h5"));
  ExpectOneLineError(r, "init");
  EXPECT_THAT(r.err, HasSubstr("parameters, more than the"));
}

// An exception out of libtorch (here multinomial on the NaN probabilities that
// a 1e-300 temperature makes) is one line and an exit code, never an abort.
TEST_F(CliTest, LibtorchErrorIsOneLineNotAnAbort) {
  RunResult r = RunCommand(CircuitBinary() + " generate --model " + model_ +
                           " --temperature 1e-300 --tokens 4 --threads 1");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, ::testing::StartsWith("circuit generate: "));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// A full disk (here a 50 KB file-size limit, SIGXFSZ ignored so that writes
// fail with EFBIG) once aborted export-torch inside libtorch's stream writer
// and left final_model.pt.tmp-* behind.
TEST_F(CliTest, ExportTorchOnAFullDiskIsOneLineAndLeavesNoTempFile) {
  const std::string out = dir_->File("full");
  std::filesystem::create_directories(out);
  RunResult r = RunCommand("bash -c \"trap '' XFSZ; ulimit -f 100; " + CircuitBinary() +
                           " export-torch " + model_ + " --out " + out + "\"");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("write failed (disk full?)"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const auto& entry : std::filesystem::directory_iterator(out)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  }
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

// extract picks its mask settings by the model's size unless told, prints one
// progress line per stage when stderr is not a terminal, and runs with passive
// OpenMP waiting unless the user chose a policy.
TEST_F(CliTest, ExtractPresetProgressAndWaitPolicy) {
  const std::string out = dir_->File("preset");
  const std::string args = " extract --task single_double_quote --pairs 16 --epochs 1 --no-importance "
                           "--threads 1 --model " + model_ + " --out " + out;
  RunResult r = RunCommand("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT " + CircuitBinary() + args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* stage : {"] means\n", "] masks\n", "] discretize\n", "] verify"}) {
    EXPECT_THAT(r.err, HasSubstr(stage)) << r.err;
  }
  EXPECT_THAT(r.err, HasSubstr("circuit extract: ["));
  nlohmann::json summary = nlohmann::json::parse(std::ifstream(out + "/summary.json"));
  EXPECT_THAT(summary["extract"]["preset"].get<std::string>(), ::testing::StartsWith("small (auto: "));
  EXPECT_EQ(summary["penalty"], "linear");
  EXPECT_EQ(summary["extract"]["runtime"]["omp_wait_policy"], "passive");
  EXPECT_THAT(r.out, HasSubstr("preset small (auto: "));

  EXPECT_EQ(summary["extract"]["runtime"]["threads_auto"], false);

  // Auto threads (--threads 0): each stage line says how many threads it runs on.
  r = RunCommand("OMP_WAIT_POLICY=active " + CircuitBinary() + args + " --preset paper --threads 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Beside busy cores the batches get more threads than the operations:
  // "(1 thread, 3 for batches)".
  EXPECT_THAT(r.err, ::testing::ContainsRegex("] masks \\([0-9]+ threads?(, [0-9]+ for batches)?\\)\n"))
      << r.err;
  summary = nlohmann::json::parse(std::ifstream(out + "/summary.json"));
  EXPECT_EQ(summary["extract"]["preset"], "paper");
  EXPECT_EQ(summary["penalty"], "log");
  EXPECT_EQ(summary["extract"]["runtime"]["omp_wait_policy"], "active");
  EXPECT_EQ(summary["extract"]["runtime"]["threads_auto"], true);

  // A flag given beside a preset wins over the preset's value.
  r = RunCommand(CircuitBinary() + args + " --preset paper --penalty linear");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  summary = nlohmann::json::parse(std::ifstream(out + "/summary.json"));
  EXPECT_EQ(summary["penalty"], "linear");

  ExpectOneLineError(RunCommand(CircuitBinary() + args + " --preset huge"), "extract");
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
    // Selected on train pairs; minimal there unless validation put nodes back.
    EXPECT_EQ(refine["selection"]["split"], "train");
    EXPECT_GT(refine["selection"]["pairs"].get<int64_t>(), 0);
    if (refine["readded_nodes"].get<int64_t>() == 0) {
      EXPECT_EQ(summary["figures"]["minimality"], 1.0);
    }
    if (refine["removed_nodes"].get<int64_t>() > 0) {
      EXPECT_GE(refine["confirm_evaluations"].get<int64_t>(), 1);
    }
    EXPECT_THAT(r.out, HasSubstr("  refined   "));
  }
  bad = RunCommand(CircuitBinary() + " extract --task single_double_quote --refine-limit -1 " +
                   "--model " + model_ + " --out " + out);
  ExpectOneLineError(bad, "extract");
  EXPECT_THAT(bad.err, HasSubstr("--refine-limit must be >= 0, got -1"));
  bad = RunCommand(CircuitBinary() + " extract --task single_double_quote --refine-pairs -2 " +
                   "--model " + model_ + " --out " + out);
  ExpectOneLineError(bad, "extract");
  EXPECT_THAT(bad.err, HasSubstr("--refine-pairs must be >= 0, got -2"));
  bad = RunCommand(CircuitBinary() + " extract --task single_double_quote --eval-batch 0 " +
                   "--model " + model_ + " --out " + out);
  ExpectOneLineError(bad, "extract");
  EXPECT_THAT(bad.err, HasSubstr("--eval-batch must be >= 1, got 0"));

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

// explain adds /explanations/ to a circuit file, which inspect then summarises;
// extract explains by itself when given a corpus, and says why when it cannot.
TEST_F(CliTest, ExplainThenInspect) {
  std::filesystem::create_directories(dir_->File("esrc"));
  for (int i = 0; i < 40; ++i) {
    std::ofstream(dir_->File("esrc/m" + std::to_string(i) + ".py"))
        << "def f" << i << "(x):\n    print(\"v" << i << "\", x)\n    return 'w" << i << "' + x\n";
  }
  const std::string corpus = dir_->File("ecorpus");
  RunResult r = RunCommand(CircuitBinary() + " corpus build --root " + dir_->File("esrc") +
                           " --val-per-mille 500 --out " + corpus);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string out = dir_->File("equote");
  const std::string extract = CircuitBinary() + " extract --task single_double_quote --pairs 16 --epochs 1 " +
                              "--no-importance --threads 1 --model " + model_ + " --out " + out;
  r = RunCommand(extract + " --no-explain");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("explained")));
  const std::string circuit = out + "/circuit.h5";
  r = RunCommand(CircuitBinary() + " inspect " + circuit);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("explanations (")));

  r = RunCommand(CircuitBinary() + " explain --top 3 --windows 4 --threads 1 --model " + model_ + " --corpus " +
                 corpus + " --circuit " + circuit);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("explanations (contexts: corpus " + corpus));
  EXPECT_THAT(r.out, HasSubstr(" top "));
  EXPECT_THAT(r.out, HasSubstr("nodes in"));
  const size_t lines = std::count(r.out.begin(), r.out.end(), '\n');
  r = RunCommand(CircuitBinary() + " inspect " + circuit);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("explanations (contexts: corpus " + corpus));
  const nlohmann::json summary = nlohmann::json::parse(std::ifstream(out + "/summary.json"));
  EXPECT_EQ(lines, summary["nodes"].size() + 2);  // heading, one per node, the closing line

  r = RunCommand(extract + " --corpus " + corpus);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("  explained "));
  EXPECT_THAT(r.out, HasSubstr(" nodes in "));
  const std::string binary = std::filesystem::absolute(CircuitBinary()).string();  // run where no ./corpus is
  r = RunCommand("cd " + dir_->File("esrc") + " && " + binary + extract.substr(CircuitBinary().size()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("explained skipped: no corpus at corpus"));

  r = RunCommand(CircuitBinary() + " explain --model " + model_ + " --corpus " + dir_->File("nowhere") +
                 " --circuit " + circuit);
  ExpectOneLineError(r, "explain");
  EXPECT_THAT(r.err, HasSubstr("circuit corpus build"));
  RunResult other = InitTinyModel(dir_->File("other2.h5"), /*seed=*/2);
  ASSERT_EQ(other.exit_code, 0) << other.err;
  ExpectOneLineError(RunCommand(CircuitBinary() + " explain --model " + dir_->File("other2.h5") + " --corpus " +
                                corpus + " --circuit " + circuit),
                     "explain");
  ExpectOneLineError(RunCommand(CircuitBinary() + " explain --top 0 --circuit " + circuit), "explain");
  ExpectOneLineError(RunCommand(CircuitBinary() + " explain"), "explain");
}

// audit re-runs what it needs from the settings recorded in the circuit file,
// writes audit.json beside it, prints the same object with --json, and refuses
// a model whose digest is not the circuit's.
TEST_F(CliTest, AuditWritesEveryKey) {
  const std::string out = dir_->File("audited");
  RunResult r = RunCommand(CircuitBinary() + " extract --task single_double_quote --pairs 16 --epochs 1 " +
                           "--no-importance --threads 1 --model " + model_ + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // ablate finds the circuit's own splits without --pairs.
  r = RunCommand(CircuitBinary() + " ablate --json --random-draws 1 --threads 1 --model " + model_ +
                 " --circuit " + out + "/circuit.h5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["loss"]["circuit"].is_number(), true);
  // ... and scores it on one template family, or refuses a task with other candidates.
  r = RunCommand(CircuitBinary() + " ablate --json --random-draws 0 --threads 1 --task " +
                 "single_double_quote@print --model " + model_ + " --circuit " + out + "/circuit.h5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["task"], "single_double_quote@print");
  RunResult other_task = RunCommand(CircuitBinary() + " ablate --task bracket_brace --model " + model_ +
                                    " --circuit " + out + "/circuit.h5");
  ExpectOneLineError(other_task, "ablate");
  EXPECT_THAT(other_task.err, HasSubstr("candidates"));

  r = RunCommand(CircuitBinary() + " audit --json --seeds 2 --threads 1 --model " + model_ +
                 " --circuit " + out + "/circuit.h5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  std::ifstream file(out + "/audit.json");
  ASSERT_TRUE(file.good());
  EXPECT_EQ(nlohmann::json::parse(file), j);

  const nlohmann::json& f = j["faithfulness"];
  ASSERT_TRUE(f["curve"].is_array());
  EXPECT_EQ(f["curve"].size(), 11u);
  for (const nlohmann::json& p : f["curve"]) {
    EXPECT_TRUE(p["fraction"].is_number()) << p;
    EXPECT_TRUE(p["nodes"].is_number_integer()) << p;
    EXPECT_TRUE(p["loss"].is_number()) << p;
    EXPECT_TRUE(p["f"].is_number()) << p;
  }
  EXPECT_TRUE(f["cpr"].is_number());
  EXPECT_TRUE(f["cmd"].is_number());
  EXPECT_THAT(f["definition"].get<std::string>(), HasSubstr("trapezoid"));
  for (const char* ranking : {"masks", "attribution", "random"}) {
    EXPECT_TRUE(f["by_ranking"][ranking]["cpr"].is_number()) << ranking;
  }
  for (const char* control : {"shuffled", "random_init", "constant"}) {
    const nlohmann::json& c = j["controls"][control];
    EXPECT_TRUE(c["n_nodes"].is_number_integer()) << control;
    EXPECT_TRUE(c["n_edges"].is_number_integer()) << control;
    EXPECT_TRUE(c["circuit_loss"].is_number()) << control;
    EXPECT_TRUE(c["met_target"].is_boolean()) << control;
  }
  EXPECT_EQ(j["completeness"]["subsets"], 32);
  EXPECT_TRUE(j["completeness"]["mean"].is_number());
  EXPECT_TRUE(j["completeness"]["max"].is_number());
  EXPECT_EQ(j["stability"]["runs"], 2);  // the circuit and one run with another seed and pairs
  EXPECT_EQ(j["stability"]["joint"], true);
  EXPECT_TRUE(j["control_ratio"].is_number());
  for (const char* part : {"losses", "curves", "completeness", "controls", "stability", "transfer"}) {
    EXPECT_TRUE(j["time_parts"][part].is_number()) << part;
  }
  EXPECT_TRUE(j["stability"]["mean_jaccard"].is_number());
  EXPECT_TRUE(j["stability"]["min_jaccard"].is_number());
  EXPECT_TRUE(j["stability"]["core"].is_array());
  // The quote task has template families: one is held out.
  const nlohmann::json& t = j["transfer"];
  ASSERT_TRUE(t.is_object()) << j.dump();
  EXPECT_TRUE(t["families"]["extracted_on"].is_array());
  EXPECT_EQ(t["families"]["held_out"].size(), 1u);
  EXPECT_TRUE(t["held_out_loss"].is_number());
  EXPECT_TRUE(t["full_model_held_out_loss"].is_number());
  EXPECT_FALSE(j["verdict"].get<std::string>().empty());

  // The short report says the same; --task scores the circuit on another task
  // with the same candidates, and refuses one with other candidates.
  r = RunCommand(CircuitBinary() + " audit --seeds 0 --threads 1 --model " + model_ + " --circuit " +
                 out + "/circuit.h5 --task single_double_quote@print");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("verdict"));
  EXPECT_THAT(r.out, HasSubstr("other task   single_double_quote@print: circuit"));
  EXPECT_THAT(r.out, HasSubstr("time "));
  std::ifstream again(out + "/audit.json");
  const nlohmann::json o = nlohmann::json::parse(again);
  EXPECT_EQ(o["other_task"]["task"], "single_double_quote@print");
  EXPECT_TRUE(o["other_task"]["circuit_loss"].is_number());
  EXPECT_TRUE(o["other_task"]["full_model_loss"].is_number());
  ExpectOneLineError(RunCommand(CircuitBinary() + " audit --seeds 0 --task bracket_brace --model " +
                                model_ + " --circuit " + out + "/circuit.h5"),
                     "audit");

  RunResult other = InitTinyModel(dir_->File("other_audit.h5"), /*seed=*/3);
  ASSERT_EQ(other.exit_code, 0) << other.err;
  RunResult bad = RunCommand(CircuitBinary() + " audit --model " + dir_->File("other_audit.h5") +
                             " --circuit " + out + "/circuit.h5");
  ExpectOneLineError(bad, "audit");
  EXPECT_THAT(bad.err, HasSubstr("digest"));
  ExpectOneLineError(RunCommand(CircuitBinary() + " audit --circuit " + dir_->File("none.h5")), "audit");
}

// --device cuda needs a CUDA build of libtorch: the help says so, and a CPU-only
// build (Debian's) refuses it with one line that says how to build one.
TEST_F(CliTest, DeviceCudaSaysWhatItNeeds) {
  for (const char* command : {"extract", "sweep", "train", "ablate"}) {
    RunResult r = RunCommand(CircuitBinary() + " " + command + " --help");
    EXPECT_THAT(r.out + r.err, HasSubstr("CUDA build of libtorch 1.13")) << command;
    EXPECT_THAT(r.out + r.err, HasSubstr("-DTorch_DIR=")) << command;
  }
  RunResult r = RunCommand(CircuitBinary() + " extract --task single_double_quote --device cuda --model " +
                           model_ + " --out " + dir_->File("cuda"));
  if (r.exit_code == 2 && r.err.find("CPU-only libtorch") != std::string::npos) {
    EXPECT_THAT(r.err, HasSubstr("-DTorch_DIR="));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  } else {  // a CUDA build: it runs, or says that no GPU is visible
    EXPECT_TRUE(r.exit_code == 0 || r.err.find("no GPU is visible") != std::string::npos)
        << r.exit_code << r.err;
  }
}

// A full disk, simulated with a file-size limit (RLIMIT_FSIZE; SIGXFSZ ignored,
// so writes past it fail with EFBIG as they would with ENOSPC): one line naming
// the disk, exit 1, no crash (HDF5's exit handler used to close the file whose
// close had failed a second time, and segfault), no temporary file left.
TEST_F(CliTest, FullDiskGivesOneLineAndNoCrash) {
  const std::string dir = dir_->File("full");
  std::filesystem::create_directories(dir);
  // The limit applies to the program only: its stderr goes through a pipe (not
  // subject to the limit) to a `cat` outside it.
  auto limited = [&](int kib, const std::string& args) {
    return RunCommand("/bin/bash -c \"(trap '' XFSZ; ulimit -f " + std::to_string(kib) + "; exec " +
                      CircuitBinary() + " " + args +
                      ") 2>&1 >/dev/null | cat >&2; exit \\${PIPESTATUS[0]}\"");
  };
  const std::string init = "init --layers 1 --d-model 16 --heads 2 --d-head 8 --d-mlp 32 --n-ctx 32 --out " +
                           dir + "/m.h5";
  // 0 bytes: HDF5 cannot even create the file; the disk is named, not the folder.
  RunResult r = limited(0, init);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("disk full?"));
  EXPECT_THAT(r.err, Not(HasSubstr("does the directory exist")));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // Some bytes, not enough for the model (its tokenizer alone is ~0.5 MB).
  r = limited(64, init);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("disk full?"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // extract's circuit.h5 the same way (the model is read, the outputs fail):
  // after its progress lines (one per stage, "circuit extract: [  t s] stage"),
  // one error line.
  r = limited(4, "extract --task single_double_quote --pairs 16 --epochs 1 --no-importance --threads 1 --model " +
                     model_ + " --out " + dir + "/x");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("disk full?"));
  std::string errors;
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("circuit extract: [", 0) != 0) errors += line + "\n";
  }
  EXPECT_EQ(std::count(errors.begin(), errors.end(), '\n'), 1) << r.err;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/m.h5"));
}

// Two runs into one folder write their files as a unit: extract takes the
// folder's lock before its first file, so while another holder has it, none of
// circuit.h5, summary.json, circuit.dot appears; they all do once it is released.
TEST_F(CliTest, ExtractWritesItsFolderUnderTheFolderLock) {
  const std::string out = dir_->File("locked");
  std::filesystem::create_directories(out);
  absl::StatusOr<FolderLock> held = FolderLock::Acquire(out);
  ASSERT_TRUE(held.ok()) << held.status();
  RunResult r;
  std::thread run([&] {
    r = RunCommand(CircuitBinary() + " extract --task single_double_quote --pairs 16 --epochs 1 " +
                   "--no-importance --threads 1 --model " + model_ + " --out " + out);
  });
  // Long enough for the extraction itself on the tiny model; it then waits.
  std::this_thread::sleep_for(std::chrono::seconds(8));
  for (const char* name : {"circuit.h5", "summary.json", "circuit.dot"}) {
    EXPECT_FALSE(std::filesystem::exists(out + "/" + name)) << name << " written under another's lock";
  }
  FolderLock released = *std::move(held);
  { FolderLock gone = std::move(released); }  // unlocks
  run.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* name : {"circuit.h5", "summary.json", "circuit.dot"}) {
    EXPECT_TRUE(std::filesystem::exists(out + "/" + name)) << name;
  }
  // A sweep refuses a folder another run holds, instead of rewriting its results.h5.
  absl::StatusOr<FolderLock> again = FolderLock::Acquire(out);
  ASSERT_TRUE(again.ok()) << again.status();
  const std::string spec = dir_->File("locked_spec.json");
  std::ofstream(spec) << "{\"models\": [\"" << model_ << "\"], \"tasks\": [\"single_double_quote\"]}";
  r = RunCommand(CircuitBinary() + " sweep " + spec + " --out " + out);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("another circuit run is writing into this folder"));
  EXPECT_FALSE(std::filesystem::exists(out + "/results.h5"));
}

}  // namespace
}  // namespace circuit::testing
