// Edges against brute-force enumeration; the mean cache against recorded activations.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <tuple>

#include "circuit/core/checkpoint.h"
#include "circuit/core/model.h"
#include "circuit/prune/edges.h"
#include "circuit/prune/mean_cache.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/pruner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "planted.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit::prune {
namespace {

using L = NodeLocation;

// The weight connecting src -> dst if the pair is one of the six blocks, else 0.
float BruteWeight(const Model& m, const Node& src, const Node& dst) {
  if (src.layer != dst.layer || src.location == L::kFinalResid) return 0.0f;
  const LayerWeights& w = m.layer(src.layer);
  const int64_t A = m.config().attn_width();
  const int64_t i = dst.index, j = src.index;
  if (src.location == L::kAttnActIn) {
    if (dst.location == L::kAttnQ) return w.c_attn_w[i][j].item<float>();
    if (dst.location == L::kAttnK) return w.c_attn_w[A + i][j].item<float>();
    if (dst.location == L::kAttnV) return w.c_attn_w[2 * A + i][j].item<float>();
  }
  if (src.location == L::kAttnV && dst.location == L::kAttnResidDelta) return w.attn_proj_w[i][j].item<float>();
  if (src.location == L::kMlpActIn && dst.location == L::kMlpPostAct) return w.fc_w[i][j].item<float>();
  if (src.location == L::kMlpPostAct && dst.location == L::kMlpResidDelta) return w.mlp_proj_w[i][j].item<float>();
  return 0.0f;
}

TEST(EdgesTest, MatchBruteForceEnumeration) {
  const Model model = testing::RandomSparseModel(/*seed=*/11, /*density=*/0.3);
  const NodeIndex index(model.config());
  auto gen = at::detail::createCPUGenerator(12);
  for (double keep_share : {0.2, 0.6, 1.0}) {
    torch::Tensor keep = torch::rand({index.total()}, gen) < keep_share;
    std::vector<Node> nodes;
    for (int64_t i = 0; i < index.total(); ++i) {
      if (keep[i].item<bool>()) nodes.push_back(index.At(i));
    }
    const std::vector<CircuitEdge> edges = CircuitEdges(model, nodes);
    std::set<std::tuple<int64_t, int64_t, float>> got, want;
    for (const CircuitEdge& e : edges) got.insert({e.src, e.dst, e.weight});
    EXPECT_EQ(got.size(), edges.size());  // no duplicates
    for (size_t s = 0; s < nodes.size(); ++s) {
      for (size_t d = 0; d < nodes.size(); ++d) {
        const float w = BruteWeight(model, nodes[s], nodes[d]);
        if (w != 0.0f) want.insert({static_cast<int64_t>(s), static_cast<int64_t>(d), w});
      }
    }
    EXPECT_EQ(got, want) << "keep share " << keep_share;
    EXPECT_GT(want.size(), 0u);
    if (keep_share == 1.0) EXPECT_EQ(static_cast<int64_t>(edges.size()), TotalEdges(model));
  }
}

TEST(EdgesTest, PlantedCircuitHasItsFiveEdges) {
  const Model model = testing::PlantedModel();
  std::vector<Node> nodes = testing::PlantedNodes();
  std::sort(nodes.begin(), nodes.end());
  // act_in 0 -> neuron 0, act_in 1 -> neuron 1, neurons 0, 1 -> resid_delta 5.
  EXPECT_EQ(CircuitEdges(model, nodes).size(), 4u);
}

TEST(MeanCacheTest, MeansEqualRecordedAverages) {
  const Model model = testing::RandomSparseModel(/*seed=*/3, /*density=*/0.5);
  const torch::Tensor windows = torch::randint(0, 8, {5, 8}, at::detail::createCPUGenerator(4),
                                               torch::kInt64);
  absl::StatusOr<MeanCache> cache = ComputeMeans(model, windows, /*batch_windows=*/2);
  ASSERT_THAT(cache.status(), testing::IsOk());
  std::vector<torch::Tensor> acts(NumTapSites(model.config().n_layer));
  Taps taps(model.config().n_layer);
  taps.Add(RecordTap(&acts));
  torch::NoGradGuard no_grad;
  model.Forward(windows, &taps);
  for (size_t s = 0; s < acts.size(); ++s) {
    EXPECT_TRUE(torch::allclose(cache->means[s], acts[s].mean(std::vector<int64_t>{0, 1}), 1e-5, 1e-6))
        << "site " << s;
  }
  EXPECT_EQ(cache->n_tokens, 40);
}

TEST(MeanCacheTest, SavedNextToModelAndReusedOnlyForSameDigests) {
  testing::TempDir dir;
  EXPECT_EQ(MeansPathFor("/a/b/default.h5"), "/a/b/default.means.h5");
  EXPECT_EQ(MeansPathFor("model"), "model.means.h5");
  const Model model = testing::RandomSparseModel(/*seed=*/3, /*density=*/0.5);
  const torch::Tensor windows = testing::PlantedMeanWindows(4, 1);
  const std::string path = MeansPathFor(dir.File("m.h5"));
  bool reused = true;
  std::string note;
  absl::StatusOr<MeanCache> first =
      LoadOrComputeMeans(path, model, "digest1", windows, "text", &reused, &note);
  ASSERT_THAT(first.status(), testing::IsOk());
  EXPECT_FALSE(reused);
  EXPECT_TRUE(note.empty()) << note;
  absl::StatusOr<MeanCache> loaded = LoadMeans(path, model.layout());
  ASSERT_THAT(loaded.status(), testing::IsOk());
  EXPECT_EQ(loaded->model_digest, "digest1");
  EXPECT_EQ(loaded->source, "text");
  for (size_t s = 0; s < first->means.size(); ++s) {
    EXPECT_TRUE(torch::equal(loaded->means[s], first->means[s]));
  }
  absl::StatusOr<MeanCache> again =
      LoadOrComputeMeans(path, model, "digest1", windows, "text", &reused, &note);
  EXPECT_TRUE(reused);
  LoadOrComputeMeans(path, model, "digest2", windows, "text", &reused, &note).IgnoreError();
  EXPECT_FALSE(reused);  // another model
  LoadOrComputeMeans(path, model, "digest2", testing::PlantedMeanWindows(4, 2), "text", &reused,
                     &note).IgnoreError();
  EXPECT_FALSE(reused);  // other text
  // A model of another shape is refused with the file's name.
  const Model planted = testing::PlantedModel();
  EXPECT_THAT(LoadMeans(path, planted.layout()).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("m.means.h5")));
  EXPECT_THAT(LoadMeans(dir.File("none.h5"), model.layout()).status(),
              testing::StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("none.h5")));
}

// A cache full of NaN, inf or 3e38 is damaged, not means: LoadMeans says so, and
// ResolveMeans recomputes instead of using it, with a note that says what happened.
TEST(MeanCacheTest, DamagedValuesAreRejectedAndReported) {
  testing::TempDir dir;
  const Model model = testing::RandomSparseModel(/*seed=*/3, /*density=*/0.5);
  const std::string path = MeansPathFor(dir.File("m.h5"));
  absl::StatusOr<MeanCache> good = ComputeMeans(model, testing::PlantedMeanWindows(4, 1));
  ASSERT_THAT(good.status(), testing::IsOk());
  good->model_digest = "digest1";
  good->source = "corpus text";
  for (const float bad : {std::nanf(""), INFINITY, -3e38f}) {
    MeanCache damaged = *good;
    damaged.means[2] = damaged.means[2].clone();
    damaged.means[2][1] = bad;
    ASSERT_THAT(SaveMeans(path, damaged, model.layout()), testing::IsOk());
    EXPECT_THAT(LoadMeans(path, model.layout()).status(),
                testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                  ::testing::HasSubstr("[1] is ")))
        << bad;
    ExtractOptions options;
    options.means_cache = path;
    ExtractStats stats;
    absl::StatusOr<MeanCache> used =
        ResolveMeans(model, "digest1", testing::PlantedTask(4, 2, 2, /*seed=*/1), options, &stats);
    ASSERT_THAT(used.status(), testing::IsOk());
    for (const torch::Tensor& m : used->means) EXPECT_TRUE(torch::isfinite(m).all().item<bool>());
    EXPECT_FALSE(stats.means_reused);
    EXPECT_THAT(stats.note, ::testing::HasSubstr("ignored the mean cache: " + path));
    EXPECT_THAT(stats.means_source, ::testing::HasSubstr("train prompts"));
  }
  // Unreadable bytes: recomputed too, and said so.
  std::ofstream(path) << "not hdf5";
  ExtractOptions options;
  options.means_cache = path;
  ExtractStats stats;
  ASSERT_THAT(ResolveMeans(model, "digest1", testing::PlantedTask(4, 2, 2, 1), options, &stats).status(),
              testing::IsOk());
  EXPECT_THAT(stats.note, ::testing::HasSubstr("not an HDF5 file"));
}

// `extract --corpus` gives other windows than the model's cached means: they get
// a cache of their own, and the model's means stay what later runs use.
TEST(MeanCacheTest, AnotherCorpusNeverReplacesTheModelsMeans) {
  testing::TempDir dir;
  const Model model = testing::RandomSparseModel(/*seed=*/3, /*density=*/0.5);
  const std::string path = MeansPathFor(dir.File("m.h5"));
  const torch::Tensor own = testing::PlantedMeanWindows(4, 1);
  const torch::Tensor other = testing::PlantedMeanWindows(4, 2);
  bool reused = false;
  std::string note;
  ASSERT_THAT(LoadOrComputeMeans(path, model, "digest1", own, "own corpus", &reused, &note).status(),
              testing::IsOk());
  const TaskData task = testing::PlantedTask(4, 2, 2, /*seed=*/1);

  ExtractOptions with_corpus;
  with_corpus.means_cache = path;
  with_corpus.mean_windows = other;
  with_corpus.mean_source = "other corpus";
  ExtractStats stats;
  ASSERT_THAT(ResolveMeans(model, "digest1", task, with_corpus, &stats).status(), testing::IsOk());
  EXPECT_EQ(stats.means_source, "other corpus");
  const std::string other_path = dir.File("m.means-" + TokensDigest(other) + ".h5");
  EXPECT_EQ(MeansPathForSource(path, model.layout(), "digest1", TokensDigest(other)), other_path);
  EXPECT_EQ(MeansPathForSource(path, model.layout(), "digest1", TokensDigest(own)), path);
  EXPECT_EQ(MeansPathForSource(dir.File("none.means.h5"), model.layout(), "digest1", "x"),
            dir.File("none.means.h5"));
  absl::StatusOr<MeanCache> kept = LoadMeans(path, model.layout());
  ASSERT_THAT(kept.status(), testing::IsOk());
  EXPECT_EQ(kept->source, "own corpus");
  EXPECT_EQ(kept->source_digest, TokensDigest(own));
  absl::StatusOr<MeanCache> separate = LoadMeans(other_path, model.layout());
  ASSERT_THAT(separate.status(), testing::IsOk());
  EXPECT_EQ(separate->source, "other corpus");

  // Later runs: without --corpus the model's means, with it the other cache, reused.
  ExtractOptions plain;
  plain.means_cache = path;
  ASSERT_THAT(ResolveMeans(model, "digest1", task, plain, &stats).status(), testing::IsOk());
  EXPECT_TRUE(stats.means_reused);
  EXPECT_EQ(stats.means_source, "own corpus");
  ASSERT_THAT(ResolveMeans(model, "digest1", task, with_corpus, &stats).status(), testing::IsOk());
  EXPECT_TRUE(stats.means_reused);
  EXPECT_EQ(stats.means_source, "other corpus");
}

TEST(MeanCacheTest, RejectsBadWindows) {
  const Model model = testing::PlantedModel();
  EXPECT_FALSE(ComputeMeans(model, torch::zeros({2, 9}, torch::kInt64)).ok());   // > n_ctx
  EXPECT_FALSE(ComputeMeans(model, torch::full({2, 4}, 8, torch::kInt64)).ok()); // id >= vocab
  EXPECT_FALSE(ComputeMeans(model, torch::zeros({4}, torch::kInt64)).ok());      // not 2-D
}

// The bundled model and its means, read after torch ran on two threads in this
// process. Each HDF5 reader's reading process is forked from this one, torch's
// thread pool and all; it runs only libhdf5 and must not wait on that pool.
TEST(MeanCacheTest, BundledFilesReadAfterTorchRanOnThreads) {
  at::set_num_threads(2);
  const torch::Tensor a = torch::rand({512, 512}, torch::TensorOptions().dtype(torch::kFloat32));
  EXPECT_TRUE(torch::isfinite(torch::mm(a, a)).all().item<bool>());
  const std::string dir = testing::SourceDir() + "/data/models/";
  absl::StatusOr<ModelFile> file = LoadModel(dir + "default.h5");
  ASSERT_THAT(file.status(), testing::IsOk());
  absl::StatusOr<MeanCache> means = LoadMeans(dir + "default.means.h5", file->model.layout());
  ASSERT_THAT(means.status(), testing::IsOk());
  EXPECT_EQ(means->model_digest, file->digest);
  EXPECT_FALSE(means->means.empty());
}

}  // namespace
}  // namespace circuit::prune
