// Sweep inputs that ask for too much: a spec with an out-of-range number or a
// cross product of 10^10 units, a results file declaring 2^40 rows. Each is a
// one-line error before anything large is allocated or enumerated.
#include <string>

#include "absl/strings/str_cat.h"
#include "circuit/sweep/results.h"
#include "circuit/sweep/spec.h"
#include "gtest/gtest.h"
#include "testing/hostile_h5.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::testing::HasSubstr;
using testing::HostileH5;
using testing::StatusIs;

TEST(SweepSpecHostile, NumberOutOfRangeIsAnError) {
  EXPECT_THAT(ParseSweepSpec(R"({"models": ["a.h5"], "tasks": ["t"], "lr": 1e400})", "spec.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.json: ")));
  EXPECT_THAT(ParseSweepSpec(R"({"models": ["a.h5"], "tasks": ["t"], "seeds": [-1e999]})", "s.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("s.json: ")));
}

// A JSON list of n distinct items: prefix + i + suffix.
std::string List(int n, const std::string& prefix, const std::string& suffix = "") {
  std::string out = "[";
  for (int i = 0; i < n; ++i) absl::StrAppend(&out, i ? "," : "", prefix, i + 1, suffix);
  return out + "]";
}

TEST(SweepSpecHostile, CrossProductIsBoundedUpFront) {
  // 100 * 100 * 100 * 100 * 100 = 10^10 units from a spec of a few kilobytes.
  const std::string spec = absl::StrCat(
      R"({"models": )", List(100, "\"m", ".h5\""), R"(, "tasks": )", List(100, "\"t", "\""),
      R"(, "target_losses": )", List(100, "", "e-3"), R"(, "penalty_coefs": )", List(100, "", "e-4"),
      R"(, "seeds": )", List(100, ""), "}");
  EXPECT_THAT(ParseSweepSpec(spec, "big.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("big.json: the lists multiply out to 1e+10 work units")));
  // The same lists, short enough, are fine.
  const std::string small = absl::StrCat(R"({"models": )", List(10, "\"m", ".h5\""),
                                         R"(, "tasks": )", List(10, "\"t", "\""), "}");
  EXPECT_THAT(ParseSweepSpec(small, "small.json"), testing::IsOk());
}

TEST(ResultsFileHostile, DeclaredRowCountIsCheckedAgainstTheStoredColumn) {
  testing::TempDir dir;
  const std::string path = dir.File("results.h5");
  constexpr char kSpec[] = R"({"models": ["a.h5"], "tasks": ["t"]})";
  {
    absl::StatusOr<ResultsFile> file = ResultsFile::Open(path, "demo", kSpec);
    ASSERT_THAT(file, testing::IsOk());
    const std::vector<WorkUnit> units = EnumerateUnits(*ParseSweepSpec(kSpec, "spec.json"));
    ASSERT_THAT(file->Append(UnitResult{units[0], true}), testing::IsOk());
  }
  {
    HostileH5 h(path);
    ASSERT_TRUE(h.SetInt("/", "n_units", int64_t{1} << 40));
  }
  EXPECT_THAT(ResultsFile::Read(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("n_units 1099511627776")));
  {
    HostileH5 h(path);
    ASSERT_TRUE(h.DeclareDataset("/units/id", {uint64_t{1} << 40}, HostileH5::kString));
  }
  EXPECT_THAT(ResultsFile::Read(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/units/id")));
}

}  // namespace
}  // namespace circuit
