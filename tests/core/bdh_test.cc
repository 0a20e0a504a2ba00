// BDH-GPU: the forward pass against a loop-based reference written here from
// the definition (docs/bdh.md), the sharing of one set of weights by every
// layer, and BDH checkpoints with their arch checks.
#include "circuit/core/bdh.h"

#include <hdf5.h>

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "circuit/core/arch.h"
#include "circuit/core/bdh_checkpoint.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "small_tokenizer.h"

namespace circuit {
namespace {

using ::testing::HasSubstr;
using testing::IsOk;
using ::testing::Not;
using testing::SmallTokenizer;
using testing::StatusIs;

BdhConfig TinyConfig() {
  BdhConfig c;
  c.n_layer = 3;
  c.d_model = 8;
  c.n_head = 2;
  c.n_neuron = 6;
  c.vocab_size = 11;
  c.n_ctx = 16;
  return c;
}

// Weights large enough that ReLU cuts and every term matters.
BdhModel RandomModel(const BdhConfig& config, uint64_t seed) {
  absl::StatusOr<BdhModel> model = BdhModel::Create(config, seed);
  CIRCUIT_CHECK(model.ok());
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed + 1);
  for (NamedTensor& p : model->mutable_parameters()) p.tensor.normal_(0.0, 0.5, gen);
  return std::move(*model);
}

// ---- The reference: plain loops in double, one position, head and neuron at a time.

using Vec = std::vector<double>;
using Mat = std::vector<Vec>;  // [position][channel]

Vec RefLayerNorm(const Vec& v) {
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= v.size();
  for (double x : v) var += (x - mean) * (x - mean);
  var /= v.size();
  Vec out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = (v[i] - mean) / std::sqrt(var + 1e-5);
  return out;
}

// The neuron vector a (N) of position t after rotating each pair (2i, 2i + 1)
// by the angle 2 pi * frac(t * f_i), f_i = 65536^(-2 floor(i/2) / N) / (2 pi).
Vec RefRotate(const Vec& a, int t) {
  const int n = static_cast<int>(a.size());
  Vec out(n);
  for (int i = 0; i < n; i += 2) {
    const double f = std::pow(65536.0, -static_cast<double>(i) / n) / (2 * M_PI);
    const double turns = t * f - std::floor(t * f);
    const double c = std::cos(2 * M_PI * turns), s = std::sin(2 * M_PI * turns);
    out[i] = a[i] * c - a[i + 1] * s;
    out[i + 1] = a[i + 1] * c + a[i] * s;
  }
  return out;
}

Mat RefLayer(const BdhModel& m, const Mat& x) {
  const BdhConfig& c = m.config();
  const int T = static_cast<int>(x.size()), D = c.d_model, H = c.n_head, N = c.n_neuron;
  const torch::Tensor enc_t = m.encoder().to(torch::kFloat64);
  const torch::Tensor enc_v_t = m.encoder_v().to(torch::kFloat64);
  const torch::Tensor dec_t = m.decoder().to(torch::kFloat64);
  auto enc = enc_t.accessor<double, 3>();
  auto enc_v = enc_v_t.accessor<double, 3>();
  auto dec = dec_t.accessor<double, 2>();
  Mat out(T);
  for (int t = 0; t < T; ++t) {
    Vec decoded(D, 0.0);
    for (int h = 0; h < H; ++h) {
      // x-neurons of every position up to t for this head.
      Mat a(t + 1, Vec(N, 0.0));
      for (int s = 0; s <= t; ++s) {
        for (int n = 0; n < N; ++n) {
          double z = 0;
          for (int d = 0; d < D; ++d) z += x[s][d] * enc[h][d][n];
          a[s][n] = std::max(0.0, z);
        }
      }
      // Attention without softmax over strictly earlier positions, values = x.
      const Vec q = RefRotate(a[t], t);
      Vec read(D, 0.0);
      for (int s = 0; s < t; ++s) {
        const Vec k = RefRotate(a[s], s);
        double score = 0;
        for (int n = 0; n < N; ++n) score += q[n] * k[n];
        for (int d = 0; d < D; ++d) read[d] += score * x[s][d];
      }
      read = RefLayerNorm(read);
      for (int n = 0; n < N; ++n) {
        double z = 0;
        for (int d = 0; d < D; ++d) z += read[d] * enc_v[h][d][n];
        const double gated = a[t][n] * std::max(0.0, z);
        for (int d = 0; d < D; ++d) decoded[d] += gated * dec[h * N + n][d];
      }
    }
    const Vec y = RefLayerNorm(decoded);
    Vec sum(D);
    for (int d = 0; d < D; ++d) sum[d] = x[t][d] + y[d];
    out[t] = RefLayerNorm(sum);
  }
  return out;
}

torch::Tensor ReferenceLogits(const BdhModel& m, const std::vector<int64_t>& tokens) {
  const BdhConfig& c = m.config();
  const torch::Tensor embed_t = m.embed().to(torch::kFloat64);
  const torch::Tensor head_t = m.lm_head().to(torch::kFloat64);
  auto embed = embed_t.accessor<double, 2>();
  auto head = head_t.accessor<double, 2>();
  Mat x;
  for (int64_t tok : tokens) {
    Vec e(c.d_model);
    for (int d = 0; d < c.d_model; ++d) e[d] = embed[tok][d];
    x.push_back(RefLayerNorm(e));
  }
  for (int l = 0; l < c.n_layer; ++l) x = RefLayer(m, x);
  torch::Tensor logits =
      torch::zeros({static_cast<int64_t>(tokens.size()), c.vocab_size}, torch::kFloat64);
  for (size_t t = 0; t < tokens.size(); ++t) {
    for (int v = 0; v < c.vocab_size; ++v) {
      double z = 0;
      for (int d = 0; d < c.d_model; ++d) z += x[t][d] * head[d][v];
      logits[t][v] = z;
    }
  }
  return logits;  // (T, V)
}

TEST(BdhModel, ForwardMatchesTheLoopReferenceWithin1e5) {
  const BdhModel model = RandomModel(TinyConfig(), /*seed=*/7);
  torch::NoGradGuard no_grad;
  torch::Tensor tokens =
      torch::tensor({3, 7, 7, 0, 10, 5, 2, 1, 8, 8, 1, 4, 2, 9}, torch::kInt64).view({2, 7});
  torch::Tensor logits = model.Forward(tokens);  // (2, 7, V)
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 7, 11}));
  for (int b = 0; b < 2; ++b) {
    std::vector<int64_t> row(tokens[b].data_ptr<int64_t>(), tokens[b].data_ptr<int64_t>() + 7);
    torch::Tensor ref = ReferenceLogits(model, row);
    const double error = (logits[b].to(torch::kFloat64) - ref).abs().max().item<double>();
    EXPECT_LE(error, 1e-5) << "batch row " << b;
    RecordProperty("max_abs_error_row" + std::to_string(b), absl::StrCat(error));
    EXPECT_GT(ref.abs().max().item<double>(), 0.1);  // not a comparison of zeros
  }
  // AnswerLogits picks the same logits at the asked positions.
  torch::Tensor at = model.AnswerLogits(tokens, torch::tensor({6, 2}, torch::kInt64));
  EXPECT_LE((at[0] - logits[0][6]).abs().max().item<double>(), 1e-6);
  EXPECT_LE((at[1] - logits[1][2]).abs().max().item<double>(), 1e-6);
}

TEST(BdhModel, RopeAtPositionZeroIsTheIdentityAndKeepsPairNorms) {
  torch::Tensor v = torch::randn({1, 1, 5, 6}, torch::kFloat32);
  torch::Tensor r = BdhRope(v);
  EXPECT_TRUE(torch::allclose(r.select(2, 0), v.select(2, 0)));
  auto pair_norms = [](const torch::Tensor& x) {
    return x.view({5, 3, 2}).pow(2).sum(-1);  // (T, N/2)
  };
  EXPECT_TRUE(torch::allclose(pair_norms(r), pair_norms(v), 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(r.select(2, 3), v.select(2, 3)));
}

TEST(BdhModel, OneSetOfWeightsServesEveryLayer) {
  BdhConfig shallow = TinyConfig(), deep = TinyConfig();
  shallow.n_layer = 1;
  deep.n_layer = 6;
  const BdhModel a = RandomModel(shallow, 3), b = RandomModel(deep, 3);
  // No per-layer copies: five tensors and the same count at any depth.
  EXPECT_EQ(a.parameters().size(), 5u);
  EXPECT_EQ(b.parameters().size(), 5u);
  EXPECT_EQ(a.NumParameters(), b.NumParameters());
  EXPECT_EQ(b.NumParameters(), deep.ParameterCount());
  for (const NamedTensor& p : b.parameters()) {
    EXPECT_TRUE(torch::equal(p.tensor, a.Parameter(p.name))) << p.name;  // same seed, same draw
  }

  // The forward pass is the one Layer applied n_layer times.
  torch::NoGradGuard no_grad;
  torch::Tensor tokens = torch::tensor({1, 4, 9, 2, 2, 7}, torch::kInt64).view({1, 6});
  std::vector<torch::Tensor> inputs;  // the input of each layer, (1, T, D)
  torch::Tensor x = b.Embed(tokens);
  for (int l = 0; l < deep.n_layer; ++l) {
    inputs.push_back(x);
    x = b.Layer(x);
  }
  EXPECT_TRUE(torch::allclose(b.Logits(x), b.Forward(tokens)));

  // Changing one shared tensor changes what every layer computes on its input.
  // (A change of scale would not: the LayerNorms make each of the three
  // matrices scale-free, up to their eps.)
  auto gen = at::detail::createCPUGenerator(17);
  for (const char* name : {"encoder", "encoder_v", "decoder"}) {
    BdhModel changed = RandomModel(deep, 3);
    torch::Tensor w = changed.Parameter(name);
    w.add_(torch::randn(w.sizes(), gen) * 0.2);
    for (int l = 0; l < deep.n_layer; ++l) {
      const double diff =
          (changed.Layer(inputs[l]) - b.Layer(inputs[l])).abs().max().item<double>();
      EXPECT_GT(diff, 1e-4) << name << " at layer " << l;
    }
  }
}

// Taps: the six sites (resid_in, x_neuron, attn_read, y_neuron, gate per layer,
// then final_resid) see the activations of the definition, an identity tap
// changes nothing, and the staged, answer-only pass equals the full one.
TEST(BdhModel, TapsSeeEverySiteAndTheStagedPassMatches) {
  const BdhConfig c = TinyConfig();
  const BdhModel model = RandomModel(c, /*seed=*/4);
  torch::NoGradGuard no_grad;
  const torch::Tensor tokens =
      torch::tensor({3, 7, 7, 0, 10, 5, 2, 1, 8, 8, 1, 4, 2, 9}, torch::kInt64).view({2, 7});
  const SiteLayout layout = model.layout();
  ASSERT_EQ(layout.num_sites(), 3 * 5 + 1);
  EXPECT_EQ(layout.width(layout.Site(1, NodeLocation::kBdhXNeuron)), 2 * 6);
  EXPECT_EQ(layout.width(layout.Site(1, NodeLocation::kBdhAttnRead)), 2 * 8);
  EXPECT_EQ(layout.Site(0, NodeLocation::kAttnQ), -1);  // a GPT location

  Taps taps(layout);
  std::vector<torch::Tensor> acts(taps.num_sites());
  taps.Add(RecordTap(&acts));
  const torch::Tensor logits = model.Forward(tokens, &taps);
  EXPECT_TRUE(torch::equal(logits, model.Forward(tokens)));
  for (int s = 0; s < layout.num_sites(); ++s) {
    ASSERT_TRUE(acts[s].defined()) << s;
    EXPECT_EQ(acts[s].sizes(), (std::vector<int64_t>{2, 7, layout.width(s)})) << s;
  }
  // The x-neurons of layer 0 are ReLU(LN(embedding) E_h), head h at channels h*N.. .
  const torch::Tensor x0 = model.Embed(tokens);  // (2, 7, 8)
  for (int h = 0; h < 2; ++h) {
    const torch::Tensor want = torch::relu(x0.matmul(model.encoder()[h]));  // (2, 7, 6)
    EXPECT_TRUE(torch::allclose(acts[layout.Site(0, NodeLocation::kBdhXNeuron)].narrow(2, 6 * h, 6),
                                want, 1e-5, 1e-6));
  }
  // The gate is x-neurons times y-neurons.
  EXPECT_TRUE(torch::allclose(acts[layout.Site(2, NodeLocation::kBdhGate)],
                              acts[layout.Site(2, NodeLocation::kBdhXNeuron)] *
                                  acts[layout.Site(2, NodeLocation::kBdhYNeuron)]));

  const torch::Tensor positions = torch::tensor({6, 2}, torch::kInt64);
  const torch::Tensor at = model.ForwardAt(tokens, positions, &taps);
  const torch::Tensor staged = model.HeadAt(
      model.Layers(model.Layers(model.Embed(tokens), 0, 1, &taps, positions), 1, 3, &taps,
                   positions),
      tokens, positions, &taps);
  EXPECT_LE((staged - at).abs().max().item<double>(), 1e-5);
  EXPECT_LE((model.AnswerLogits(tokens, positions) - at).abs().max().item<double>(), 1e-5);
}

// A node is one channel: ablating x-neuron h*N+n in every layer by a tap is
// zeroing column n of encoder head h; ablating gate channel h*N+n is zeroing
// decoder row h*N+n (the channel order the taps use is the weights' order).
TEST(BdhModel, ZeroingATappedChannelIsZeroingItsWeights) {
  const BdhConfig c = TinyConfig();
  const BdhModel model = RandomModel(c, /*seed=*/9);
  torch::NoGradGuard no_grad;
  const torch::Tensor tokens = torch::tensor({1, 4, 9, 2, 2, 7, 3}, torch::kInt64).view({1, 7});
  const int h = 1, n = 4, channel = h * c.n_neuron + n;
  auto zero_channel = [&](NodeLocation loc) {
    Taps taps(model.layout());
    for (int l = 0; l < c.n_layer; ++l) {
      taps.AddAt(l, loc, [channel](const TapSite&, const torch::Tensor& x) {
        torch::Tensor y = x.clone();
        y.select(-1, channel).zero_();
        return y;
      });
    }
    return model.Forward(tokens, &taps);
  };
  BdhModel no_encoder = RandomModel(c, 9);
  no_encoder.Parameter("encoder")[h].select(1, n).zero_();
  EXPECT_LE((zero_channel(NodeLocation::kBdhXNeuron) - no_encoder.Forward(tokens)).abs().max()
                .item<double>(),
            1e-5);
  BdhModel no_decoder = RandomModel(c, 9);
  no_decoder.Parameter("decoder")[channel].zero_();
  EXPECT_LE((zero_channel(NodeLocation::kBdhGate) - no_decoder.Forward(tokens)).abs().max()
                .item<double>(),
            1e-5);
  EXPECT_GT((zero_channel(NodeLocation::kBdhGate) - model.Forward(tokens)).abs().max()
                .item<double>(),
            1e-4);  // the channel mattered
}

TEST(BdhModel, GradientsReachEverySharedTensor) {
  BdhModel model = RandomModel(TinyConfig(), 5);
  for (NamedTensor& p : model.mutable_parameters()) p.tensor.requires_grad_(true);
  torch::Tensor tokens = torch::tensor({1, 4, 9, 2, 2, 7, 3}, torch::kInt64).view({1, 7});
  model.Loss(tokens).backward();
  for (const NamedTensor& p : model.parameters()) {
    ASSERT_TRUE(p.tensor.grad().defined()) << p.name;
    EXPECT_GT(p.tensor.grad().abs().sum().item<double>(), 0.0) << p.name;
  }
}

TEST(BdhModel, RejectsBadConfigsAndTensors) {
  BdhConfig c = TinyConfig();
  c.n_neuron = 7;
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("n_neuron")));
  c = TinyConfig();
  c.dropout = 1.0;
  EXPECT_THAT(c.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dropout")));
  std::vector<NamedTensor> tensors = RandomModel(TinyConfig(), 1).parameters();
  tensors[0].tensor = torch::zeros({3, 3});
  EXPECT_THAT(BdhModel::FromTensors(TinyConfig(), tensors),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tensor 'decoder'")));
}

// The file's arch, or its error message.
std::string ArchOf(const std::string& path) {
  absl::StatusOr<std::string> arch = ReadModelArch(path);
  return arch.ok() ? *arch : std::string(arch.status().message());
}

TEST(BdhCheckpoint, RoundTripsAndRecordsTheArch) {
  testing::TempDir dir;
  BdhConfig config = TinyConfig();
  config.vocab_size = 300;
  const BdhModel model = RandomModel(config, 2);
  TrainingInfo training;
  training.steps = 4;
  training.command = "test";
  const std::string path = dir.File("bdh.h5");
  ASSERT_THAT(SaveBdhModel(path, model, SmallTokenizer(), training), IsOk());
  EXPECT_EQ(ArchOf(path), "bdh");

  absl::StatusOr<BdhModelFile> file = LoadBdhModel(path);
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ(file->model.config().n_neuron, config.n_neuron);
  EXPECT_EQ(file->model.config().n_layer, config.n_layer);
  EXPECT_EQ(file->training.steps, 4);
  for (const NamedTensor& p : model.parameters()) {
    EXPECT_TRUE(torch::equal(p.tensor, file->model.Parameter(p.name))) << p.name;
  }
  ASSERT_THAT(SaveBdhModel(dir.File("again.h5"), file->model, file->tokenizer, file->training),
              IsOk());
  absl::StatusOr<BdhModelFile> again = LoadBdhModel(dir.File("again.h5"));
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->digest, file->digest);

  // The GPT loaders refuse it in one line naming the arch, and the reverse.
  EXPECT_THAT(LoadModel(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("a BDH model (arch 'bdh'); this needs a GPT "
                                                  "model (arch 'gpt')")));
  EXPECT_THAT(LoadModelConfig(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("arch 'bdh'")));
  ModelConfig gpt;
  gpt.n_layer = 1;
  gpt.d_model = 8;
  gpt.n_head = 2;
  gpt.d_head = 4;
  gpt.d_mlp = 16;
  gpt.vocab_size = 300;
  gpt.n_ctx = 8;
  absl::StatusOr<Model> gpt_model = Model::Create(gpt, 1);
  ASSERT_THAT(gpt_model, IsOk());
  const std::string gpt_path = dir.File("gpt.h5");
  ASSERT_THAT(SaveModel(gpt_path, *gpt_model, SmallTokenizer(), TrainingInfo()), IsOk());
  EXPECT_EQ(ArchOf(gpt_path), "gpt");
  EXPECT_THAT(LoadBdhModel(gpt_path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("a GPT model (arch 'gpt'); this needs a BDH model (arch 'bdh')")));

  // A GPT file from before the attribute (no `arch`) reads as today.
  hid_t f = H5Fopen(gpt_path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  ASSERT_GE(H5Adelete(f, "arch"), 0);
  H5Fclose(f);
  EXPECT_EQ(ArchOf(gpt_path), "gpt");
  EXPECT_THAT(LoadModel(gpt_path), IsOk());
  EXPECT_THAT(LoadBdhModel(gpt_path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("arch 'gpt'")));
}

}  // namespace
}  // namespace circuit
