// Files on which Debian's libhdf5 1.10.8 itself segfaults or loops for minutes
// (corrupted global heaps under variable-length strings, found by fuzzing; kept
// in tests/fuzz/corpus as regress_hdf5_*). Every reader, in the library and in
// each command, must turn them into one line naming the file, in bounded time:
// each H5Reader's reading runs in a child process (libcircuit/src/io/h5_child.cc,
// docs/reliability.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
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
// Crashes libhdf5 when the root attribute `method` is read the way the readers
// read it, yet a child process that read every object and attribute of the file
// in its own order passed it, and `circuit inspect` then died of SIGSEGV.
const std::string kPastWalk = "regress_hdf5_segv_past_walk.h5";
const std::string kSegvMessage = "crashed reading it: signal 11, Segmentation fault)";

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

// The time a reader's child process gets in these tests (default 10 s).
class Hdf5GuardTest : public ::testing::Test {
 protected:
  void SetUp() override { setenv("CIRCUIT_HDF5_CHECK_SECONDS", "3", 1); }
  void TearDown() override { unsetenv("CIRCUIT_HDF5_CHECK_SECONDS"); }
};

TEST_F(Hdf5GuardTest, LibraryReadersRefuseFilesThatCrashLibhdf5) {
  for (const std::string& name : {kSegv, kPastWalk}) {
    const std::string file = Corpus("circuit_file", name);
    EXPECT_EQ(ReadCircuitFile(file).status().message(),
              file + ": corrupt HDF5 file (libhdf5 " + kSegvMessage);
  }
}

TEST_F(Hdf5GuardTest, TheCallThatCrashesLibhdf5FailsAndSoDoesEveryLaterOne) {
  const std::string file = Corpus("circuit_file", kPastWalk);
  absl::StatusOr<H5Reader> r = H5Reader::Open(file);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->CheckFormat("circuit.circuit", 1).ok());
  EXPECT_EQ(*r->ReadStringAttribute("/", "ablation"), "mean");
  const std::string crashed = file + ": corrupt HDF5 file (libhdf5 " + kSegvMessage;
  EXPECT_EQ(r->ReadStringAttribute("/", "method").status().message(), crashed);
  EXPECT_EQ(r->ReadStringAttribute("/", "ablation").status().message(), crashed);
  EXPECT_EQ(r->Exists("/").status().message(), crashed);
  EXPECT_EQ(r->HasAttribute("/", "task").status().message(), crashed);
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
  EXPECT_EQ(ReadCircuitFile(file).status().message(),
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
  absl::StatusOr<H5Reader> means = H5Reader::Open(bundled);
  ASSERT_TRUE(means.ok()) << means.status();
  EXPECT_TRUE(means->CheckFormat("circuit.means", 1).ok());
  EXPECT_TRUE(ResultsFile::Read(Corpus("sweep_results", "one_unit.h5")).ok());
  EXPECT_TRUE(ReadCircuitFile(Corpus("circuit_file", "extract_tiny.h5")).ok());
}

// Readers open while others are: each has its own reading process, a crash in
// one leaves the others reading, and closing one does not disturb the rest.
TEST_F(Hdf5GuardTest, NestedReadersAreIndependent) {
  const std::string model = SourceDir() + "/data/models/default.h5";
  const std::string circuit = Corpus("circuit_file", "extract_tiny.h5");
  absl::StatusOr<H5Reader> outer = H5Reader::Open(model);
  ASSERT_TRUE(outer.ok()) << outer.status();
  absl::StatusOr<int64_t> n_layer = outer->ReadIntAttribute("/", "n_layer");
  ASSERT_TRUE(n_layer.ok()) << n_layer.status();
  {
    absl::StatusOr<H5Reader> inner = H5Reader::Open(circuit);
    ASSERT_TRUE(inner.ok()) << inner.status();
    absl::StatusOr<H5Reader> crashing = H5Reader::Open(Corpus("circuit_file", kPastWalk));
    ASSERT_TRUE(crashing.ok()) << crashing.status();
    EXPECT_FALSE(crashing->ReadStringAttribute("/", "method").ok());
    EXPECT_TRUE(inner->CheckFormat("circuit.circuit", 1).ok());
    EXPECT_EQ(*outer->ReadIntAttribute("/", "n_layer"), *n_layer);
  }
  // Moved, the reader keeps its process.
  H5Reader moved = *std::move(outer);
  EXPECT_TRUE(moved.CheckFormat("circuit.model", 1).ok());
  absl::StatusOr<std::vector<std::string>> weights = moved.ListGroup("/weights");
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_FALSE(weights->empty());
}

// The reading process inherits this one's unwritten stdio buffers; it must
// never write them out (only this process does, once).
TEST_F(Hdf5GuardTest, ReadingProcessFlushesNothingOfThisOne) {
  TempDir dir;
  const std::string out = dir.File("out.txt");
  FILE* f = std::fopen(out.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("written once\n", f);  // buffered, not yet in the file
  {
    absl::StatusOr<H5Reader> r = H5Reader::Open(Corpus("circuit_file", "extract_tiny.h5"));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->CheckFormat("circuit.circuit", 1).ok());
    absl::StatusOr<H5Reader> crashing = H5Reader::Open(Corpus("circuit_file", kSegv));
    ASSERT_TRUE(crashing.ok()) << crashing.status();
    EXPECT_FALSE(crashing->ReadStringAttribute("/", "method").ok());
  }
  std::fclose(f);
  std::ifstream in(out);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "written once\n");
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

TEST_F(Hdf5GuardTest, InspectDrawAblateAuditRefuseACircuitThatCrashesLibhdf5OnlyInTheirOrder) {
  ExpectCircuitCommandsRefuse(kPastWalk, "crashed");
}

TEST_F(Hdf5GuardTest, ModelReadersRefuseThem) {
  // The same bytes given where a model checkpoint is expected: `inspect` reads
  // them as the circuit they claim to be; the model reader stops at the format
  // check, before the attribute on which libhdf5 crashes.
  const std::string file = Corpus("circuit_file", kSegv);
  ExpectRefused("inspect " + file, "inspect", file, "crashed");
  for (const std::string& args : {"eval --task single_double_quote --model " + file,
                                  "generate --prompt x --model " + file}) {
    RunResult r = RunCommand(CircuitBinary() + " " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_THAT(r.err, ::testing::EndsWith(file + ": format is 'circuit.circuit', expected "
                                                  "'circuit.model'\n"));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST_F(Hdf5GuardTest, ReportRefusesTheResultsFile) {
  TempDir dir;
  std::filesystem::copy_file(Corpus("sweep_results", kHang), dir.File("results.h5"));
  ExpectRefused("report " + dir.path(), "report", dir.File("results.h5"), "hung");
}

}  // namespace
}  // namespace circuit::testing
