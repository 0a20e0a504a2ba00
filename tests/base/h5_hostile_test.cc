// H5Reader against files that lie: datasets declaring far more elements than
// they store, shapes whose product overflows, text that is not UTF-8. Each must
// be a one-line error naming the file and the object, never bad_alloc.
#include <cstdint>
#include <string>
#include <vector>

#include "circuit/core/h5.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/hostile_h5.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::circuit::testing::HostileH5;
using ::circuit::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

class H5HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("f.h5");
    absl::StatusOr<H5Writer> w = H5Writer::Create(path_);
    ASSERT_TRUE(w.ok());
    const std::vector<float> floats = {1, 2, 3, 4, 5, 6};
    ASSERT_TRUE(w->WriteFloats("/x", {2, 3}, floats, /*compress=*/true).ok());
    ASSERT_TRUE(w->WriteStrings("/names", {"a", "b"}).ok());
    ASSERT_TRUE(w->WriteAttribute("/", "task", "quotes").ok());
    ASSERT_TRUE(w->Commit().ok());
  }
  testing::TempDir dir_;
  std::string path_;
};

TEST_F(H5HostileTest, RealDatasetsStillRead) {
  absl::StatusOr<H5Reader> r = H5Reader::Open(path_);
  ASSERT_TRUE(r.ok());
  absl::StatusOr<std::vector<float>> x = r->ReadFloats("/x", {2, 3});
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ((*x)[5], 6.0f);
  absl::StatusOr<std::vector<std::string>> names = r->ReadStrings("/names");
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(names->size(), 2u);
}

TEST_F(H5HostileTest, HugeDeclaredFloatDatasetIsRejectedBeforeAllocating) {
  {
    HostileH5 h(path_);
    ASSERT_TRUE(h.DeclareDataset("/big", {uint64_t{1} << 30, 128}, HostileH5::kFloat32));
  }
  absl::StatusOr<H5Reader> r = H5Reader::Open(path_);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->ReadFloats("/big").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("f.h5: /big"), HasSubstr("(1073741824, 128)"))));
  EXPECT_THAT(r->ReadFloats("/big").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too large")));
}

TEST_F(H5HostileTest, ExpectedShapeWithoutTheBytesIsRejected) {
  {
    HostileH5 h(path_);
    // Under the element cap and of exactly the shape a reader expects, but unstored.
    ASSERT_TRUE(h.DeclareDataset("/w", {uint64_t{1} << 20, 128}, HostileH5::kFloat32));
  }
  absl::StatusOr<H5Reader> r = H5Reader::Open(path_);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->ReadFloats("/w", {uint64_t{1} << 20, 128}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("/w: declares (1048576, 128) (134217728 elements) but stores 0 bytes")));
}

TEST_F(H5HostileTest, HugeDeclaredColumnsOfEveryTypeAreRejected) {
  {
    HostileH5 h(path_);
    ASSERT_TRUE(h.DeclareDataset("/i32", {uint64_t{1} << 40}, HostileH5::kInt32));
    ASSERT_TRUE(h.DeclareDataset("/i64", {uint64_t{1} << 31}, HostileH5::kInt64));
    ASSERT_TRUE(h.DeclareDataset("/f64", {uint64_t{1} << 31}, HostileH5::kFloat64));
    ASSERT_TRUE(h.DeclareDataset("/s", {uint64_t{1} << 34}, HostileH5::kString));
  }
  absl::StatusOr<H5Reader> r = H5Reader::Open(path_);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->ReadInt32s("/i32").status(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/i32")));
  EXPECT_THAT(r->ReadInt64s("/i64").status(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/i64")));
  EXPECT_THAT(r->ReadDoubles("/f64").status(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/f64")));
  EXPECT_THAT(r->ReadStrings("/s").status(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/s")));
  EXPECT_THAT(r->ReadString("/s").status(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/s")));
}

TEST_F(H5HostileTest, ShapeWhoseProductOverflowsIsRejected) {
  {
    HostileH5 h(path_);
    // 2^32 * 2^32 * 2 wraps to 0 in 64 bits.
    ASSERT_TRUE(h.DeclareDataset("/wrap", {uint64_t{1} << 32, uint64_t{1} << 32, 2},
                                 HostileH5::kFloat32));
  }
  absl::StatusOr<H5Reader> r = H5Reader::Open(path_);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->ReadFloats("/wrap").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too large")));
}

TEST_F(H5HostileTest, TextThatIsNotUtf8IsRejected) {
  {
    HostileH5 h(path_);
    ASSERT_TRUE(h.SetBytes("/", "task", "caf\xe9 \xff"));
  }
  absl::StatusOr<H5Reader> r = H5Reader::Open(path_);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->ReadStringAttribute("/", "task").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/@task: not UTF-8")));
}

TEST_F(H5HostileTest, Utf8TextIsKept) {
  {
    HostileH5 h(path_);
    ASSERT_TRUE(h.SetBytes("/", "task", "caf\xc3\xa9 \xf0\x9f\x90\x8d"));
  }
  absl::StatusOr<H5Reader> r = H5Reader::Open(path_);
  ASSERT_TRUE(r.ok());
  absl::StatusOr<std::string> task = r->ReadStringAttribute("/", "task");
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(*task, "caf\xc3\xa9 \xf0\x9f\x90\x8d");
}

}  // namespace
}  // namespace circuit
