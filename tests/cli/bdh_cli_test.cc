// BDH models through the program, as a user runs it: init, inspect, eval,
// and pruning (extract, inspect, draw, ablate, audit) through the model seam;
// the GPT-only commands and options refuse BDH in one line.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

class BdhCliTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

// A BDH circuit through the pruning commands: extract writes a circuit file
// that says bdh, inspect, draw, ablate and audit read it; explain (GPT only)
// refuses it in one line. (A random model: the circuit misses the target and keeps every node.)
TEST_F(BdhCliTest, ExtractInspectDrawAblateAudit) {
  const std::string bdh = dir_.File("bdh.h5"), out = dir_.File("bdh_out");
  RunResult r = RunCommand(CircuitBinary() + " init --arch bdh --layers 1 --d-model 16 --heads 1 "
                           "--neurons 16 --seed 2 --out " + bdh);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand(CircuitBinary() + " extract --task single_double_quote --pairs 16 --epochs 1 "
                 "--threads 1 --no-explain --model " + bdh + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Per layer resid_in 16, x_neuron 16, attn_read 16, y_neuron 16, gate 16; final 16.
  EXPECT_THAT(r.out, HasSubstr("nodes     96 of 96"));
  EXPECT_THAT(r.out, HasSubstr("weights and links (BDH: dense)"));
  const std::string circuit = out + "/circuit.h5";
  r = RunCommand(CircuitBinary() + " inspect " + circuit);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("L0 x_neuron"));
  r = RunCommand(CircuitBinary() + " draw " + circuit + " -o " + dir_.File("bdh.dot"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::stringstream dot;
  dot << std::ifstream(dir_.File("bdh.dot")).rdbuf();
  EXPECT_THAT(dot.str(), HasSubstr("token embeddings"));  // BDH has no position table
  EXPECT_THAT(dot.str(), Not(HasSubstr("position\\nembeddings")));
  r = RunCommand(CircuitBinary() + " draw " + circuit + " -o " + dir_.File("bdh.svg"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::file_size(dir_.File("bdh.svg")) > 0);
  r = RunCommand(CircuitBinary() + " ablate --circuit " + circuit + " --model " + bdh +
                 " --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_nodes"], 96);
  EXPECT_NEAR(j["loss"]["circuit"].get<double>(), j["loss"]["full_model"].get<double>(), 1e-9);

  r = RunCommand(CircuitBinary() + " audit --circuit " + circuit + " --model " + bdh +
                 " --seeds 2 --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json audit = nlohmann::json::parse(r.out);
  EXPECT_EQ(audit["controls"]["random_init"]["n_nodes"], 96);  // a fresh BDH of the same shape
  EXPECT_THAT(audit["verdict"].get<std::string>(), HasSubstr("NOT a circuit for the task"));

  // A larger BDH model kept whole (200k dense edges): no DOT file nobody could lay out.
  const std::string wide = dir_.File("bdh_wide.h5"), wide_out = dir_.File("bdh_wide_out");
  r = RunCommand(CircuitBinary() + " init --arch bdh --layers 2 --d-model 64 --heads 4 "
                 "--neurons 128 --seed 2 --out " + wide);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand(CircuitBinary() + " extract --task single_double_quote --pairs 16 --epochs 1 "
                 "--threads 1 --no-explain --no-importance --model " + wide + " --out " + wide_out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("circuit.h5, summary.json (no circuit.dot or .svg: "));
  EXPECT_FALSE(std::filesystem::exists(wide_out + "/circuit.dot"));
  EXPECT_TRUE(std::filesystem::exists(wide_out + "/circuit.h5"));

  r = RunCommand(CircuitBinary() + " explain --circuit " + circuit + " --model " + bdh);
  ExpectOneLineError(r, "explain");
  EXPECT_THAT(r.err, HasSubstr("exists for GPT models only"));
  r = RunCommand(CircuitBinary() + " extract --task single_double_quote --tie-qk --model " + bdh +
                 " --out " + out);
  ExpectOneLineError(r, "extract");
  EXPECT_THAT(r.err, HasSubstr("no query and key channels"));
}

// A BDH model through init, inspect and eval; the GPT-only commands refuse it
// in one line naming the arch; options of the other architecture are usage errors.
// (Pruning a BDH model: ExtractInspectDrawAblateAudit.)
TEST_F(BdhCliTest, InitInspectEvalAndArchErrors) {
  const std::string bdh = dir_.File("bdh.h5");
  RunResult r = RunCommand(CircuitBinary() + " init --arch bdh --layers 2 --d-model 32 --heads 2 "
                           "--neurons 64 --seed 4 --out " + bdh);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("BDH, 143360 parameters shared by 2 layers, 128 neurons per layer"));
  r = RunCommand(CircuitBinary() + " inspect " + bdh);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("arch        bdh"));
  EXPECT_THAT(r.out, HasSubstr("2 heads x 64 neurons (128 per layer), vocab 2048"));
  EXPECT_THAT(r.out, HasSubstr("encoder        (2, 32, 64)"));
  r = RunCommand(CircuitBinary() + " eval --model " + bdh +
                 " --task single_double_quote --n 16 --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["task"], "single_double_quote");
  EXPECT_EQ(j["n"], 32);  // prompts: two per pair
  EXPECT_GT(j["loss"].get<double>(), 0.0);

  for (const std::string& command :
       std::vector<std::string>{"generate --prompt x", "export-torch --out " + dir_.File("t")}) {
    r = RunCommand(CircuitBinary() + " " + command + " --model " + bdh);
    ExpectOneLineError(r, command.substr(0, command.find(' ')));
    EXPECT_THAT(r.err, HasSubstr("a BDH model (arch 'bdh'); this needs a GPT model (arch 'gpt')"));
  }
  const std::string gpt = dir_.File("tiny.h5");
  ASSERT_EQ(InitTinyModel(gpt).exit_code, 0);
  r = RunCommand(CircuitBinary() + " eval --model " + gpt + " --corpus " + dir_.path());
  ExpectOneLineError(r, "eval");
  EXPECT_THAT(r.err, HasSubstr("BDH models only"));

  const std::string x = " --out " + dir_.File("x.h5");
  r = RunCommand(CircuitBinary() + " init --arch bdh --d-mlp 64" + x);
  ExpectOneLineError(r, "init");
  EXPECT_THAT(r.err, HasSubstr("--d-mlp does not apply to --arch bdh"));
  r = RunCommand(CircuitBinary() + " init --neurons 64" + x);
  ExpectOneLineError(r, "init");
  EXPECT_THAT(r.err, HasSubstr("--neurons does not apply to --arch gpt"));
  r = RunCommand(CircuitBinary() + " init --arch bdh --neurons 63" + x);
  ExpectOneLineError(r, "init");
  EXPECT_THAT(r.err, HasSubstr("n_neuron must be even"));
  r = RunCommand(CircuitBinary() + " init --arch mamba" + x);
  ExpectOneLineError(r, "init");
  EXPECT_THAT(r.err, HasSubstr("--arch must be gpt or bdh, got 'mamba'"));
}

}  // namespace
}  // namespace circuit::testing
