// End-to-end: `circuit draw`, `circuit view` and `circuit inspect` on a circuit file. Runs the
// built CLI as a subprocess (this test binary itself stays torch-free).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "circuit/export/circuit_file.h"
#include "gmock/gmock.h"
#include "graph/small_circuit.h"
#include "gtest/gtest.h"
#include "testing/run.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::circuit::testing::CircuitBinary;
using ::circuit::testing::IsOk;
using ::circuit::testing::RunCommand;
using ::circuit::testing::RunResult;
using ::circuit::testing::SmallCircuit;
using ::circuit::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class DrawCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(CircuitBinary())) GTEST_SKIP() << "no " << CircuitBinary();
    ASSERT_THAT(WriteCircuitFile(dir_.File("c.h5"), SmallCircuit()), IsOk());
  }
  RunResult Run(const std::string& args) { return RunCommand(CircuitBinary() + " " + args); }
  TempDir dir_;
};

TEST_F(DrawCliTest, DrawsSvgPngAndDot) {
  RunResult r = Run("draw " + dir_.File("c.h5") + " -o " + dir_.File("c.svg") + " --d-head 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("17 nodes, 10 weight edges, 5 residual edges"));
  std::ifstream in(dir_.File("c.svg"));
  std::stringstream svg;
  svg << in.rdbuf();
  EXPECT_THAT(svg.str(), HasSubstr("head 1"));
  r = Run("draw " + dir_.File("c.h5") + " --out " + dir_.File("c.png") +
          " --prune-dangling --d-head 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("11 nodes, 6 weight edges"));
  EXPECT_THAT(r.out, HasSubstr("6 dangling nodes left out"));
  r = Run("draw " + dir_.File("c.h5") + " -o " + dir_.File("c.txt") + " --format dot");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir_.File("c.txt")));
}

TEST_F(DrawCliTest, BadUsageExitsTwoWithOneLine) {
  RunResult r = Run("draw " + dir_.File("c.h5"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("circuit draw: --out (-o) is required"));
  r = Run("draw " + dir_.File("c.h5") + " -o " + dir_.File("c.gif"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("c.gif"));
  r = Run("draw " + dir_.File("missing.h5") + " -o " + dir_.File("c.svg"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("missing.h5"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(DrawCliTest, InspectDescribesACircuit) {
  RunResult r = Run("inspect " + dir_.File("c.h5"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("task single_double_quote"));
  EXPECT_THAT(r.out, HasSubstr("17 nodes of 6144"));
}

TEST_F(DrawCliTest, ViewWritesThePage) {
  RunResult r = Run("view " + dir_.File("c.h5") + " -o " + dir_.File("c.html") + " --d-head 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("17 nodes, 10 weight edges, 5 residual edges"));
  EXPECT_THAT(r.out, HasSubstr("no node explanations"));
  std::ifstream in(dir_.File("c.html"));
  std::stringstream page;
  page << in.rdbuf();
  EXPECT_THAT(page.str(), HasSubstr("<g id=\"n16\" class=\"node\">"));
  EXPECT_THAT(page.str(), HasSubstr("head 1"));  // the diagram of circuit draw
  r = Run("view " + dir_.File("c.h5") + " --out " + dir_.File("top.html") + " --top 5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("the 5 most important of 17 nodes"));
}

TEST_F(DrawCliTest, ViewBadUsageExitsTwoWithOneLine) {
  RunResult r = Run("view " + dir_.File("c.h5"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("circuit view: --out (-o) is required"));
  r = Run("view " + dir_.File("missing.h5") + " -o " + dir_.File("c.html"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("missing.h5"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = Run("view " + dir_.File("c.h5") + " -o " + dir_.File("c.html") + " --top -1");
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace circuit
