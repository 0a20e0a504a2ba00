// The forward pass against a slow, loop-based reference; taps and their gradients.
#include "circuit/core/attention.h"
#include "circuit/core/model.h"
#include "circuit/core/status.h"
#include "model/gpt/attend.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"

namespace circuit {
namespace {

ModelConfig TinyConfig(int d_pos_emb) {
  ModelConfig c;
  c.n_layer = 2;
  c.d_model = 16;
  c.n_head = 3;
  c.d_head = 4;  // A = 12 != d_model
  c.d_mlp = 24;
  c.vocab_size = 40;
  c.n_ctx = 8;
  c.d_pos_emb = d_pos_emb;
  c.afrac = 0.5;
  c.attn_sink = true;
  c.bigram_table = true;
  return c;
}

// Every parameter random (biases, sinks, positions and norms too), so no term hides.
Model RandomModel(const ModelConfig& config, uint64_t seed) {
  absl::StatusOr<Model> model = Model::Create(config, seed);
  CIRCUIT_CHECK(model.ok());
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed + 1);
  for (NamedTensor& p : model->mutable_parameters()) p.tensor.normal_(0.0, 0.5, gen);
  return std::move(*model);
}

// ---- The reference: one token, one head at a time, with a sort-based AbsTopK.

torch::Tensor RefTopK(const torch::Tensor& v, int k) {  // v: (n)
  std::vector<int64_t> order(v.size(0));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return std::abs(v[a].item<double>()) > std::abs(v[b].item<double>());
  });
  torch::Tensor out = torch::zeros_like(v);
  for (int i = 0; i < k; ++i) out[order[i]] = v[order[i]];
  return out;
}

torch::Tensor RefNorm(const torch::Tensor& v, const torch::Tensor& w) {
  double ms = 0;
  for (int64_t i = 0; i < v.size(0); ++i) ms += v[i].item<double>() * v[i].item<double>();
  ms /= v.size(0);
  return v / std::sqrt(ms + std::numeric_limits<float>::epsilon()) * w;
}

torch::Tensor ReferenceLogits(const Model& m, const std::vector<int64_t>& tokens) {
  const ModelConfig& c = m.config();
  const int T = tokens.size(), A = c.attn_width(), dh = c.d_head;
  auto topk = [&](NodeLocation loc, const torch::Tensor& v) {
    return RefTopK(v, c.ActivationTopK(loc));
  };
  std::vector<torch::Tensor> x(T);
  for (int t = 0; t < T; ++t) {
    x[t] = m.wte()[tokens[t]].clone();
    if (c.d_pos_emb == 0) x[t] += m.wpe()[t];
  }
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& w = m.layer(l);
    auto read = [&](int t, const torch::Tensor& ln, const torch::Tensor& ln_p) {
      torch::Tensor h = RefNorm(x[t], ln);
      if (c.d_pos_emb > 0) h = torch::cat({h, RefNorm(m.wpe()[t], ln_p)});
      return h;
    };
    std::vector<torch::Tensor> q(T), k(T), v(T);
    for (int t = 0; t < T; ++t) {
      torch::Tensor h = topk(NodeLocation::kAttnActIn, read(t, w.ln_1, w.ln_p1));
      torch::Tensor qkv = torch::mv(w.c_attn_w, h) + w.c_attn_b;
      q[t] = topk(NodeLocation::kAttnQ, qkv.slice(0, 0, A));
      k[t] = topk(NodeLocation::kAttnK, qkv.slice(0, A, 2 * A));
      v[t] = topk(NodeLocation::kAttnV, qkv.slice(0, 2 * A, 3 * A));
    }
    for (int t = 0; t < T; ++t) {
      torch::Tensor y = torch::zeros({A}, x[t].options());
      for (int hd = 0; hd < c.n_head; ++hd) {
        std::vector<double> score;
        for (int s = 0; s <= t; ++s) {
          score.push_back(torch::dot(q[t].slice(0, hd * dh, (hd + 1) * dh),
                                     k[s].slice(0, hd * dh, (hd + 1) * dh))
                              .item<double>() /
                          std::sqrt(double(dh)));
        }
        double denom = c.attn_sink ? std::exp(w.sink[hd].item<double>()) : 0.0;
        for (double s : score) denom += std::exp(s);
        for (int s = 0; s <= t; ++s) {
          y.slice(0, hd * dh, (hd + 1) * dh) +=
              std::exp(score[s]) / denom * v[s].slice(0, hd * dh, (hd + 1) * dh);
        }
      }
      x[t] = x[t] + topk(NodeLocation::kAttnResidDelta, torch::mv(w.attn_proj_w, y) + w.attn_proj_b);
    }
    for (int t = 0; t < T; ++t) {
      torch::Tensor h = topk(NodeLocation::kMlpActIn, read(t, w.ln_2, w.ln_p2));
      torch::Tensor a = torch::mv(w.fc_w, h) + w.fc_b;
      for (int64_t i = 0; i < a.size(0); ++i) {  // exact GELU
        const double z = a[i].item<double>();
        a[i] = 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0)));
      }
      a = topk(NodeLocation::kMlpPostAct, a);
      x[t] = x[t] + topk(NodeLocation::kMlpResidDelta, torch::mv(w.mlp_proj_w, a) + w.mlp_proj_b);
    }
  }
  std::vector<torch::Tensor> logits;
  for (int t = 0; t < T; ++t) {
    torch::Tensor h = RefNorm(x[t], m.Parameter("transformer.ln_f.weight"));
    logits.push_back(torch::mv(m.lm_head(), h) + m.Parameter("final_logits_bias") +
                     m.bigram()[tokens[t]]);
  }
  return torch::stack(logits);  // (T, V)
}

class ForwardVsReference : public ::testing::TestWithParam<int> {};

TEST_P(ForwardVsReference, MatchesWithin1e5) {
  const ModelConfig config = TinyConfig(/*d_pos_emb=*/GetParam());
  const Model model = RandomModel(config, /*seed=*/7);
  torch::NoGradGuard no_grad;
  torch::Tensor tokens = torch::tensor({3, 17, 17, 0, 39, 5, 22, 11, 8, 8, 1, 30, 2, 9},
                                       torch::kInt64)
                             .view({2, 7});
  torch::Tensor logits = model.Forward(tokens);  // (2, 7, V)
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 7, config.vocab_size}));
  for (int b = 0; b < 2; ++b) {
    std::vector<int64_t> row(tokens[b].data_ptr<int64_t>(), tokens[b].data_ptr<int64_t>() + 7);
    torch::Tensor ref = ReferenceLogits(model, row);
    EXPECT_LE((logits[b] - ref).abs().max().item<double>(), 1e-5) << "batch row " << b;
  }
  // ForwardAt picks the same logits at the asked positions.
  torch::Tensor at = model.ForwardAt(tokens, torch::tensor({6, 2}, torch::kInt64));
  EXPECT_LE((at[0] - logits[0][6]).abs().max().item<double>(), 1e-5);
  EXPECT_LE((at[1] - logits[1][2]).abs().max().item<double>(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Positions, ForwardVsReference, ::testing::Values(0, 6),
                         [](const auto& info) { return info.param ? "Concatenated" : "Added"; });

TEST(Model, NoSinkNoBigramNoSparsityMatchesReferenceShapes) {
  ModelConfig config = TinyConfig(0);
  config.attn_sink = false;
  config.bigram_table = false;
  config.afrac = 0.0;
  const Model model = RandomModel(config, 3);
  EXPECT_FALSE(model.bigram().defined());
  EXPECT_FALSE(model.layer(0).sink.defined());
  torch::NoGradGuard no_grad;
  torch::Tensor logits = model.Forward(torch::tensor({{1, 2, 3}}, torch::kInt64));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{1, 3, config.vocab_size}));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
}

// Queries, keys and values as the model makes them: (B, T, H, dh) transposed
// to (B, H, T, dh), so their rows are strided.
torch::Tensor HeadsOf(int64_t B, int64_t T, int64_t H, int64_t dh, at::Generator& gen) {
  return torch::randn({B, T, H, dh}, gen).transpose(1, 2);
}

// Sets whether attention uses the fused kernel for one scope.
class FusedAttentionScope {
 public:
  explicit FusedAttentionScope(bool on) : saved_(FusedAttention()) { SetFusedAttention(on); }
  ~FusedAttentionScope() { SetFusedAttention(saved_); }

 private:
  bool saved_;
};

// Torch's attention beyond MaxAttentionScores() goes in chunks of queries
// (here 4 rows x 3 heads x 64 keys x 64 queries against 4,000: chunks of 5
// queries, the last one shorter); the result equals the one computed in one
// piece.
TEST(Attention, QueryChunksMatchOnePiece) {
  FusedAttentionScope torch_kernels(false);
  auto gen = at::detail::createCPUGenerator(2);
  const torch::Tensor q = HeadsOf(4, 64, 3, 4, gen), k = HeadsOf(4, 64, 3, 4, gen),
                      v = HeadsOf(4, 64, 3, 4, gen), sink = torch::randn({3}, gen);
  const torch::Tensor causal = torch::ones({64, 64}, torch::kBool).triu(1);
  const torch::Tensor whole = internal::Attend(q, k, v, causal, sink, 0.5);
  const int64_t saved = MaxAttentionScores();
  SetMaxAttentionScores(4000);
  const torch::Tensor chunked = internal::Attend(q, k, v, causal, sink, 0.5);
  SetMaxAttentionScores(saved);
  EXPECT_LE((chunked - whole).abs().max().item<double>(), 1e-5);
}

// The fused kernel (head width 16) and its backward pass agree with torch's
// softmax and autograd to float rounding for every mask shape the model passes
// (causal, keys after the answer, a shared prefix's padding), with and without
// the sink; a sink that takes a gradient keeps torch's kernels.
TEST(Attention, FusedKernelMatchesTorch) {
  auto gen = at::detail::createCPUGenerator(3);
  const int64_t B = 3, H = 2, Tq = 6, Tk = 11, dh = 16;
  const torch::Tensor q = HeadsOf(B, Tq, H, dh, gen) * 2.0, k = HeadsOf(B, Tk, H, dh, gen),
                      v = HeadsOf(B, Tk, H, dh, gen), sink = torch::randn({H}, gen);
  const torch::Tensor causal = torch::ones({Tq, Tk}, torch::kBool).triu(Tk - Tq + 1);
  const torch::Tensor after_answer =
      (torch::arange(Tk).unsqueeze(0) > torch::tensor({2, 10, 5}).unsqueeze(1)).view({B, 1, 1, Tk});
  const torch::Tensor padded = torch::rand({B, 1, Tq, Tk}, gen) < 0.3;
  for (const torch::Tensor& masked : {causal, after_answer, padded}) {
    for (const bool with_sink : {true, false}) {
      const torch::Tensor s = with_sink ? sink : torch::Tensor();
      // The output and the gradients to q, k, v for an upstream gradient g.
      const torch::Tensor g = torch::randn({B, H, Tq, dh}, gen);
      auto run = [&](bool fused_kernel) {
        FusedAttentionScope scope(fused_kernel);
        torch::Tensor qq = q.detach().requires_grad_(), kk = k.detach().requires_grad_(),
                      vv = v.detach().requires_grad_();
        const torch::Tensor y = internal::Attend(qq, kk, vv, masked, s, 0.25);
        y.backward(g);
        return std::vector<torch::Tensor>{y.detach(), qq.grad(), kk.grad(), vv.grad()};
      };
      const std::vector<torch::Tensor> want = run(false), got = run(true);
      torch::Tensor fused;
      {
        FusedAttentionScope fused_kernel(true);
        torch::NoGradGuard no_grad;
        fused = internal::Attend(q, k, v, masked, s, 0.25);
      }
      EXPECT_TRUE(torch::equal(fused, got[0])) << "one kernel with and without gradients";
      EXPECT_GT((got[0] - want[0]).abs().max().item<double>(), 0.0) << "the fused kernel ran";
      const char* what[] = {"output", "dq", "dk", "dv"};
      for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(got[i].sizes(), want[i].sizes());
        const double diff = (got[i] - want[i]).abs().max().item<double>();
        EXPECT_LE(diff, 2e-6 * (1.0 + want[i].abs().max().item<double>()))
            << what[i] << " sink " << with_sink << " mask " << masked.sizes();
      }
    }
  }
  // A sink that takes a gradient (training) goes through torch's kernels.
  torch::Tensor trained = sink.detach().requires_grad_();
  torch::Tensor a, b;
  {
    FusedAttentionScope scope(true);
    a = internal::Attend(q, k, v, causal, trained, 0.25).detach();
  }
  {
    FusedAttentionScope scope(false);
    b = internal::Attend(q, k, v, causal, trained, 0.25).detach();
  }
  EXPECT_TRUE(torch::equal(a, b));
}

// A shared prefix's keys and values read in place (twin rows 2i and 2i + 1
// attend to prefix row i first) against the same keys copied in front of each
// row's own: outputs and gradients, the prefix's the sum of its twins', with
// the fused kernel and with torch's kernels.
TEST(Attention, SharedPrefixReadInPlace) {
  auto gen = at::detail::createCPUGenerator(4);
  const int64_t B = 4, H = 2, Tq = 3, s = 5, T = 3, dh = 16;
  const torch::Tensor q = HeadsOf(B, Tq, H, dh, gen), k = HeadsOf(B, T, H, dh, gen),
                      v = HeadsOf(B, T, H, dh, gen), pk = HeadsOf(B / 2, s, H, dh, gen),
                      pv = HeadsOf(B / 2, s, H, dh, gen), sink = torch::randn({H}, gen);
  // The prefix's padding (row 1's last two keys) and the own keys' causal mask.
  const torch::Tensor pad = torch::tensor({false, false, false, false, false, false, false,
                                           false, false, false, false, false, false, true, true,
                                           false, false, false, true, true})
                                .view({B, 1, 1, s});
  const torch::Tensor masked = torch::cat(
      {pad.expand({B, 1, Tq, s}), torch::ones({Tq, T}, torch::kBool).triu(1).expand({B, 1, Tq, T})},
      -1);
  const torch::Tensor g = torch::randn({B, H, Tq, dh}, gen);
  auto run = [&](bool fused_kernel, bool in_place) {
    FusedAttentionScope scope(fused_kernel);
    std::vector<torch::Tensor> in = {q, k, v, pk, pv};
    for (torch::Tensor& t : in) t = t.detach().requires_grad_();
    torch::Tensor y;
    if (in_place) {
      y = internal::Attend(in[0], in[1], in[2], masked, sink, 0.25, {in[3], in[4]});
    } else {
      const torch::Tensor twin = torch::tensor({0, 0, 1, 1});
      y = internal::Attend(in[0], torch::cat({in[3].index_select(0, twin), in[1]}, 2),
                           torch::cat({in[4].index_select(0, twin), in[2]}, 2), masked, sink, 0.25);
    }
    y.backward(g);
    std::vector<torch::Tensor> out = {y.detach()};
    for (const torch::Tensor& t : in) out.push_back(t.grad());
    return out;
  };
  const std::vector<torch::Tensor> want = run(false, false);
  const char* what[] = {"output", "dq", "dk", "dv", "prefix dk", "prefix dv"};
  for (const bool fused_kernel : {true, false}) {
    const std::vector<torch::Tensor> got = run(fused_kernel, true);
    const std::vector<torch::Tensor> copied = run(fused_kernel, false);
    for (int i = 0; i < 6; ++i) {
      ASSERT_TRUE(got[i].defined()) << what[i];
      EXPECT_TRUE(torch::equal(got[i], copied[i])) << what[i] << " fused " << fused_kernel;
      EXPECT_LE((got[i] - want[i]).abs().max().item<double>(),
                2e-6 * (1.0 + want[i].abs().max().item<double>()))
          << what[i] << " fused " << fused_kernel;
    }
  }
}

TEST(Model, CreateIsDeterministicAndFollowsInit) {
  const ModelConfig config = TinyConfig(0);
  absl::StatusOr<Model> a = Model::Create(config, 11), b = Model::Create(config, 11),
                        c = Model::Create(config, 12);
  ASSERT_THAT(a, testing::IsOk());
  for (size_t i = 0; i < a->parameters().size(); ++i) {
    EXPECT_TRUE(torch::equal(a->parameters()[i].tensor, b->parameters()[i].tensor));
  }
  EXPECT_FALSE(torch::equal(a->wte(), c->wte()));
  EXPECT_EQ(a->layer(0).c_attn_b.abs().sum().item<double>(), 0.0);
  EXPECT_EQ(a->layer(1).ln_2.min().item<double>(), 1.0);
  EXPECT_NEAR(a->wte().std().item<double>(), 0.02, 0.004);
  EXPECT_GE(a->bigram().min().item<double>(), 0.0);
  EXPECT_LT(a->bigram().max().item<double>(), 0.02);
}

TEST(Model, NodeCountFormula) {
  ModelConfig c;  // 4 x 128, d_mlp 512, A = 128
  EXPECT_EQ(c.TotalNodes(), 4 * (2 * 128 + 3 * 128 + 2 * 128 + 512) + 128);
  c.n_layer = 8;
  c.d_model = 2048;
  c.n_head = 128;
  c.d_head = 16;
  c.d_mlp = 8192;
  c.d_pos_emb = 32;
  EXPECT_EQ(c.TotalNodes(), 182784);  // csp_yolo2, PAPER.md §4.1
}

TEST(Model, FromTensorsNamesTheProblem) {
  const ModelConfig config = TinyConfig(0);
  const Model model = RandomModel(config, 1);
  std::vector<NamedTensor> tensors = model.parameters();
  tensors.pop_back();
  EXPECT_THAT(Model::FromTensors(config, tensors),
              testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                ::testing::HasSubstr("missing tensor 'bigram_table'")));
  tensors = model.parameters();
  tensors[0].tensor = torch::zeros({5, 5});
  EXPECT_THAT(Model::FromTensors(config, tensors),
              testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                ::testing::HasSubstr("expected (40, 16), got (5, 5)")));
  tensors = model.parameters();
  tensors.push_back({"transformer.h.9.mlp.c_fc.weight", torch::zeros({1})});
  EXPECT_THAT(Model::FromTensors(config, tensors),
              testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                ::testing::HasSubstr("unexpected tensor(s)")));
}

// The CPU kernel against topk + scatter, with and without autograd; the
// gradient reaches exactly the kept entries.
TEST(AbsTopK, MatchesTopkAndPassesGradientToKeptEntries) {
  auto gen = at::detail::createCPUGenerator(3);
  for (int64_t n : {8, 128, 512}) {
    const int64_t k = n / 4;
    torch::Tensor x = torch::randn({3, 5, n}, gen);
    torch::Tensor idx = std::get<1>(x.abs().topk(k, -1));
    torch::Tensor want = torch::zeros_like(x).scatter(-1, idx, x.gather(-1, idx));
    {
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::equal(AbsTopK(x, k), want)) << n;
    }
    torch::Tensor leaf = x.clone().requires_grad_(true);
    torch::Tensor y = AbsTopK(leaf, k);
    EXPECT_TRUE(torch::equal(y.detach(), want)) << n;
    y.sum().backward();
    EXPECT_TRUE(torch::equal(leaf.grad(), want.ne(0).to(torch::kFloat))) << n;
    EXPECT_EQ(want.ne(0).sum(-1).min().item<int64_t>(), k);
  }
  torch::Tensor small = torch::randn({2, 4}, gen);
  EXPECT_TRUE(torch::equal(AbsTopK(small, 4), small));  // k >= n keeps everything
}

// The taps' gate blend fused with AbsTopK against AbsTopK then torch's lerp,
// on a strided x and a gate at an unaligned offset: the same values and x
// gradient for gates of 0 and 1 (to rounding for others); the gate's gradient
// to rounding (its sum over rows runs in another order). n = 12 is not whole
// vectors: torch's path.
TEST(AbsTopK, GatedMatchesAbsTopKThenLerp) {
  auto gen = at::detail::createCPUGenerator(4);
  for (int64_t n : {8, 12, 128, 512}) {
    for (int64_t k : {n / 4, n}) {
      for (bool binary : {true, false}) {
        const torch::Tensor x_data = torch::randn({3, 70, 2 * n}, gen);
        const torch::Tensor gate_data = binary ? (torch::rand({n + 3}, gen) < 0.5).to(torch::kFloat)
                                               : torch::rand({n + 3}, gen);
        const torch::Tensor value = torch::randn({n}, gen), probe = torch::randn({3, 70, n}, gen);
        auto run = [&](bool fused) {
          const torch::Tensor x = x_data.clone().requires_grad_(true);
          const torch::Tensor g = gate_data.clone().requires_grad_(true);
          const torch::Tensor xs = x.narrow(-1, n, n), gs = g.narrow(0, 3, n);
          const torch::Tensor y = fused ? GatedAbsTopK(xs, k, gs, value)
                                        : torch::lerp(value.expand_as(xs), AbsTopK(xs, k), gs);
          (y * probe).sum().backward();
          return std::vector<torch::Tensor>{y.detach(), x.grad(), g.grad()};
        };
        const std::vector<torch::Tensor> got = run(true), want = run(false);
        const std::string where = absl::StrCat("n ", n, " k ", k, binary ? " 0/1 gates" : "");
        if (binary) {
          EXPECT_TRUE(torch::equal(got[0], want[0])) << where;
        } else {
          EXPECT_TRUE(torch::allclose(got[0], want[0], 1e-6, 1e-6)) << where;
        }
        EXPECT_TRUE(torch::equal(got[1], want[1])) << where;
        EXPECT_TRUE(torch::allclose(got[2], want[2], 1e-5, 1e-4)) << where;
      }
    }
  }
}

// Taps::SetBlend gives BlendTap's logits and gate gradients, fused with
// AbsTopK where the blend is a site's only intervention (every site of the
// GPT's scoring pass) and through Taps::Apply where a record tap joins it.
TEST(Taps, SetBlendMatchesBlendTap) {
  const ModelConfig config = TinyConfig(0);
  const Model model = RandomModel(config, 6);
  auto gen = at::detail::createCPUGenerator(10);
  const int n_sites = NumTapSites(config.n_layer);
  std::vector<torch::Tensor> gate_data(n_sites), values(n_sites);
  for (int s = 0; s < n_sites; ++s) {
    const int width = config.LocationWidth(TapSiteAt(s, config.n_layer).location);
    gate_data[s] = (torch::rand({width}, gen) < 0.6).to(torch::kFloat);
    values[s] = torch::randn({width}, gen);
  }
  const torch::Tensor tokens = torch::tensor({{3, 9, 27, 1, 14, 2}, {5, 5, 30, 11, 7, 0}});
  const torch::Tensor answer = torch::tensor({5, 3});
  const torch::Tensor probe = torch::randn({2, config.vocab_size}, gen);
  enum Mode { kBlendTap, kSetBlend, kSetBlendAndRecord };
  auto run = [&](Mode mode) {
    std::vector<torch::Tensor> gates(n_sites), seen(n_sites);
    for (int s = 0; s < n_sites; ++s) gates[s] = gate_data[s].clone().requires_grad_(true);
    Taps taps(config.n_layer);
    if (mode == kBlendTap) taps.Add(BlendTap(&gates, &values));
    if (mode != kBlendTap) taps.SetBlend(&gates, &values);
    if (mode == kSetBlendAndRecord) taps.Add(RecordTap(&seen));
    const torch::Tensor logits = model.AnswerLogits(tokens, answer, &taps);
    (logits * probe).sum().backward();
    std::vector<torch::Tensor> out = {logits.detach()};
    for (const torch::Tensor& g : gates) out.push_back(g.grad());
    return out;
  };
  const std::vector<torch::Tensor> want = run(kBlendTap);
  for (Mode mode : {kSetBlend, kSetBlendAndRecord}) {
    const std::vector<torch::Tensor> got = run(mode);
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_TRUE(got[i].defined() && want[i].defined()) << mode << " " << i;
      EXPECT_TRUE(torch::allclose(got[i], want[i], 1e-4, 1e-5)) << "mode " << mode << ", "
          << (i == 0 ? "logits" : absl::StrCat("gate gradient of site ", i - 1));
    }
  }
}

// RMSNorm's one-pass backward (float rows of whole vectors, frozen weight)
// against autograd through torch's ops in double; the forward pass is torch's
// either way. Width 12 takes torch's ops under autograd too.
TEST(RmsNorm, FusedGradientMatchesAutograd) {
  auto gen = at::detail::createCPUGenerator(5);
  for (int64_t n : {8, 12, 128}) {
    const torch::Tensor x = torch::randn({3, 70, n}, gen) * 3.0;
    const torch::Tensor w = torch::randn({n}, gen), probe = torch::randn({3, 70, n}, gen);
    const torch::Tensor xf = x.clone().requires_grad_(true);
    const torch::Tensor y = RmsNorm(xf, w);
    (y * probe).sum().backward();
    const torch::Tensor xd = x.to(torch::kFloat64).requires_grad_(true);
    const torch::Tensor yd = RmsNorm(xd, w.to(torch::kFloat64));
    (yd * probe.to(torch::kFloat64)).sum().backward();
    {
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::equal(y.detach(), RmsNorm(x, w))) << n;
    }
    EXPECT_TRUE(torch::allclose(y.detach().to(torch::kFloat64), yd.detach(), 1e-5, 1e-5)) << n;
    EXPECT_TRUE(torch::allclose(xf.grad().to(torch::kFloat64), xd.grad(), 1e-4, 1e-5)) << n;
  }
}

TEST(Taps, RecordSeesEverySiteWithItsWidth) {
  const ModelConfig config = TinyConfig(6);
  const Model model = RandomModel(config, 2);
  Taps taps(config.n_layer);
  std::vector<torch::Tensor> acts(taps.num_sites());
  taps.Add(RecordTap(&acts));
  torch::NoGradGuard no_grad;
  torch::Tensor plain = model.Forward(torch::tensor({{4, 5, 6}}, torch::kInt64));
  torch::Tensor tapped = model.Forward(torch::tensor({{4, 5, 6}}, torch::kInt64), &taps);
  EXPECT_TRUE(torch::equal(plain, tapped));
  for (int site = 0; site < taps.num_sites(); ++site) {
    const TapSite s = TapSiteAt(site, config.n_layer);
    ASSERT_TRUE(acts[site].defined()) << site;
    EXPECT_EQ(acts[site].size(-1), config.LocationWidth(s.location)) << LocationName(s.location);
    if (config.HasActivationSparsity(s.location)) {  // taps see post-AbsTopK values
      EXPECT_LE(acts[site][0][1].ne(0).sum().item<int64_t>(), config.ActivationTopK(s.location));
    }
  }
}

TEST(Taps, BlendWithGateZeroReplacesByMean) {
  const ModelConfig config = TinyConfig(0);
  const Model model = RandomModel(config, 4);
  const int site = TapSiteIndex(1, NodeLocation::kMlpPostAct);
  std::vector<torch::Tensor> gates(NumTapSites(config.n_layer)), means(gates.size()),
      seen(gates.size());
  gates[site] = torch::ones({config.d_mlp});
  gates[site][5] = 0.0;
  means[site] = torch::full({config.d_mlp}, 0.25);
  Taps taps(config.n_layer);
  taps.Add(BlendTap(&gates, &means));
  taps.Add(RecordTap(&seen));
  torch::NoGradGuard no_grad;
  model.Forward(torch::tensor({{1, 2, 3, 4}}, torch::kInt64), &taps);
  EXPECT_TRUE(torch::allclose(seen[site].select(-1, 5), torch::full({1, 4}, 0.25)));
}

TEST(Taps, GateGradientMatchesFiniteDifferences) {
  const ModelConfig config = TinyConfig(0);
  Model model = RandomModel(config, 5);
  model.To(torch::kCPU, torch::kFloat64);
  torch::Tensor tokens = torch::tensor({{3, 9, 27, 1, 14}}, torch::kInt64);
  auto gen = at::detail::createCPUGenerator(9);
  torch::Tensor probe = torch::randn({1, 5, config.vocab_size}, gen, torch::kFloat64);
  for (NodeLocation loc : {NodeLocation::kAttnV, NodeLocation::kMlpPostAct,
                           NodeLocation::kAttnActIn, NodeLocation::kFinalResid}) {
    const int layer = loc == NodeLocation::kFinalResid ? config.n_layer : 0;
    const int site = TapSiteIndex(layer, loc);
    const int width = config.LocationWidth(loc);
    std::vector<torch::Tensor> gates(NumTapSites(config.n_layer)), means(gates.size());
    means[site] = torch::randn({width}, gen, torch::kFloat64);
    auto loss_at = [&](const torch::Tensor& g) {
      gates[site] = g;
      Taps taps(config.n_layer);
      taps.Add(BlendTap(&gates, &means));
      return (model.Forward(tokens, &taps) * probe).sum();
    };
    torch::Tensor g = torch::full({width}, 0.7, torch::kFloat64).requires_grad_(true);
    loss_at(g).backward();
    torch::Tensor grad = g.grad().clone();
    torch::NoGradGuard no_grad;
    for (int i : {0, width / 2, width - 1}) {
      const double eps = 1e-6;
      torch::Tensor up = torch::full({width}, 0.7, torch::kFloat64), down = up.clone();
      up[i] += eps;
      down[i] -= eps;
      const double fd = (loss_at(up).item<double>() - loss_at(down).item<double>()) / (2 * eps);
      EXPECT_NEAR(grad[i].item<double>(), fd, 1e-5 * std::max(1.0, std::abs(fd)))
          << LocationName(loc) << " channel " << i;
    }
  }
}

TEST(ParseDevice, RejectsUnknownAndUnavailable) {
  EXPECT_THAT(ParseDevice("cpu"), testing::IsOk());
  EXPECT_THAT(ParseDevice("tpu"), testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                                    ::testing::HasSubstr("unknown device")));
  if (!torch::cuda::is_available()) {
    EXPECT_THAT(ParseDevice("cuda"), testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                                       ::testing::HasSubstr("not available")));
  }
}

}  // namespace
}  // namespace circuit
