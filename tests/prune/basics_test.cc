// Node addressing, the Heaviside straight-through gate, task scores, discretization and calibration.
#include <cmath>
#include <limits>

#include "circuit/core/model.h"
#include "circuit/core/task_eval.h"
#include "circuit/prune/ablation.h"
#include "circuit/prune/attribution.h"
#include "circuit/prune/calibration.h"
#include "circuit/prune/discretizer.h"
#include "circuit/prune/mask_optimizer.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/node_mask.h"
#include "gtest/gtest.h"

namespace circuit::prune {
namespace {

ModelConfig Config(int d_pos_emb) {
  ModelConfig c;
  c.n_layer = 3;
  c.d_model = 16;
  c.n_head = 3;
  c.d_head = 4;  // A = 12 != d_model
  c.d_mlp = 40;
  c.d_pos_emb = d_pos_emb;
  return c;
}

TEST(NodeIndexTest, TotalMatchesFormulaAndConfig) {
  for (int p : {0, 8}) {
    const ModelConfig c = Config(p);
    const NodeIndex index(c);
    const int64_t d_in = 16 + p;
    EXPECT_EQ(index.total(), 3 * (2 * d_in + 3 * 12 + 2 * 16 + 40) + 16);
    EXPECT_EQ(index.total(), c.TotalNodes());
    EXPECT_EQ(index.num_sites(), NumTapSites(c.n_layer));
  }
  // The paper's models (PAPER.md §4.1).
  ModelConfig yolo1;
  yolo1.n_layer = 12; yolo1.d_model = 1024; yolo1.n_head = 128; yolo1.d_head = 8; yolo1.d_mlp = 4096;
  EXPECT_EQ(NodeIndex(yolo1).total(), 136192);
  ModelConfig yolo2;
  yolo2.n_layer = 8; yolo2.d_model = 2048; yolo2.n_head = 128; yolo2.d_head = 16;
  yolo2.d_mlp = 8192; yolo2.d_pos_emb = 32;
  EXPECT_EQ(NodeIndex(yolo2).total(), 182784);
}

TEST(NodeIndexTest, FlatRoundTripAndSitesMatchTaps) {
  const ModelConfig c = Config(8);
  const NodeIndex index(c);
  int64_t expected = 0;
  for (int site = 0; site < index.num_sites(); ++site) {
    const TapSite tap = TapSiteAt(site, c.n_layer);
    EXPECT_EQ(index.SiteLayer(site), tap.layer);
    EXPECT_EQ(index.SiteLocation(site), tap.location);
    EXPECT_EQ(index.Site(tap.layer, tap.location), TapSiteIndex(tap.layer, tap.location));
    EXPECT_EQ(index.site_width(site), c.LocationWidth(tap.location));
    EXPECT_EQ(index.site_offset(site), expected);
    expected += index.site_width(site);
  }
  for (int64_t i = 0; i < index.total(); ++i) {
    const Node n = index.At(i);
    ASSERT_TRUE(index.Contains(n));
    ASSERT_EQ(index.Flat(n), i);
  }
  EXPECT_FALSE(index.Contains(Node{3, NodeLocation::kAttnQ, 0}));
  EXPECT_FALSE(index.Contains(Node{0, NodeLocation::kFinalResid, 0}));
  EXPECT_FALSE(index.Contains(Node{0, NodeLocation::kAttnQ, 12}));
}

TEST(MaskUnitsTest, TyingSharesQueryAndKeyUnits) {
  const NodeIndex index(Config(0));
  const MaskUnits plain = BuildMaskUnits(index, /*tie_qk=*/false);
  EXPECT_EQ(plain.n_units, index.total());
  const MaskUnits tied = BuildMaskUnits(index, /*tie_qk=*/true);
  EXPECT_EQ(tied.n_units, index.total() - 3 * 12);
  for (int l = 0; l < 3; ++l) {
    for (int i = 0; i < 12; ++i) {
      const int64_t q = index.Flat(Node{l, NodeLocation::kAttnQ, i});
      const int64_t k = index.Flat(Node{l, NodeLocation::kAttnK, i});
      EXPECT_EQ(tied.node_unit[q], tied.node_unit[k]);
      EXPECT_EQ(tied.unit_nodes[tied.node_unit[q]], (std::vector<int64_t>{q, k}));
    }
  }
  int64_t nodes = 0;
  for (const auto& u : tied.unit_nodes) nodes += u.size();
  EXPECT_EQ(nodes, index.total());
}

TEST(NodeMaskTest, HeavisideForwardAndSurrogateGradient) {
  const double T = 0.3;
  torch::Tensor tau = torch::tensor({-0.9, -0.2, -0.01, 0.0, 0.05, 0.7}, torch::kFloat64)
                          .set_requires_grad(true);
  torch::Tensor w = torch::tensor({1.0, -2.0, 3.0, 0.5, -1.5, 2.5}, torch::kFloat64);
  torch::Tensor g = HeavisideSte(tau, T);
  EXPECT_TRUE(torch::equal(g, torch::tensor({0.0, 0.0, 0.0, 1.0, 1.0, 1.0}, torch::kFloat64)));
  (g * w).sum().backward();
  for (int i = 0; i < 6; ++i) {
    const double t = tau[i].item<double>();
    const double s = 1.0 / (1.0 + std::exp(-t / T));
    EXPECT_NEAR(tau.grad()[i].item<double>(), w[i].item<double>() * s * (1 - s) / T, 1e-12);
  }
}

TEST(NodeMaskTest, InitIsDeterministicGatesFollowUnitsAndClampHolds) {
  const NodeIndex index(Config(0));
  const MaskUnits units = BuildMaskUnits(index, /*tie_qk=*/true);
  NodeMask a(index, units, MaskInit{0.07, 0.0125}, /*seed=*/5);
  NodeMask b(index, units, MaskInit{0.07, 0.0125}, /*seed=*/5);
  NodeMask other(index, units, MaskInit{0.07, 0.0125}, /*seed=*/6);
  EXPECT_TRUE(torch::equal(a.tau(), b.tau()));
  EXPECT_FALSE(torch::equal(a.tau(), other.tau()));
  EXPECT_NEAR(a.tau().mean().item<double>(), 0.07, 0.003);
  EXPECT_NEAR(a.tau().std().item<double>(), 0.0125, 0.002);
  EXPECT_EQ(a.NodeGates(0.2).sum().item<double>(), index.total());  // all start kept

  {
    torch::NoGradGuard no_grad;
    a.tau().mul_(100.0);
    a.tau()[0] = -5.0;
  }
  a.Clamp();
  EXPECT_LE(a.tau().max().item<double>(), 1.0);
  EXPECT_GE(a.tau().min().item<double>(), -1.0);
  EXPECT_EQ(a.tau()[0].item<double>(), -1.0);
  // Unit 0 (node 0) now off; gates of tied pairs agree.
  torch::Tensor keep = a.NodeKeep();
  EXPECT_EQ(keep[0].item<float>(), 0.0f);
  const int64_t q = index.Flat(Node{1, NodeLocation::kAttnQ, 3});
  const int64_t k = index.Flat(Node{1, NodeLocation::kAttnK, 3});
  EXPECT_EQ(keep[q].item<float>(), keep[k].item<float>());
}

TEST(DiscretizerTest, RankUnitsDescendingStable) {
  EXPECT_EQ(RankUnits(torch::tensor({0.1, 0.5, -0.3, 0.5, 0.2})),
            (std::vector<int64_t>{1, 3, 4, 0, 2}));
}

TEST(DiscretizerTest, BisectionFindsSmallestKOnMonotoneLoss) {
  for (int64_t threshold : {1, 2, 37, 400, 999, 1000}) {
    int calls = 0;
    auto loss = [&](int64_t k) {
      ++calls;
      // a step below the target at threshold
      return LossEstimate{k >= threshold ? 0.1 : 1.0 - 0.5 * k / 1000.0, 0.0};
    };
    DiscretizeResult r = Discretize(loss, 1000, /*hint=*/600, DiscretizeOptions{});
    ASSERT_TRUE(r.met_target) << threshold;
    EXPECT_EQ(r.units, threshold);
    EXPECT_DOUBLE_EQ(r.loss, 0.1);
    EXPECT_EQ(r.evaluations, calls);  // each k at most once
    EXPECT_LE(calls, 8 + 2 + 11);
    EXPECT_TRUE(std::is_sorted(r.curve_units.begin(), r.curve_units.end()));
    ASSERT_EQ(r.curve_units.size(), r.curve_loss.size());
    EXPECT_EQ(r.curve_units.front(), 0);
  }
}

TEST(DiscretizerTest, SmoothCurveAndUnreachableTarget) {
  auto smooth = [](int64_t k) { return LossEstimate{2.0 / (1.0 + k), 0.0}; };  // <= 0.15 from k = 13
  DiscretizeResult r = Discretize(smooth, 500, /*hint=*/500, DiscretizeOptions{});
  EXPECT_TRUE(r.met_target);
  EXPECT_EQ(r.units, 13);
  DiscretizeResult never =
      Discretize([](int64_t) { return LossEstimate{0.5, 0.0}; }, 50, /*hint=*/10, DiscretizeOptions{});
  EXPECT_FALSE(never.met_target);
  EXPECT_EQ(never.units, 50);
  DiscretizeResult zero =
      Discretize([](int64_t) { return LossEstimate{0.01, 0.0}; }, 50, 10, DiscretizeOptions{});
  EXPECT_EQ(zero.units, 0);
}

TEST(AblationTest, ScoreStandardErrorIsOverTwinPairs) {
  // Pair 0 loses ln 2 on both prompts (difference 0), pair 1 nothing: the pair
  // means are {ln 2, 0}, so the mean is ln2 / 2 and its standard error
  // std{ln 2, 0} / sqrt 2 = ln2 / 2.
  const TaskScore s = AblationEvaluator::ScoreDiffs(torch::tensor({0.0f, 0.0f, 100.0f, 100.0f}));
  EXPECT_NEAR(s.loss, std::log(2.0) / 2, 1e-6);
  EXPECT_NEAR(s.loss_std_error, std::log(2.0) / 2, 1e-6);
  EXPECT_EQ(AblationEvaluator::ScoreDiffs(torch::tensor({0.0f, 1.0f})).loss_std_error, 0.0);
}

// Twin pairs from a fixed generator, answers 5 and 6. Without `prefixes`
// pair p has length 3 + p % 8 and its twins differ at the first token; with
// them, length 3 + p % 10 and the twins first differ at a varied position (the
// first token, a middle one or the last), or the second is one token longer.
std::vector<TaskExample> TwinPrompts(int pairs, int vocab, bool prefixes) {
  auto gen = at::detail::createCPUGenerator(prefixes ? 9 : 5);
  std::vector<TaskExample> out;
  for (int p = 0; p < pairs; ++p) {
    const int64_t len = 3 + p % (prefixes ? 10 : 8), differ = prefixes ? (p * 7) % len : 0;
    const bool longer = prefixes && p % 3 == 0;
    const torch::Tensor t = torch::randint(2, vocab, {len + 1}, gen, torch::kInt64);
    for (int twin = 0; twin < 2; ++twin) {
      TaskExample ex;
      for (int64_t j = 0; j < len + (twin == 1 && longer ? 1 : 0); ++j) {
        ex.tokens.push_back(static_cast<int32_t>(t[j].item<int64_t>()));
      }
      if (twin == 1 && !longer) ex.tokens[differ] = static_cast<int32_t>(t[differ].item<int64_t>() + 1) % vocab;
      ex.correct = twin == 0 ? 5 : 6;
      ex.alternative = twin == 0 ? 6 : 5;
      out.push_back(ex);
    }
  }
  return out;
}

// AnswerLogits computes the last layer only at the answer positions; with gate
// taps at every site it matches ForwardAt, with positions added or concatenated.
TEST(AnswerLogitsTest, MatchesForwardAtUnderGateTaps) {
  for (int p : {0, 8}) {
    const Model model = *Model::Create(Config(p), /*seed=*/3);
    const NodeIndex index(model.config());
    auto gen = at::detail::createCPUGenerator(6);
    const torch::Tensor keep = (torch::rand({index.total()}, gen) < 0.6).to(torch::kFloat32);
    std::vector<torch::Tensor> means(index.num_sites());
    for (int s = 0; s < index.num_sites(); ++s) means[s] = torch::randn({index.site_width(s)}, gen);
    std::vector<torch::Tensor> gates = SplitBySite(keep, index);
    Taps taps(index.n_layer());
    taps.Add(GateTap(&gates, &means, Ablation::kMean));
    const torch::Tensor tokens = torch::randint(0, model.config().vocab_size, {3, 9}, gen, torch::kInt64);
    const torch::Tensor pos = torch::tensor({8, 0, 4}, torch::kInt64);
    torch::NoGradGuard no_grad;
    const torch::Tensor want = model.ForwardAt(tokens, pos, &taps);
    EXPECT_TRUE(torch::allclose(model.AnswerLogits(tokens, pos, &taps), want, 1e-5, 1e-5)) << p;
    // In stages, split after layer 1.
    torch::Tensor x = model.Layers(model.Embed(tokens), 0, 1, &taps, pos);
    x = model.Layers(x, 1, model.config().n_layer, &taps, pos);
    EXPECT_TRUE(torch::allclose(model.HeadAt(x, tokens, pos, &taps), want, 1e-5, 1e-5)) << p;
  }
}

// Each twin pair's common prefix run once (EmbedSplit, LayersSplit) gives the
// logits of the whole prompts: positions added or concatenated, with and
// without the attention sink, under gates stacked for two copies of the batch.
TEST(SplitPrefixesTest, MatchWholePromptsUnderStackedGates) {
  for (int p : {0, 8}) {
    for (bool sink : {false, true}) {
      ModelConfig c = Config(p);
      c.attn_sink = sink;
      const Model model = *Model::Create(c, /*seed=*/3);
      const NodeIndex index(c);
      auto gen = at::detail::createCPUGenerator(11);
      const TaskBatch b = MakeTaskBatch(TwinPrompts(10, c.vocab_size, /*prefixes=*/true), model.device());
      const PrefixSplit split = SplitTwinPrefixes(b.tokens, b.last);
      ASSERT_GT(split.prefix.size(1), 0);
      EXPECT_EQ(split.prefix_len.min().item<int64_t>(), 0);  // a pair that differs first
      std::vector<torch::Tensor> means(index.num_sites());
      for (int s = 0; s < index.num_sites(); ++s) means[s] = torch::randn({index.site_width(s)}, gen);
      const torch::Tensor keeps = (torch::rand({2, index.total()}, gen) < 0.6).to(torch::kFloat32);
      std::vector<torch::Tensor> stacked(index.num_sites());
      for (int s = 0; s < index.num_sites(); ++s) {
        stacked[s] = keeps.narrow(1, index.site_offset(s), index.site_width(s))
                         .reshape({2, 1, 1, index.site_width(s)});
      }
      Taps taps(index.n_layer());
      taps.Add(GateTap(&stacked, &means, Ablation::kMean));
      torch::NoGradGuard no_grad;
      SplitResidual x = model.EmbedSplit(split);
      x = {x.prefix.repeat({2, 1, 1}), x.suffix.repeat({2, 1, 1})};
      x = model.LayersSplit(x, 0, 1, &taps, split);  // in two stages
      x = model.LayersSplit(x, 1, c.n_layer, &taps, split);
      const torch::Tensor got = model.HeadAt(x.suffix, b.tokens.repeat({2, 1}), b.last.repeat({2}), &taps);
      const int64_t B = b.tokens.size(0);
      for (int m = 0; m < 2; ++m) {
        std::vector<torch::Tensor> gates = SplitBySite(keeps[m], index);
        Taps one(index.n_layer());
        one.Add(GateTap(&gates, &means, Ablation::kMean));
        const torch::Tensor want = model.ForwardAt(b.tokens, b.last, &one);
        EXPECT_TRUE(torch::allclose(got.narrow(0, m * B, B), want, 1e-4, 1e-5))
            << "d_pos_emb " << p << " sink " << sink << " set " << m;
      }
    }
  }
}

// The evaluator splits twin prefixes under mean and zero ablation; its
// differences are those of whole prompts scored one by one.
TEST(SplitPrefixesTest, EvaluatorMatchesWholePrompts) {
  const Model model = *Model::Create(Config(8), /*seed=*/4);
  const NodeIndex index(model.config());
  const std::vector<TaskExample> examples = TwinPrompts(12, model.config().vocab_size, /*prefixes=*/true);
  auto gen = at::detail::createCPUGenerator(12);
  std::vector<torch::Tensor> means(index.num_sites());
  for (int s = 0; s < index.num_sites(); ++s) means[s] = torch::randn({index.site_width(s)}, gen);
  for (Ablation ablation : {Ablation::kMean, Ablation::kZero}) {
    const AblationEvaluator eval(model, index, means, ablation, examples, /*batch_prompts=*/8);
    const torch::Tensor circuit = (torch::rand({index.total()}, gen) < 0.5).to(torch::kFloat32);
    torch::Tensor flipped = circuit.clone();
    flipped[index.Flat(Node{2, NodeLocation::kAttnK, 3})] = 1 - flipped[index.Flat(Node{2, NodeLocation::kAttnK, 3})];
    const torch::Tensor keeps = torch::stack({circuit, flipped, torch::ones({index.total()})});
    const torch::Tensor many = eval.LogitDiffsMany(keeps);
    torch::NoGradGuard no_grad;
    for (int64_t m = 0; m < keeps.size(0); ++m) {
      std::vector<torch::Tensor> gates = SplitBySite(keeps[m], index);
      Taps taps(index.n_layer());
      taps.Add(GateTap(&gates, &means, ablation));
      const TaskBatch b = MakeTaskBatch(examples, model.device());
      const torch::Tensor logits = model.ForwardAt(b.tokens, b.last, &taps);
      const torch::Tensor want = logits.gather(1, b.correct.unsqueeze(1)).squeeze(1) -
                                 logits.gather(1, b.alternative.unsqueeze(1)).squeeze(1);
      EXPECT_TRUE(torch::allclose(eval.LogitDiffs(keeps[m]), want, 1e-4, 1e-5)) << m;
      EXPECT_TRUE(torch::allclose(many[m], want, 1e-4, 1e-5)) << m;
    }
  }
}

// Sites whose gates are all 0 return their mean whatever the input; declared
// constant (Taps::SetConstants), the model skips the sublayers that only feed
// them — a whole attention or MLP sublayer, the MLP's first half, attention's
// reads — and the logits stay bit for bit those of the full computation, on
// whole prompts and with twin prefixes split. The evaluator declares them.
TEST(SplitPrefixesTest, ConstantSitesSkipSublayersExactly) {
  using L = NodeLocation;
  for (int p : {0, 8}) {
    const Model model = *Model::Create(Config(p), /*seed=*/5);
    const NodeIndex index(model.config());
    auto gen = at::detail::createCPUGenerator(13);
    std::vector<torch::Tensor> means(index.num_sites());
    for (int s = 0; s < index.num_sites(); ++s) means[s] = torch::randn({index.site_width(s)}, gen);
    // Layer 0 whole; layer 1: attention off, MLP's write on but its neurons
    // off; layer 2: attention's write on but its queries, keys and values off,
    // MLP off; final_resid half.
    torch::Tensor keep = torch::zeros({index.total()});
    auto set = [&](int layer, L loc, float value) {
      const int s = TapSiteIndex(layer, loc);
      keep.narrow(0, index.site_offset(s), index.site_width(s)).fill_(value);
    };
    for (int s = 0; s < kNumLayerLocations; ++s) set(0, static_cast<L>(s), 1);
    set(1, L::kMlpResidDelta, 1);
    set(2, L::kAttnResidDelta, 1);
    set(3, L::kFinalResid, 1);
    keep.narrow(0, index.site_offset(TapSiteIndex(3, L::kFinalResid)), 4).zero_();
    std::vector<torch::Tensor> gates = SplitBySite(keep, index), constants(index.num_sites());
    for (int s = 0; s < index.num_sites(); ++s) {
      if (gates[s].max().item<float>() == 0) constants[s] = means[s];
    }
    std::vector<int> calls(index.num_sites(), 0);
    Taps plain(index.n_layer()), skipping(index.n_layer());
    plain.Add(GateTap(&gates, &means, Ablation::kMean));
    skipping.Add(GateTap(&gates, &means, Ablation::kMean));
    skipping.Add([&calls](const TapSite& site, const torch::Tensor& x) {
      ++calls[site.site];
      return x;
    });
    skipping.SetConstants(&constants);
    const std::vector<TaskExample> examples = TwinPrompts(10, model.config().vocab_size, /*prefixes=*/true);
    const TaskBatch b = MakeTaskBatch(examples, model.device());
    const PrefixSplit split = SplitTwinPrefixes(b.tokens, b.last);
    torch::NoGradGuard no_grad;
    const torch::Tensor want = model.AnswerLogits(b.tokens, b.last, &plain);
    EXPECT_TRUE(torch::equal(model.AnswerLogits(b.tokens, b.last, &skipping), want)) << p;
    EXPECT_TRUE(torch::equal(BatchAnswerLogits(model, b, split, Ablation::kMean, &skipping),
                             BatchAnswerLogits(model, b, split, Ablation::kMean, &plain)))
        << p;
    for (L loc : {L::kAttnActIn, L::kAttnQ, L::kAttnK, L::kAttnV, L::kAttnResidDelta,
                  L::kMlpActIn, L::kMlpPostAct}) {
      EXPECT_EQ(calls[TapSiteIndex(1, loc)], 0) << LocationName(loc);
    }
    for (L loc : {L::kAttnActIn, L::kAttnQ, L::kAttnK, L::kAttnV, L::kMlpActIn, L::kMlpPostAct,
                  L::kMlpResidDelta}) {
      EXPECT_EQ(calls[TapSiteIndex(2, loc)], 0) << LocationName(loc);
    }
    EXPECT_GT(calls[TapSiteIndex(1, L::kMlpResidDelta)], 0);
    EXPECT_GT(calls[TapSiteIndex(2, L::kAttnResidDelta)], 0);

    const AblationEvaluator eval(model, index, means, Ablation::kMean, examples, /*batch_prompts=*/8);
    const torch::Tensor diffs = want.gather(1, b.correct.unsqueeze(1)).squeeze(1) -
                                want.gather(1, b.alternative.unsqueeze(1)).squeeze(1);
    EXPECT_TRUE(torch::allclose(eval.LogitDiffs(keep), diffs, 1e-4, 1e-5)) << p;
    torch::Tensor fewer = keep.clone();
    fewer[index.Flat(Node{2, L::kAttnResidDelta, 1})] = 0;
    const torch::Tensor many = eval.LogitDiffsMany(torch::stack({keep, fewer}));
    EXPECT_TRUE(torch::allclose(many[0], diffs, 1e-4, 1e-5)) << p;
    EXPECT_TRUE(torch::allclose(many[1], eval.LogitDiffs(fewer), 1e-4, 1e-5)) << p;
  }
}

// A random 4-layer model, random means per site drawn from `gen` (Init), 18 varied prompts.
class RandomModelAblationTest : public ::testing::Test {
 protected:
  RandomModelAblationTest()
      : model(*Model::Create(Config(0), /*seed=*/4)),
        index(model.config()),
        examples(TwinPrompts(9, model.config().vocab_size, /*prefixes=*/false)) {}
  void Init(uint64_t seed) {
    gen = at::detail::createCPUGenerator(seed);
    for (int s = 0; s < index.num_sites(); ++s) {
      means.push_back(torch::randn({index.site_width(s)}, gen));
    }
  }
  const Model model;
  const NodeIndex index;
  const std::vector<TaskExample> examples;
  at::Generator gen;
  std::vector<torch::Tensor> means;
};

// Stacked sets share the layers below their first difference from the base
// set (the per-node median); every kind of set scores as it does alone.
TEST_F(RandomModelAblationTest, StackedSetsSharingPrefixesMatchOneAtATime) {
  Init(7);
  for (Ablation ablation : {Ablation::kMean, Ablation::kZero}) {
    AblationEvaluator eval(model, index, means, ablation, examples, /*batch_prompts=*/6);
    const torch::Tensor circuit = (torch::rand({index.total()}, gen) < 0.5).to(torch::kFloat32);
    std::vector<torch::Tensor> keeps = {circuit, circuit.clone()};  // two equal to the base
    for (const Node& n : {Node{0, NodeLocation::kAttnQ, 2}, Node{1, NodeLocation::kMlpPostAct, 7},
                          Node{2, NodeLocation::kAttnV, 1}, Node{2, NodeLocation::kMlpPostAct, 0},
                          Node{3, NodeLocation::kFinalResid, 5}}) {
      torch::Tensor k = circuit.clone();
      k[index.Flat(n)] = 1 - k[index.Flat(n)];  // one node flipped, at layers 0..2 and final
      keeps.push_back(k);
    }
    keeps.push_back(torch::ones({index.total()}));  // the full model
    const torch::Tensor stacked = torch::stack(keeps);
    const torch::Tensor many = eval.LogitDiffsMany(stacked);
    ASSERT_EQ(many.sizes().vec(), (std::vector<int64_t>{stacked.size(0), 18}));
    for (int64_t m = 0; m < stacked.size(0); ++m) {
      EXPECT_TRUE(torch::allclose(many[m], eval.LogitDiffs(stacked[m]), 1e-4, 1e-5)) << m;
    }
  }
}

// GiveUp drops a set only once its loss is certain to exceed its threshold;
// the sets it keeps score exactly as without it, and a dropped set's
// ScreenedScore is a lower bound of its loss, above the threshold.
TEST_F(RandomModelAblationTest, GiveUpDropsOnlySetsCertainToMissAndKeepsTheOthersExact) {
  Init(8);
  const AblationEvaluator eval(model, index, means, Ablation::kMean, examples, /*batch_prompts=*/6);
  std::vector<torch::Tensor> keeps;
  for (int m = 0; m < 6; ++m) keeps.push_back((torch::rand({index.total()}, gen) < 0.5).to(torch::kFloat32));
  const torch::Tensor stacked = torch::stack(keeps);
  const torch::Tensor full = eval.LogitDiffsMany(stacked);  // (6, 18)
  GiveUp g;
  std::vector<double> loss;
  for (int m = 0; m < 6; ++m) {
    loss.push_back(AblationEvaluator::ScoreDiffs(full[m]).loss);
    // Even sets: a threshold a fifth of their loss (they may go); odd: above it, or none.
    g.above.push_back(m % 2 == 0 ? 0.2 * loss[m]
                                 : (m == 5 ? std::numeric_limits<double>::infinity() : 2 * loss[m]));
  }
  const int64_t before = eval.rows_scored();
  const torch::Tensor screened = eval.LogitDiffsMany(stacked, &g);
  const int64_t rows = eval.rows_scored() - before;
  int dropped = 0;
  for (int m = 0; m < 6; ++m) {
    const TaskScore s = AblationEvaluator::ScreenedScore(screened[m]);
    if (torch::isnan(screened[m]).any().item<bool>()) {
      ++dropped;
      EXPECT_EQ(m % 2, 0) << m;
      EXPECT_GT(s.loss, g.above[m]) << m;
      EXPECT_LE(s.loss, loss[m] + 1e-6) << m;
    } else {
      // Exact on Intel; an AMD EPYC's BLAS rounds the last bit by batch shape.
      EXPECT_TRUE(torch::allclose(screened[m], full[m], /*rtol=*/0, /*atol=*/1e-5)) << m;
      EXPECT_NEAR(s.loss, loss[m], 1e-6) << m;
    }
  }
  EXPECT_GT(dropped, 0);
  EXPECT_LT(rows, 6 * 18);  // dropped sets skipped their last batches
  // One set at a time (LogitDiffs) drops the same way.
  GiveUp one{{0.2 * loss[0]}, nullptr};
  const TaskScore s0 = AblationEvaluator::ScreenedScore(eval.LogitDiffs(keeps[0], &one));
  EXPECT_GT(s0.loss, one.above[0]);
  EXPECT_LE(s0.loss, loss[0] + 1e-6);
  GiveUp high{{2 * loss[1]}, nullptr};
  EXPECT_TRUE(torch::allclose(eval.LogitDiffs(keeps[1], &high), eval.LogitDiffs(keeps[1]), 0, 1e-5));
}

// Batches spread over two threads (ParallelFor) give the figures of one batch
// after another: the same differences, the same sets dropped at the same
// batches, the same rows counted; attribution sums the batches in order, and
// mask training its steps' parts (9 pairs a step: parts of 8 and 1).
TEST_F(RandomModelAblationTest, TwoThreadsScoreAsOne) {
  const int saved = torch::get_num_threads();
  Init(8);
  std::vector<torch::Tensor> keeps;
  for (int m = 0; m < 6; ++m) keeps.push_back((torch::rand({index.total()}, gen) < 0.5).to(torch::kFloat32));
  const torch::Tensor stacked = torch::stack(keeps);
  const MaskUnits units = BuildMaskUnits(index, /*tie_qk=*/false);
  struct Figures {
    torch::Tensor many, screened, one;
    int64_t rows = 0, passes = 0;
    torch::Tensor attribution, tau;
  };
  auto run = [&](int threads) {
    torch::set_num_threads(threads);
    const AblationEvaluator eval(model, index, means, Ablation::kMean, examples, /*batch_prompts=*/2);
    Figures f;
    f.many = eval.LogitDiffsMany(stacked);
    GiveUp g;
    for (int m = 0; m < 6; ++m) {
      g.above.push_back(m % 2 == 0 ? 0.3 * AblationEvaluator::ScoreDiffs(f.many[m]).loss
                                   : std::numeric_limits<double>::infinity());
    }
    f.screened = eval.LogitDiffsMany(stacked, &g);
    GiveUp one{{g.above[0]}, nullptr};
    f.one = eval.LogitDiffs(keeps[0], &one);
    f.rows = eval.rows_scored();
    f.passes = eval.forward_passes();
    AttributionOptions ao;
    ao.batch_prompts = 2;
    f.attribution = *AttributionScores(model, index, units, means, examples, ao);
    MaskTrainOptions mo;
    mo.batch = 9;
    mo.epochs = 2;
    f.tau = TrainMasks(model, index, units, means, examples, mo, /*seed=*/1, nullptr)->tau;
    return f;
  };
  const Figures a = run(1), b = run(2);
  torch::set_num_threads(saved);
  // The same sets dropped at the same batches; the figures equal up to the
  // last bit (exact on Intel; an AMD EPYC's BLAS rounds by thread count).
  auto close = [](const torch::Tensor& x, const torch::Tensor& y) {
    return torch::allclose(x.nan_to_num(), y.nan_to_num(), /*rtol=*/0, /*atol=*/1e-5);
  };
  EXPECT_TRUE(close(a.many, b.many));
  EXPECT_TRUE(torch::isnan(a.screened).any().item<bool>());  // some sets were dropped
  EXPECT_TRUE(torch::equal(torch::isnan(a.screened), torch::isnan(b.screened)));
  EXPECT_TRUE(close(a.screened, b.screened));
  EXPECT_TRUE(close(a.one, b.one));
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.passes, b.passes);
  EXPECT_TRUE(torch::allclose(a.attribution, b.attribution, /*rtol=*/1e-5, /*atol=*/1e-7));
  EXPECT_TRUE(torch::allclose(a.tau, b.tau, /*rtol=*/0, /*atol=*/1e-6));
}

TEST(DiscretizerTest, ConfidenceBoundAsksForMoreUnits) {
  // Mean 2/(1+k) meets 0.15 from k = 13; a standard error of 0.02 at z = 1.645
  // adds 0.0329, so the bound meets it only where 2/(1+k) <= 0.1171, k >= 17.
  EXPECT_NEAR(ConfidenceZ(0.95), 1.6449, 1e-4);
  EXPECT_NEAR(ConfidenceZ(0.9), 1.2816, 1e-4);
  EXPECT_NEAR(ConfidenceZ(0.5), 0.0, 1e-9);
  EXPECT_TRUE(ValidateConfidence(0.5).ok());
  EXPECT_FALSE(ValidateConfidence(0.3).ok());
  EXPECT_FALSE(ValidateConfidence(1.0).ok());
  auto noisy = [](int64_t k) { return LossEstimate{2.0 / (1.0 + k), 0.02}; };
  DiscretizeOptions paper;
  EXPECT_EQ(Discretize(noisy, 500, 500, paper).units, 13);
  DiscretizeOptions strict;
  strict.z = ConfidenceZ(0.95);
  DiscretizeResult r = Discretize(noisy, 500, 500, strict);
  ASSERT_TRUE(r.met_target);
  EXPECT_EQ(r.units, 17);
  EXPECT_DOUBLE_EQ(r.loss, 2.0 / 18.0);
  EXPECT_NEAR(r.loss_bound, 2.0 / 18.0 + 0.02 * strict.z, 1e-12);
}

TEST(CalibrationTest, RecoversScaleAndShift) {
  // Logit differences whose best calibration is known: diff = (z - s * b) / a with
  // z the calibrated difference, so the fit should find a and b back.
  auto gen = at::detail::createCPUGenerator(3);
  const int64_t n = 4000;
  torch::Tensor sign = TwinSigns(n);
  EXPECT_EQ(sign[0].item<float>(), 1.0f);
  EXPECT_EQ(sign[1].item<float>(), -1.0f);
  torch::Tensor z = torch::randn({n}, gen) * 2.0 + 1.0;
  // Draw labels from the calibrated model: the correct one wins with p = sigmoid(z).
  torch::Tensor u = torch::rand({n}, gen);
  torch::Tensor flip = (u > torch::sigmoid(z)).to(torch::kFloat32) * 2 - 1;  // -1 keep, +1 flip
  torch::Tensor zz = z * -flip;  // the difference seen for the label actually drawn
  const double a = 2.5, b = 0.4;
  torch::Tensor diff = (zz - sign * b) / a;
  LogitCalibration cal = FitCalibration(diff, sign);
  EXPECT_NEAR(cal.scale, a, 0.25);
  EXPECT_NEAR(cal.shift, b, 0.15);
  const double before = CalibratedLoss(diff, sign, LogitCalibration{}).mean().item<double>();
  const double after = CalibratedLoss(diff, sign, cal).mean().item<double>();
  EXPECT_LT(after, before);
}

}  // namespace
}  // namespace circuit::prune
