// Means caches that lie about their sizes: a site declaring its expected width
// but storing nothing, one declaring 2^40 floats, an absurd n_layer. Each is a
// one-line error naming the dataset, before anything of that size is allocated.
#include <torch/torch.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "circuit/core/model.h"
#include "circuit/prune/mean_cache.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/hostile_h5.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit::prune {
namespace {

using ::circuit::testing::HostileH5;
using ::circuit::testing::StatusIs;
using ::testing::HasSubstr;

class MeansHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.n_layer = 1;
    config_.d_model = 8;
    config_.n_head = 2;
    config_.d_head = 4;
    config_.d_mlp = 16;
    MeanCache cache;
    cache.model_digest = "m";
    cache.source_digest = "s";
    cache.source = "test";
    for (int s = 0; s < NumTapSites(config_.n_layer); ++s) {
      cache.means.push_back(
          torch::zeros({config_.LocationWidth(TapSiteAt(s, config_.n_layer).location)}));
    }
    path_ = dir_.File("m.means.h5");
    ASSERT_THAT(SaveMeans(path_, cache, config_.Layout()), testing::IsOk());
    ASSERT_THAT(LoadMeans(path_, config_.Layout()).status(), testing::IsOk());
    const TapSite first = TapSiteAt(0, config_.n_layer);
    site_ = absl::StrCat("/means/", first.layer, "/", std::string(LocationName(first.location)));
    width_ = static_cast<uint64_t>(config_.LocationWidth(first.location));
  }
  ModelConfig config_;
  testing::TempDir dir_;
  std::string path_, site_;
  uint64_t width_ = 0;
};

TEST_F(MeansHostileTest, SiteWithTheRightShapeButNoData) {
  {
    HostileH5 h(path_);
    ASSERT_TRUE(h.DeclareDataset(site_, {width_}, HostileH5::kFloat32));
  }
  EXPECT_THAT(LoadMeans(path_, config_.Layout()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(site_ + ": declares")));
}

TEST_F(MeansHostileTest, SiteDeclaringTwoToTheFortyFloats) {
  {
    HostileH5 h(path_);
    ASSERT_TRUE(h.DeclareDataset(site_, {uint64_t{1} << 40}, HostileH5::kFloat32));
  }
  EXPECT_THAT(LoadMeans(path_, config_.Layout()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(site_)));
}

TEST_F(MeansHostileTest, AbsurdLayerCount) {
  {
    HostileH5 h(path_);
    ASSERT_TRUE(h.SetInt("/", "n_layer", int64_t{1} << 40));
  }
  EXPECT_THAT(LoadMeans(path_, config_.Layout()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("n_layer 1099511627776")));
}

}  // namespace
}  // namespace circuit::prune
