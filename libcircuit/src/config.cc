#include "circuit/core/config.h"

#include <cmath>

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
  }
  return 0;
}

int64_t ModelConfig::TotalNodes() const {
  const int64_t per_layer =
      2 * int64_t{d_in()} + 3 * int64_t{attn_width()} + 2 * int64_t{d_model} + d_mlp;
  return n_layer * per_layer + d_model;
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
