// End-to-end: `circuit train` on a tiny corpus, its messages and exit codes.
#include <filesystem>
#include <fstream>
#include <regex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/require.h"
#include "testing/run.h"
#include "testing/temp_dir.h"
#include "tiny_corpus.h"

namespace circuit {
namespace {

using ::testing::HasSubstr;
using testing::CircuitBinary;
using testing::RunCommand;

class TrainCliTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::WriteTinyCorpus(dir_.path()); }
  std::string Train(const std::string& extra) const {
    return CircuitBinary() + " train --corpus " + dir_.path() + " --out " + dir_.File("m.h5") +
           " --layers 1 --d-model 32 --heads 4 --d-head 8 --d-mlp 128 --vocab 300 --n-ctx 32"
           " --batch 4 --threads 1 " + extra;
  }
  testing::TempDir dir_;
};

TEST_F(TrainCliTest, TrainsAndReportsInPlainLines) {
  testing::RunResult r = RunCommand(Train("--steps 20 --eval-every 10 --save-every 10"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("step 10/20"));   // periodic plain lines in a pipe
  EXPECT_THAT(r.out, HasSubstr("[saved]"));
  EXPECT_THAT(r.out, HasSubstr("trained " + dir_.File("m.h5") + ": 20 steps"));
  EXPECT_THAT(r.out, HasSubstr("projection"));
  EXPECT_TRUE(std::filesystem::exists(dir_.File("m.h5")));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("m.h5.state")));

  testing::RunResult again = RunCommand(Train("--resume"));
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("no training state"));
}

TEST_F(TrainCliTest, StopAfterSavesAUsableModelAndResumeFinishes) {
  testing::RunResult r = RunCommand(Train("--steps 20 --stop-after 8"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("stopped at step 8"));
  EXPECT_THAT(r.out, HasSubstr("trained " + dir_.File("m.h5") + ": 8 steps"));
  EXPECT_TRUE(std::filesystem::exists(dir_.File("m.h5.state")));
  EXPECT_TRUE(std::filesystem::exists(dir_.File("m.means.h5")));  // ready for pruning

  r = RunCommand(Train("--resume"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(": 20 steps"));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("m.h5.state")));
}

TEST_F(TrainCliTest, BadUsageExitsTwoWithOneLine) {
  testing::RunResult r = RunCommand(Train("--steps 5 --density 0"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("circuit train: density = 0"));
  r = RunCommand(CircuitBinary() + " train --out x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--corpus is required"));
  r = RunCommand(Train("--steps 5 --cooldown 0.5"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--cooldown does not apply to --arch gpt"));
}

TEST_F(TrainCliTest, TrainsABdhModelOnTheSameCorpus) {
  const std::string bdh = dir_.File("bdh.h5");
  const std::string train = CircuitBinary() + " train --arch bdh --corpus " + dir_.path() +
                            " --out " + bdh +
                            " --layers 1 --d-model 32 --heads 2 --neurons 32 --vocab 300"
                            " --n-ctx 32 --batch 4 --threads 1 ";
  testing::RunResult r = RunCommand(train + "--steps 20 --eval-every 10 --lr 0.003");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("step 10/20"));
  EXPECT_THAT(r.out, HasSubstr("trained " + bdh + " (BDH): 20 steps"));
  // The means pruning substitutes, over the corpus's validation text, as for the GPT.
  const std::string means = dir_.File("bdh.means.h5");
  EXPECT_THAT(r.out, HasSubstr("means over the corpus val split: " + means));
  EXPECT_TRUE(std::filesystem::exists(means));
  r = RunCommand(CircuitBinary() + " eval --model " + bdh + " --corpus " + dir_.path() +
                 " --val-windows 8 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("validation loss "));
  EXPECT_THAT(r.out, HasSubstr("over 8 windows of 32 tokens"));
  r = RunCommand(CircuitBinary() + " inspect " + bdh);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("training    20 steps, 2560 tokens"));

  r = RunCommand(train + "--steps 5 --density 0.5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("circuit train: --density does not apply to --arch bdh"));
  r = RunCommand(train + "--steps 5 --d-head 8");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--d-head does not apply to --arch bdh"));
  r = RunCommand(train + "--steps 5 --cooldown 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cooldown = 2 must be a fraction of the steps in [0, 1]"));
}

// scripts/train_bdh_gpu.py (PyTorch; run here on the CPU) trains on the same
// corpus files; `circuit import --training-log` keeps its log as provenance,
// and the imported model gives the validation loss the script reported;
// `--corpus` leaves the means beside it as `circuit train` does.
TEST_F(TrainCliTest, TheTorchTrainerScriptsModelImportsWithItsLog) {
  const std::string pt = dir_.File("py.pt"), log = dir_.File("py.json"), bdh = dir_.File("py.h5");
  testing::RunResult r = RunCommand(
      "/usr/bin/python3 " + testing::SourceDir() + "/scripts/train_bdh_gpu.py --device cpu --corpus " +
      dir_.path() + " --out " + pt + " --layers 2 --d-model 32 --heads 2 --neurons 32 --vocab 300"
      " --n-ctx 32 --batch 8 --val-windows 8 --steps 60 --eval-every 20 --lr 0.003 --cooldown 0.5");
  if (r.exit_code == 77) CIRCUIT_SKIP_UNLESS_CI() << "no python3-torch";
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json trained = nlohmann::json::parse(std::ifstream(log));
  ASSERT_EQ(trained["steps"], 60);
  const double first = trained["val"].front()[1], last = trained["val"].back()[1];
  EXPECT_LT(last, first - 1.0) << "60 steps should learn the corpus's common tokens";

  const std::string import = CircuitBinary() + " import --arch bdh --weights " + pt +
                             " --layers 2 --n-ctx 32 --tokenizer " + dir_.path() + " --out " + bdh;
  r = RunCommand(import + " --training-log " + log + " --corpus " + dir_.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("means over the corpus val split: " + dir_.File("py.means.h5")));
  EXPECT_TRUE(std::filesystem::exists(dir_.File("py.means.h5")));
  r = RunCommand(CircuitBinary() + " inspect " + bdh);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("training    60 steps, 15360 tokens, seed 0, dense"));
  EXPECT_THAT(r.out, HasSubstr("scripts/train_bdh_gpu.py --device cpu"));
  r = RunCommand(CircuitBinary() + " eval --model " + bdh + " --corpus " + dir_.path() +
                 " --val-windows 8 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex(R"(validation loss ([0-9.]+))"))) << r.out;
  EXPECT_NEAR(std::stod(m[1]), last, 1e-4);

  // A log that belongs to another shape is refused in one line.
  trained["args"]["neurons"] = 64;
  std::ofstream(dir_.File("other.json")) << trained.dump();
  r = RunCommand(import + " --training-log " + dir_.File("other.json"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("the log's neurons is 64, the weights' 32 (a log of another model?)"));
  r = RunCommand(CircuitBinary() + " import --weights " + pt + " --training-log " + log +
                 " --config x.json --out x.h5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--training-log apply to --arch bdh only"));
}

}  // namespace
}  // namespace circuit
