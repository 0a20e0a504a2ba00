// Circuit files that lie: 2^40 declared rows stored in a few bytes, attributes
// that are not UTF-8. ReadCircuitFile refuses them with the object named, and
// `circuit inspect --json` prints one line instead of aborting.
#include <string>

#include "circuit/export/circuit_file.h"
#include "gmock/gmock.h"
#include "graph/small_circuit.h"
#include "gtest/gtest.h"
#include "testing/hostile_h5.h"
#include "testing/run.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::circuit::testing::HostileH5;
using ::circuit::testing::IsOk;
using ::circuit::testing::StatusIs;
using ::testing::HasSubstr;

class CircuitFileHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("circuit.h5");
    ASSERT_THAT(WriteCircuitFile(path_, testing::SmallCircuit()), IsOk());
  }
  testing::TempDir dir_;
  std::string path_;
};

TEST_F(CircuitFileHostileTest, RowsDeclaredButNotStored) {
  {
    HostileH5 h(path_);
    ASSERT_TRUE(h.SetInt("/", "n_nodes", int64_t{1} << 40));
    ASSERT_TRUE(h.DeclareDataset("/nodes/layer", {uint64_t{1} << 40}, HostileH5::kInt32));
  }
  EXPECT_THAT(ReadCircuitFile(path_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("circuit.h5: /nodes/layer")));
}

TEST_F(CircuitFileHostileTest, EdgeColumnsDeclaredButNotStored) {
  {
    HostileH5 h(path_);
    ASSERT_TRUE(h.DeclareDataset("/edges/weight", {uint64_t{1} << 40}, HostileH5::kFloat32));
  }
  EXPECT_THAT(ReadCircuitFile(path_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/edges/weight")));
}

TEST_F(CircuitFileHostileTest, AttributesThatAreNotUtf8) {
  for (const char* name : {"task", "model", "ablation"}) {
    ASSERT_THAT(WriteCircuitFile(path_, testing::SmallCircuit()), IsOk());
    {
      HostileH5 h(path_);
      ASSERT_TRUE(h.SetBytes("/", name, "quote\xff\xfe"));
    }
    EXPECT_THAT(ReadCircuitFile(path_),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(std::string("/@") + name + ": not UTF-8")));
    testing::RunResult r =
        testing::RunCommand(testing::CircuitBinary() + " inspect --json " + path_);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("not UTF-8"));
  }
}

}  // namespace
}  // namespace circuit
