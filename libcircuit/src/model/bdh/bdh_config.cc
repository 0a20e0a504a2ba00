#include "circuit/core/bdh_config.h"

#include <cmath>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace circuit {

SiteLayout BdhConfig::Layout() const {
  const int neurons = n_head * n_neuron, reads = n_head * d_model;
  return SiteLayout(n_layer,
                    {{0, NodeLocation::kBdhResidIn, d_model},
                     {0, NodeLocation::kBdhXNeuron, neurons},
                     {0, NodeLocation::kBdhAttnRead, reads},
                     {0, NodeLocation::kBdhYNeuron, neurons},
                     {0, NodeLocation::kBdhGate, neurons}},
                    d_model);
}

int64_t BdhConfig::ParameterCount() const {
  // Validate() bounds every factor first, so these int64 products cannot overflow.
  const int64_t v = vocab_size, d = d_model;
  return v * d + 3 * neurons() * d + d * v;
}

absl::Status BdhConfig::Validate() const {
  for (auto [name, value, limit] :
       {std::tuple<const char*, int, int>{"n_layer", n_layer, kMaxLayers},
        {"d_model", d_model, kMaxWidth},
        {"n_head", n_head, kMaxWidth},
        {"n_neuron", n_neuron, kMaxNeurons},
        {"vocab_size", vocab_size, kMaxVocab},
        {"n_ctx", n_ctx, kMaxContext}}) {
    if (value <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("config: ", name, " must be > 0, got ", value));
    }
    if (value > limit) {
      return absl::InvalidArgumentError(
          absl::StrCat("config: ", name, " must be <= ", limit, ", got ", value));
    }
  }
  if (n_neuron % 2 != 0) {
    // RoPE rotates neuron pairs (2i, 2i + 1).
    return absl::InvalidArgumentError(
        absl::StrCat("config: n_neuron must be even (RoPE rotates pairs), got ", n_neuron));
  }
  if (neurons() > kMaxNeurons) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: n_head * n_neuron must be <= ", kMaxNeurons, ", got ", neurons()));
  }
  if (!(dropout >= 0.0 && dropout < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: dropout must be in [0, 1), got ", dropout));
  }
  if (ParameterCount() > kMaxParameters) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: ", ParameterCount(), " parameters, more than the limit of ", kMaxParameters));
  }
  return absl::OkStatus();
}

}  // namespace circuit
