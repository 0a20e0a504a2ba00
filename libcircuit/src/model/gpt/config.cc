#include "circuit/core/config.h"

#include <cstdint>
#include <cmath>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace circuit {

int ModelConfig::LocationWidth(NodeLocation loc) const {
  switch (loc) {
    case NodeLocation::kAttnActIn:
    case NodeLocation::kMlpActIn:
      return d_in();
    case NodeLocation::kAttnQ:
    case NodeLocation::kAttnK:
    case NodeLocation::kAttnV:
      return attn_width();
    case NodeLocation::kMlpPostAct:
      return d_mlp;
    case NodeLocation::kAttnResidDelta:
    case NodeLocation::kMlpResidDelta:
    case NodeLocation::kFinalResid:
      return d_model;
    default:
      return 0;  // another architecture's
  }
}

SiteLayout ModelConfig::Layout() const {
  std::vector<SiteSpec> per_layer;
  for (int i = 0; i < kNumLayerLocations; ++i) {
    const NodeLocation loc = kAllNodeLocations[i];
    per_layer.push_back({0, loc, LocationWidth(loc)});
  }
  return SiteLayout(n_layer, per_layer, d_model);
}

int64_t ModelConfig::TotalNodes() const {
  const int64_t per_layer =
      2 * int64_t{d_in()} + 3 * int64_t{attn_width()} + 2 * int64_t{d_model} + d_mlp;
  return n_layer * per_layer + d_model;
}

int64_t ModelConfig::ParameterCount() const {
  // The sizes of Model::ParameterShapes, summed in int64. Validate() calls this
  // only after bounding every field, so no product below can overflow.
  const int64_t v = vocab_size, d = d_model, a = int64_t{n_head} * d_head, m = d_mlp, in = d_in(),
                p = d_pos_emb;
  const int64_t per_layer = d + (3 * a * in + 3 * a) + (d * a + d) + (attn_sink ? n_head : 0) + d +
                            (m * in + m) + (d * m + d) + (p > 0 ? 2 * p : 0);
  int64_t total = v * d + int64_t{n_ctx} * (p > 0 ? p : d) + d + v * d + v;
  if (bigram_table) total += v * v;
  if (per_layer > 0 && n_layer > (INT64_MAX - total) / per_layer) return INT64_MAX;
  return total + int64_t{n_layer} * per_layer;
}

bool ModelConfig::HasActivationSparsity(NodeLocation loc) const {
  if (afrac <= 0.0 || loc == NodeLocation::kFinalResid) return false;
  const absl::string_view key(ActivationSparsityKey(loc).data(), ActivationSparsityKey(loc).size());
  for (absl::string_view item : absl::StrSplit(afrac_loctypes, ',')) {
    if (item == key) return true;
  }
  return false;
}

int ModelConfig::ActivationTopK(NodeLocation loc) const {
  const int width = LocationWidth(loc);
  if (!HasActivationSparsity(loc)) return width;
  return static_cast<int>(std::floor(afrac * width));
}

absl::Status ModelConfig::Validate() const {
  auto positive = [](const char* name, int value) -> absl::Status {
    if (value > 0) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("config: ", name, " must be > 0, got ", value));
  };
  for (auto [name, value] :
       {std::pair<const char*, int>{"n_layer", n_layer}, {"d_model", d_model},
        {"n_head", n_head}, {"d_head", d_head}, {"d_mlp", d_mlp},
        {"vocab_size", vocab_size}, {"n_ctx", n_ctx}}) {
    if (absl::Status s = positive(name, value); !s.ok()) return s;
  }
  if (d_pos_emb < 0) {
    return absl::InvalidArgumentError(absl::StrCat("config: d_pos_emb must be >= 0, got ", d_pos_emb));
  }
  // Bounds first, so that no product below (n_head * d_head, the parameter
  // count) can overflow and no file can ask for an absurd allocation.
  for (auto [name, value, limit] :
       {std::tuple<const char*, int, int>{"n_layer", n_layer, kMaxLayers},
        {"d_model", d_model, kMaxWidth}, {"n_head", n_head, kMaxWidth},
        {"d_head", d_head, kMaxWidth}, {"d_mlp", d_mlp, kMaxWidth},
        {"vocab_size", vocab_size, kMaxVocab}, {"n_ctx", n_ctx, kMaxContext},
        {"d_pos_emb", d_pos_emb, kMaxWidth}}) {
    if (value > limit) {
      return absl::InvalidArgumentError(
          absl::StrCat("config: ", name, " must be <= ", limit, ", got ", value));
    }
  }
  if (int64_t{n_head} * d_head > kMaxWidth) {
    return absl::InvalidArgumentError(absl::StrCat("config: n_head * d_head must be <= ", kMaxWidth,
                                                   ", got ", int64_t{n_head} * d_head));
  }
  if (ParameterCount() > kMaxParameters) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", ParameterCount(),
                                                   " parameters, more than the ", kMaxParameters,
                                                   " this program handles"));
  }
  if (!(afrac >= 0.0 && afrac <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("config: afrac must be in [0, 1], got ", afrac));
  }
  for (absl::string_view item : absl::StrSplit(afrac_loctypes, ',', absl::SkipEmpty())) {
    bool known = false;
    for (NodeLocation loc : kAllNodeLocations) {
      if (loc != NodeLocation::kFinalResid && std::string(ActivationSparsityKey(loc)) == item) known = true;
    }
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("config: afrac_loctypes: unknown location '", item, "'"));
    }
  }
  if (afrac > 0.0) {
    for (NodeLocation loc : kAllNodeLocations) {
      if (HasActivationSparsity(loc) && ActivationTopK(loc) < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "config: afrac ", afrac, " keeps no entry of ", std::string(LocationName(loc)), " (width ",
            LocationWidth(loc), ")"));
      }
    }
  }
  if (activation != "gelu" && activation != "relu") {
    return absl::InvalidArgumentError(
        absl::StrCat("config: activation must be 'gelu' or 'relu', got '", activation, "'"));
  }
  return absl::OkStatus();
}

}  // namespace circuit
