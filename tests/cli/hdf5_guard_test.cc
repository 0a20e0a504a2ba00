// Files on which Debian's libhdf5 1.10.8 itself segfaults or loops for minutes
// (corrupted global heaps under variable-length strings, found by fuzzing; kept
// in tests/fuzz/corpus as regress_hdf5_*). Every reader, in the library and in
// each command, must turn them into one line naming the file, in bounded time:
// the read guard (libcircuit/src/h5_guard.cc, docs/reliability.md).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "circuit/core/h5.h"
#include "circuit/export/circuit_file.h"
#include "circuit/sweep/results.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/run.h"
#include "testing/temp_dir.h"

namespace circuit::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Corpus(const std::string& target, const std::string& name) {
  return SourceDir() + "/tests/fuzz/corpus/" + target + "/" + name;
}
const std::string kSegv = "regress_hdf5_segv_global_heap.h5";
const std::string kHang = "regress_hdf5_hang_global_heap.h5";

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One line on stderr naming the file and what libhdf5 did, exit 2, in time.
void ExpectRefused(const std::string& args, const std::string& command,
                   const std::string& file, const std::string& how) {
  const auto start = std::chrono::steady_clock::now();
  RunResult r = RunCommand("CIRCUIT_HDF5_CHECK_SECONDS=3 " + CircuitBinary() + " " + args);
  EXPECT_LT(SecondsSince(start), 30) << args;
  EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
  EXPECT_THAT(r.err, StartsWith("circuit " + command + ": " + file +
                                ": corrupt HDF5 file (libhdf5 " + how + " reading it: "))
      << args;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// The limit the guard gives libhdf5 in these tests (default 10 s).
class Hdf5GuardTest : public ::testing::Test {
 protected:
  void SetUp() override { setenv("CIRCUIT_HDF5_CHECK_SECONDS", "3", 1); }
  void TearDown() override { unsetenv("CIRCUIT_HDF5_CHECK_SECONDS"); }
};

TEST_F(Hdf5GuardTest, LibraryReadersRefuseAFileThatCrashesLibhdf5) {
  const std::string file = Corpus("circuit_file", kSegv);
  EXPECT_EQ(H5Reader::Open(file).status().message(),
            file + ": corrupt HDF5 file (libhdf5 crashed reading it: signal 11, Segmentation fault)");
  EXPECT_THAT(ReadCircuitFile(file).status().message(), HasSubstr(file + ": corrupt HDF5 file"));
}

TEST_F(Hdf5GuardTest, LibraryReadersRefuseFilesThatHangLibhdf5InBoundedTime) {
  for (const std::string& file : {Corpus("circuit_file", kHang), Corpus("sweep_results", kHang)}) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(ReadCircuitFile(file).status().message(),
              file + ": corrupt HDF5 file (libhdf5 hung reading it: no result in 3 s)");
    EXPECT_THAT(ResultsFile::Read(file).status().message(),
                HasSubstr(file + ": corrupt HDF5 file (libhdf5 hung"));
    EXPECT_LT(SecondsSince(start), 20);
  }
}

TEST_F(Hdf5GuardTest, DefaultLimitIsTenSecondsPlusOnePer10MB) {
  unsetenv("CIRCUIT_HDF5_CHECK_SECONDS");
  const std::string file = Corpus("circuit_file", kHang);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(H5Reader::Open(file).status().message(),
            file + ": corrupt HDF5 file (libhdf5 hung reading it: no result in 10 s)");
  EXPECT_LT(SecondsSince(start), 20);
}

TEST_F(Hdf5GuardTest, GoodFilesStillRead) {
  TempDir dir;
  const std::string model = dir.File("tiny.h5");
  ASSERT_EQ(InitTinyModel(model).exit_code, 0);
  absl::StatusOr<H5Reader> r = H5Reader::Open(model);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->CheckFormat("circuit.model", 1).ok());
  const std::string bundled = SourceDir() + "/data/models/default.means.h5";
  EXPECT_TRUE(H5Reader::Open(bundled).ok());
  EXPECT_TRUE(ResultsFile::Read(Corpus("sweep_results", "one_unit.h5")).ok());
  EXPECT_TRUE(ReadCircuitFile(Corpus("circuit_file", "extract_tiny.h5")).ok());
}

// Every command that reads a circuit file, for one of the two files.
void ExpectCircuitCommandsRefuse(const std::string& name, const std::string& how) {
  const std::string file = Corpus("circuit_file", name);
  ExpectRefused("inspect " + file, "inspect", file, how);
  ExpectRefused("inspect --json " + file, "inspect", file, how);
  TempDir dir;
  ExpectRefused("draw " + file + " --out " + dir.File("c.svg"), "draw", file, how);
  ExpectRefused("ablate --circuit " + file, "ablate", file, how);
  ExpectRefused("audit --circuit " + file, "audit", file, how);
}

TEST_F(Hdf5GuardTest, InspectDrawAblateAuditRefuseACircuitThatCrashesLibhdf5) {
  ExpectCircuitCommandsRefuse(kSegv, "crashed");
}

TEST_F(Hdf5GuardTest, InspectDrawAblateAuditRefuseACircuitThatHangsLibhdf5) {
  ExpectCircuitCommandsRefuse(kHang, "hung");
}

TEST_F(Hdf5GuardTest, ModelReadersRefuseThem) {
  // The same bytes given where a model checkpoint is expected.
  const std::string file = Corpus("circuit_file", kSegv);
  ExpectRefused("inspect " + file, "inspect", file, "crashed");
  ExpectRefused("eval --task single_double_quote --model " + file, "eval", file, "crashed");
  ExpectRefused("generate --model " + file + " --prompt x", "generate", file, "crashed");
}

TEST_F(Hdf5GuardTest, ReportRefusesTheResultsFile) {
  TempDir dir;
  std::filesystem::copy_file(Corpus("sweep_results", kHang), dir.File("results.h5"));
  ExpectRefused("report " + dir.path(), "report", dir.File("results.h5"), "hung");
}

}  // namespace
}  // namespace circuit::testing
