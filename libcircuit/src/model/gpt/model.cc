// The forward pass follows PAPER.md §1.2 op for op; every node location passes
// through Site(), where taps may record or replace the activation.
#include "circuit/core/model.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "circuit/core/arch.h"
#include "circuit/core/status.h"
#include "model/gpt/attend.h"
#include "model/gpt/sparse_linear.h"
#include "model/named_tensors.h"

namespace circuit {
namespace {

std::string LayerKey(int layer, const char* rest) {
  return absl::StrCat("transformer.h.", layer, ".", rest);
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

}  // namespace

TapSite TapSiteAt(int site, int n_layer) {
  if (site == n_layer * kNumLayerLocations) {
    return TapSite{n_layer, NodeLocation::kFinalResid, site};
  }
  return TapSite{site / kNumLayerLocations,
                 static_cast<NodeLocation>(site % kNumLayerLocations), site};
}

absl::StatusOr<torch::Device> ParseDevice(const std::string& name) {
  try {
    torch::Device device(name);
    if (device.is_cuda() && !torch::cuda::is_available()) {
      return absl::InvalidArgumentError(
          absl::StrCat("device '", name, "': CUDA is not available: ",
                       !at::hasCUDA()
                           ? "this circuit was built against a CPU-only libtorch (Debian's is); "
                             "rebuild with -DTorch_DIR=<a CUDA build of libtorch 1.13>/share/cmake/Torch "
                             "(docs/performance.md, \"GPUs\")"
                           : "no GPU is visible to this process"));
    }
    if (device.is_cuda() && device.has_index() &&
        device.index() >= static_cast<int>(torch::cuda::device_count())) {
      return absl::InvalidArgumentError(absl::StrCat("device '", name, "': only ",
                                                     torch::cuda::device_count(), " GPUs"));
    }
    return device;
  } catch (const c10::Error&) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown device '", name, "' (use cpu, cuda or cuda:N)"));
  }
}

std::vector<std::pair<std::string, std::vector<int64_t>>> Model::ParameterShapes(
    const ModelConfig& c) {
  const int64_t V = c.vocab_size, D = c.d_model, A = c.attn_width(), M = c.d_mlp,
                I = c.d_in(), P = c.d_pos_emb;
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"transformer.wte.weight", {V, D}},
      {"transformer.wpe.weight", {c.n_ctx, P > 0 ? P : D}},
  };
  for (int l = 0; l < c.n_layer; ++l) {
    shapes.push_back({LayerKey(l, "ln_1.weight"), {D}});
    shapes.push_back({LayerKey(l, "attn.c_attn.weight"), {3 * A, I}});
    shapes.push_back({LayerKey(l, "attn.c_attn.bias"), {3 * A}});
    shapes.push_back({LayerKey(l, "attn.c_proj.weight"), {D, A}});
    shapes.push_back({LayerKey(l, "attn.c_proj.bias"), {D}});
    if (c.attn_sink) shapes.push_back({LayerKey(l, "attn.attn_imp.sink_logit"), {c.n_head}});
    shapes.push_back({LayerKey(l, "ln_2.weight"), {D}});
    shapes.push_back({LayerKey(l, "mlp.c_fc.weight"), {M, I}});
    shapes.push_back({LayerKey(l, "mlp.c_fc.bias"), {M}});
    shapes.push_back({LayerKey(l, "mlp.c_proj.weight"), {D, M}});
    shapes.push_back({LayerKey(l, "mlp.c_proj.bias"), {D}});
    if (P > 0) {
      shapes.push_back({LayerKey(l, "ln_p1.weight"), {P}});
      shapes.push_back({LayerKey(l, "ln_p2.weight"), {P}});
    }
  }
  shapes.push_back({"transformer.ln_f.weight", {D}});
  shapes.push_back({"lm_head.weight", {V, D}});
  shapes.push_back({"final_logits_bias", {V}});
  if (c.bigram_table) shapes.push_back({"bigram_table", {V, V}});
  return shapes;
}

absl::StatusOr<Model> Model::Create(const ModelConfig& config, uint64_t seed,
                                    torch::Device device) {
  CIRCUIT_RETURN_IF_ERROR(config.Validate());
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  const double kStd = 0.02;
  const double proj_std = kStd / std::sqrt(2.0 * config.n_layer);
  std::vector<NamedTensor> params;
  for (const auto& [name, shape] : ParameterShapes(config)) {
    torch::Tensor t = torch::zeros(shape, torch::kFloat32);
    auto ends_with = [&name = name](const std::string& suffix) {
      return name.size() >= suffix.size() &&
             name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with("c_proj.weight")) {
      t.normal_(0.0, proj_std, gen);
    } else if (ends_with("c_attn.weight") || ends_with("c_fc.weight") ||
               name == "transformer.wte.weight" || name == "lm_head.weight") {
      t.normal_(0.0, kStd, gen);
    } else if (ends_with("ln_1.weight") || ends_with("ln_2.weight") ||
               ends_with("ln_p1.weight") || ends_with("ln_p2.weight") ||
               name == "transformer.ln_f.weight") {
      t.fill_(1.0);
    } else if (name == "bigram_table") {
      t.uniform_(0.0, 0.02, gen);
    }
    // Biases, sink logits, wpe and final_logits_bias start at zero (§1.6).
    params.push_back({name, t});
  }
  Model model(config, std::move(params), torch::kCPU);
  if (device != torch::kCPU) model.To(device);
  return model;
}

absl::StatusOr<std::vector<NamedTensor>> internal::TensorsInOrder(
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected,
    std::vector<NamedTensor> given, const std::string& what) {
  std::map<std::string, torch::Tensor> by_name;
  for (NamedTensor& t : given) {
    if (!by_name.emplace(t.name, t.tensor).second) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "' given twice"));
    }
  }
  std::vector<NamedTensor> params;
  for (const auto& [name, shape] : expected) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("missing tensor '", name, "', expected shape ", ShapeText(shape)));
    }
    const std::vector<int64_t> got = it->second.sizes().vec();
    if (got != shape) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': expected ",
                                                     ShapeText(shape), ", got ", ShapeText(got)));
    }
    params.push_back({name, it->second.detach().to(torch::kFloat32).contiguous().clone()});
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    std::vector<std::string> extra;
    for (const auto& [name, t] : by_name) extra.push_back(name);
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected tensor(s) for ", what, ": ", absl::StrJoin(extra, ", ")));
  }
  return params;
}

absl::StatusOr<Model> Model::FromTensors(const ModelConfig& config,
                                         std::vector<NamedTensor> tensors, torch::Device device) {
  CIRCUIT_RETURN_IF_ERROR(config.Validate());
  CIRCUIT_ASSIGN_OR_RETURN(
      std::vector<NamedTensor> params,
      internal::TensorsInOrder(ParameterShapes(config), std::move(tensors), "this config"));
  Model model(config, std::move(params), torch::kCPU);
  if (device != torch::kCPU) model.To(device);
  return model;
}

Model::Model(ModelConfig config, std::vector<NamedTensor> params, torch::Device device)
    : config_(std::move(config)), device_(device), params_(std::move(params)) {
  BindViews();
}

void Model::BindViews() {
  layers_.assign(config_.n_layer, LayerWeights{});
  for (const NamedTensor& p : params_) {
    const std::string& n = p.name;
    if (n == "transformer.wte.weight") wte_ = p.tensor;
    else if (n == "transformer.wpe.weight") wpe_ = p.tensor;
    else if (n == "transformer.ln_f.weight") ln_f_ = p.tensor;
    else if (n == "lm_head.weight") lm_head_ = p.tensor;
    else if (n == "final_logits_bias") final_logits_bias_ = p.tensor;
    else if (n == "bigram_table") bigram_ = p.tensor;
  }
  for (int l = 0; l < config_.n_layer; ++l) {
    LayerWeights& w = layers_[l];
    w.ln_1 = Parameter(LayerKey(l, "ln_1.weight"));
    w.ln_p1 = Parameter(LayerKey(l, "ln_p1.weight"));
    w.ln_p2 = Parameter(LayerKey(l, "ln_p2.weight"));
    w.c_attn_w = Parameter(LayerKey(l, "attn.c_attn.weight"));
    w.c_attn_b = Parameter(LayerKey(l, "attn.c_attn.bias"));
    w.attn_proj_w = Parameter(LayerKey(l, "attn.c_proj.weight"));
    w.attn_proj_b = Parameter(LayerKey(l, "attn.c_proj.bias"));
    w.sink = Parameter(LayerKey(l, "attn.attn_imp.sink_logit"));
    w.ln_2 = Parameter(LayerKey(l, "ln_2.weight"));
    w.fc_w = Parameter(LayerKey(l, "mlp.c_fc.weight"));
    w.fc_b = Parameter(LayerKey(l, "mlp.c_fc.bias"));
    w.mlp_proj_w = Parameter(LayerKey(l, "mlp.c_proj.weight"));
    w.mlp_proj_b = Parameter(LayerKey(l, "mlp.c_proj.bias"));
  }
  auto sparse = std::make_shared<internal::SparseWeights>();
  sparse->layers.resize(layers_.size());
  for (size_t l = 0; l < layers_.size(); ++l) {
    const std::array<torch::Tensor, internal::kLayerProducts> m = ProductWeights(layers_[l]);
    for (int i = 0; i < internal::kLayerProducts; ++i) {
      sparse->layers[l][i] = internal::SparseLinear::Of(m[i]);
    }
  }
  sparse->lm_head = internal::SparseLinear::Of(lm_head_);
  sparse_ = std::move(sparse);
}

std::string Model::arch() const { return kArchGpt; }

absl::StatusOr<std::unique_ptr<TapModel>> Model::Reinitialized(uint64_t seed) const {
  CIRCUIT_ASSIGN_OR_RETURN(Model fresh, Create(config_, seed, device_));
  return std::unique_ptr<TapModel>(std::make_unique<Model>(std::move(fresh)));
}

torch::Tensor Model::Parameter(const std::string& name) const {
  for (const NamedTensor& p : params_) {
    if (p.name == name) return p.tensor;
  }
  return torch::Tensor();
}

int64_t Model::NumParameters() const {
  int64_t n = 0;
  for (const NamedTensor& p : params_) {
    if (p.name != "final_logits_bias") n += p.tensor.numel();
  }
  return n;
}

static_assert(internal::kLayerProducts == 6, "Model::ProductWeights in model.h");

std::array<torch::Tensor, internal::kLayerProducts> Model::ProductWeights(
    const LayerWeights& w) const {
  const int64_t A = config_.attn_width();
  return {w.c_attn_w,        w.c_attn_w.narrow(0, 0, A), w.c_attn_w.narrow(0, A, 2 * A),
          w.attn_proj_w,     w.fc_w,                     w.mlp_proj_w};
}

int Model::NumProducts() const { return internal::kLayerProducts * config_.n_layer + 1; }

int Model::NumSparseProducts() const {
  int n = sparse_->lm_head.UsableFor(lm_head_) ? 1 : 0;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const std::array<torch::Tensor, internal::kLayerProducts> m = ProductWeights(layers_[l]);
    for (int i = 0; i < internal::kLayerProducts; ++i) n += sparse_->layers[l][i].UsableFor(m[i]);
  }
  return n;
}

torch::Tensor Model::Logits(const torch::Tensor& x) const {
  return internal::Linear(x, lm_head_, torch::Tensor(), sparse_->lm_head) + final_logits_bias_;
}

void Model::To(torch::Device device, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  for (NamedTensor& p : params_) {
    const bool grad = p.tensor.requires_grad();
    p.tensor = p.tensor.to(device, dtype).detach().set_requires_grad(grad);
  }
  device_ = device;
  BindViews();
}

torch::Tensor Model::Sparsify(NodeLocation loc, const torch::Tensor& x) const {
  if (!config_.HasActivationSparsity(loc)) return x;
  return AbsTopK(x, config_.ActivationTopK(loc));
}

torch::Tensor Model::Site(const Taps* taps, int layer, NodeLocation loc, torch::Tensor x) const {
  if (taps == nullptr || taps->empty()) return x;
  return taps->Apply(TapSite{layer, loc, TapSiteIndex(layer, loc)}, std::move(x));
}

torch::Tensor Model::SparseSite(const Taps* taps, int layer, NodeLocation loc,
                                torch::Tensor x) const {
  torch::Tensor gate, value;
  if (taps != nullptr && taps->OnlyBlendAt(TapSiteIndex(layer, loc), &gate, &value)) {
    return GatedAbsTopK(x, config_.ActivationTopK(loc), gate, value);
  }
  return Site(taps, layer, loc, Sparsify(loc, x));
}

torch::Tensor Model::SiteConstant(const Taps* taps, int layer, NodeLocation loc) const {
  return taps != nullptr ? taps->Constant(TapSiteIndex(layer, loc)) : torch::Tensor();
}

torch::Tensor Model::Embed(const torch::Tensor& tokens) const {
  CIRCUIT_CHECK(tokens.dim() == 2);
  CIRCUIT_CHECK(tokens.size(1) <= config_.n_ctx);
  const int64_t B = tokens.size(0), T = tokens.size(1);
  torch::Tensor x = wte_.index_select(0, tokens.reshape(-1)).view({B, T, config_.d_model});
  if (config_.d_pos_emb == 0) x = x + wpe_.slice(0, 0, T).unsqueeze(0);
  return x;  // (B, T, d_model)
}

torch::Tensor Model::WithPositions(const torch::Tensor& h, const torch::Tensor& ln_p, int64_t T,
                                   const torch::Tensor& answer, const BlockContext& ctx) const {
  if (config_.d_pos_emb == 0) return h;
  const int64_t B = h.size(0);
  if (ctx.positions.defined()) {
    const torch::Tensor at =
        h.size(1) != T
            ? ctx.positions.index({torch::arange(B, answer.options()), answer}).unsqueeze(1)
            : ctx.positions;
    const torch::Tensor p = RmsNorm(wpe_.index_select(0, at.reshape(-1)), ln_p);
    return torch::cat({h, p.view({B, at.size(1), config_.d_pos_emb})}, -1);
  }
  torch::Tensor p = RmsNorm(wpe_.slice(0, 0, T), ln_p);  // (T, P)
  if (h.size(1) != T) return torch::cat({h, p.index_select(0, answer).unsqueeze(1)}, -1);
  return torch::cat({h, p.unsqueeze(0).expand({B, T, config_.d_pos_emb})}, -1);
}

torch::Tensor Model::AttentionWrite(int l, const torch::Tensor& x, const Taps* taps,
                                    const torch::Tensor& answer, const BlockContext& ctx) const {
  const int64_t B = x.size(0), T = x.size(1);
  const int64_t H = config_.n_head, dh = config_.d_head, A = config_.attn_width();
  const bool at_answer = answer.defined();
  const int64_t Tq = at_answer ? 1 : T;
  using L = NodeLocation;
  using internal::Linear;
  using P = internal::LayerProduct;
  const LayerWeights& w = layers_[l];
  const internal::SparseLayerWeights& sw = sparse_->layers[l];
  const torch::Tensor q_c = SiteConstant(taps, l, L::kAttnQ), k_c = SiteConstant(taps, l, L::kAttnK),
                      v_c = SiteConstant(taps, l, L::kAttnV);
  torch::Tensor q, k, v;
  if (k_c.defined() && v_c.defined() && (q_c.defined() || ctx.kv_only)) {
    // Declared constant: the sublayer does not read the residual stream.
    k = k_c.expand({B, T, A}).contiguous();
    v = v_c.expand({B, T, A}).contiguous();
    if (!ctx.kv_only) q = q_c.expand({B, Tq, A}).contiguous();
  } else {
    torch::Tensor h = WithPositions(RmsNorm(x, w.ln_1), w.ln_p1, T, answer, ctx);
    h = SparseSite(taps, l, L::kAttnActIn, h);  // (B, T, d_in)
    if (at_answer) {
      const torch::Tensor h_at = h.index({torch::arange(B, answer.options()), answer}).unsqueeze(1);
      q = Linear(h_at, w.c_attn_w.narrow(0, 0, A), w.c_attn_b.narrow(0, 0, A), sw[P::kCAttnQ]);
    }
    if (ctx.kv_only || at_answer) {
      std::vector<torch::Tensor> kv =
          Linear(h, w.c_attn_w.narrow(0, A, 2 * A), w.c_attn_b.narrow(0, A, 2 * A), sw[P::kCAttnKv])
              .split(A, -1);
      k = kv[0], v = kv[1];
    } else {
      std::vector<torch::Tensor> qkv = Linear(h, w.c_attn_w, w.c_attn_b, sw[P::kCAttn]).split(A, -1);
      q = qkv[0], k = qkv[1], v = qkv[2];
    }
    if (!ctx.kv_only) q = SparseSite(taps, l, L::kAttnQ, q);  // (B, Tq, A)
    k = SparseSite(taps, l, L::kAttnK, k);  // (B, T, A)
    v = SparseSite(taps, l, L::kAttnV, v);
  }
  k = k.view({B, T, H, dh}).transpose(1, 2);  // (B, H, T, dh)
  v = v.view({B, T, H, dh}).transpose(1, 2);
  if (ctx.k_out != nullptr) *ctx.k_out = k;
  if (ctx.v_out != nullptr) *ctx.v_out = v;
  if (ctx.kv_only) return torch::Tensor();
  q = q.view({B, Tq, H, dh}).transpose(1, 2);  // (B, H, Tq, dh)
  const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(x.device());
  torch::Tensor masked =
      at_answer ? (torch::arange(T, answer.options()).unsqueeze(0) > answer.unsqueeze(1))
                      .view({B, 1, 1, T})                       // keys after the answer
                : torch::ones({T, T}, bool_opts).triu(1);     // causal
  if (ctx.prefix_k.defined()) {
    // The pair's shared tokens come first (read in place); their padding is masked.
    const int64_t s = ctx.prefix_k.size(2);
    masked = torch::cat({ctx.prefix_masked.expand({B, 1, Tq, s}), masked.expand({B, 1, Tq, T})}, -1);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  const torch::Tensor y =
      internal::Attend(q, k, v, masked, config_.attn_sink ? w.sink : torch::Tensor(), scale,
                       internal::SharedPrefix{ctx.prefix_k, ctx.prefix_v})
          .transpose(1, 2)
          .reshape({B, Tq, A});  // (B, Tq, A)
  const torch::Tensor delta = Linear(y, w.attn_proj_w, w.attn_proj_b, sw[P::kAttnProj]);
  return SparseSite(taps, l, L::kAttnResidDelta, delta);
}

torch::Tensor Model::Block(int l, const torch::Tensor& x_in, const Taps* taps,
                           const torch::Tensor& answer, const BlockContext& ctx) const {
  CIRCUIT_CHECK(taps == nullptr || taps->n_layer() == config_.n_layer);
  using L = NodeLocation;
  using internal::Linear;
  using P = internal::LayerProduct;
  const LayerWeights& w = layers_[l];
  const internal::SparseLayerWeights& sw = sparse_->layers[l];
  // A sublayer whose residual write the taps declare constant is skipped: it
  // adds that value, exactly what computing it and blending it away would add.
  const torch::Tensor attn_write = SiteConstant(taps, l, L::kAttnResidDelta);
  if (ctx.kv_only) {
    if (!attn_write.defined()) AttentionWrite(l, x_in, taps, answer, ctx);
    return torch::Tensor();
  }
  const torch::Tensor write =
      attn_write.defined() ? attn_write : AttentionWrite(l, x_in, taps, answer, ctx);
  // The rows this block writes: with `answer`, only the answer positions.
  // Selected after the attention read x_in: autograd sums x_in's gradients in
  // the reverse order of its uses, and the masks depend on it.
  torch::Tensor x =
      answer.defined()
          ? x_in.index({torch::arange(x_in.size(0), answer.options()), answer}).unsqueeze(1)
          : x_in;  // (B, Tq, d_model)
  x = x + write;

  // MLP sublayer.
  const torch::Tensor mlp_write = SiteConstant(taps, l, L::kMlpResidDelta);
  if (mlp_write.defined()) return x + mlp_write;
  const int64_t B = x.size(0), Tq = x.size(1);
  torch::Tensor a = SiteConstant(taps, l, L::kMlpPostAct);
  if (a.defined()) {
    a = a.expand({B, Tq, config_.d_mlp}).contiguous();  // the neurons' declared values
  } else {
    torch::Tensor h = WithPositions(RmsNorm(x, w.ln_2), w.ln_p2, x_in.size(1), answer, ctx);
    h = SparseSite(taps, l, L::kMlpActIn, h);  // (B, Tq, d_in)
    a = Linear(h, w.fc_w, w.fc_b, sw[P::kFc]);  // (B, Tq, d_mlp)
    a = config_.activation == "relu" ? torch::relu(a) : torch::gelu(a);
    a = SparseSite(taps, l, L::kMlpPostAct, a);
  }
  const torch::Tensor delta = Linear(a, w.mlp_proj_w, w.mlp_proj_b, sw[P::kMlpProj]);  // (B, Tq, d_model)
  return x + SparseSite(taps, l, L::kMlpResidDelta, delta);
}

torch::Tensor Model::Block(int l, const torch::Tensor& x, const Taps* taps,
                           const torch::Tensor& answer) const {
  return Block(l, x, taps, answer, BlockContext());
}

SplitResidual Model::EmbedSplit(const PrefixSplit& split) const {
  SplitResidual x;
  if (split.prefix.size(1) > 0) x.prefix = Embed(split.prefix);
  const int64_t B = split.suffix.size(0), S = split.suffix.size(1);
  x.suffix = wte_.index_select(0, split.suffix.reshape(-1)).view({B, S, config_.d_model});
  if (config_.d_pos_emb == 0) {
    x.suffix = x.suffix + wpe_.index_select(0, split.suffix_pos.reshape(-1)).view_as(x.suffix);
  }
  return x;
}

SplitResidual Model::LayersSplit(SplitResidual x, int begin, int end, const Taps* taps,
                                 const PrefixSplit& split) const {
  CIRCUIT_CHECK(0 <= begin && begin <= end && end <= config_.n_layer);
  if (begin == end) return x;
  const int64_t B = split.suffix.size(0), R = split.prefix.size(0), s = split.prefix.size(1);
  const int64_t rows = x.suffix.size(0), G = rows / B;  // G stacked copies of the batch
  CIRCUIT_CHECK(B == 2 * R && rows == G * B && (s == 0 || x.prefix.size(0) == G * R));
  // Suffix row j continues prefix row j / 2 (row g * B + i: g * R + i / 2).
  const auto opts = split.suffix.options();
  BlockContext ctx;
  ctx.positions = split.suffix_pos.repeat({G, 1});
  const torch::Tensor last = split.suffix_last.repeat({G});
  if (s > 0) {
    const torch::Tensor len = split.prefix_len.repeat({G}).repeat_interleave(2);  // (rows)
    ctx.prefix_masked =
        (torch::arange(s, opts).unsqueeze(0) >= len.unsqueeze(1)).view({rows, 1, 1, s});
  }
  for (int l = begin; l < end; ++l) {
    const bool final_layer = l == config_.n_layer - 1;
    if (s > 0) {
      // The prefixes: causal from position 0; in the last layer only keys and values.
      torch::Tensor k, v;
      BlockContext pre;
      pre.k_out = &k, pre.v_out = &v, pre.kv_only = final_layer;
      x.prefix = Block(l, x.prefix, taps, torch::Tensor(), pre);
      // Per prefix row (suffix rows 2i and 2i + 1 read row i); undefined when
      // the layer's attention is skipped (its write declared constant).
      ctx.prefix_k = k;
      ctx.prefix_v = v;
    }
    x.suffix = Block(l, x.suffix, taps, final_layer ? last : torch::Tensor(), ctx);
  }
  return x;
}

torch::Tensor Model::Trunk(const torch::Tensor& tokens, const Taps* taps) const {
  torch::Tensor x = Embed(tokens);
  for (int l = 0; l < config_.n_layer; ++l) x = Block(l, x, taps, torch::Tensor());
  x = Site(taps, config_.n_layer, NodeLocation::kFinalResid, x);
  return RmsNorm(x, ln_f_);
}

torch::Tensor Model::Layers(torch::Tensor x, int begin, int end, const Taps* taps,
                            const torch::Tensor& positions) const {
  CIRCUIT_CHECK(0 <= begin && begin <= end && end <= config_.n_layer);
  for (int l = begin; l < end; ++l) {
    x = Block(l, x, taps, l == config_.n_layer - 1 ? positions : torch::Tensor());
  }
  return x;
}

torch::Tensor Model::HeadAt(torch::Tensor x, const torch::Tensor& tokens,
                            const torch::Tensor& positions, const Taps* taps) const {
  CIRCUIT_CHECK(x.dim() == 3 && x.size(1) == 1);
  x = RmsNorm(SparseSite(taps, config_.n_layer, NodeLocation::kFinalResid, x), ln_f_).squeeze(1);
  torch::Tensor logits = Logits(x);  // (B, V)
  if (bigram_.defined()) {
    const torch::Tensor rows = torch::arange(tokens.size(0), positions.options());
    logits = logits + bigram_.index_select(0, tokens.index({rows, positions}));
  }
  return logits;
}

torch::Tensor Model::AnswerLogits(const torch::Tensor& tokens, const torch::Tensor& positions,
                                  const Taps* taps) const {
  return HeadAt(Layers(Embed(tokens), 0, config_.n_layer, taps, positions), tokens, positions, taps);
}

torch::Tensor Model::Forward(const torch::Tensor& tokens, const Taps* taps) const {
  torch::Tensor x = Trunk(tokens, taps);  // (B, T, d_model)
  torch::Tensor logits = Logits(x);  // (B, T, V)
  if (bigram_.defined()) {
    logits = logits + bigram_.index_select(0, tokens.reshape(-1)).view_as(logits);
  }
  return logits;
}

torch::Tensor Model::ForwardAt(const torch::Tensor& tokens, const torch::Tensor& positions,
                               const Taps* taps) const {
  torch::Tensor x = Trunk(tokens, taps);  // (B, T, d_model)
  const int64_t B = tokens.size(0);
  torch::Tensor rows = torch::arange(B, positions.options());
  torch::Tensor last = x.index({rows, positions});                         // (B, d_model)
  torch::Tensor logits = Logits(last);  // (B, V)
  if (bigram_.defined()) logits = logits + bigram_.index_select(0, tokens.index({rows, positions}));
  return logits;
}

torch::Tensor Model::Loss(const torch::Tensor& tokens, const Taps* taps) const {
  const int64_t T = tokens.size(1);
  torch::Tensor logits = Forward(tokens.slice(1, 0, T - 1), taps);  // (B, T-1, V)
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}),
                                              tokens.slice(1, 1, T).reshape(-1));
}

}  // namespace circuit
