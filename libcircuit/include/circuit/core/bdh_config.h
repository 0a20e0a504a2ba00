// The shape of a BDH-GPU model (Pathway's "Baby Dragon Hatchling", Kosowski et
// al. 2025; docs/bdh.md), torch-free. One set of weights serves every layer,
// so the parameter count does not grow with n_layer.
//
//   BdhConfig config;              // a small CPU-sized default
//   config.n_neuron = 256;         // neurons per head (N)
//   CIRCUIT_RETURN_IF_ERROR(config.Validate());
//   int64_t p = config.ParameterCount();
#ifndef CIRCUIT_CORE_BDH_CONFIG_H_
#define CIRCUIT_CORE_BDH_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "circuit/core/nodes.h"

namespace circuit {

struct BdhConfig {
  int n_layer = 4;    // times the shared layer is applied
  int d_model = 128;  // D, the reference's n_embd
  int n_head = 4;
  int n_neuron = 512;  // N, neurons per head (the reference: multiplier * D / n_head); even
  int vocab_size = 2048;
  // Longest sequence the tools feed it (training windows, task prompts). BDH
  // itself has no positional table: RoPE phases work at any length.
  int n_ctx = 256;
  double dropout = 0.1;  // on the gated neurons x ⊙ y, in training only
  std::string tokenizer = "tinypython_2k";

  // All neurons of one layer: n_head * N.
  int64_t neurons() const { return int64_t{n_head} * n_neuron; }
  // The tap sites (docs/bdh.md): per layer resid_in (D), x_neuron (H*N),
  // attn_read (H*D), y_neuron (H*N), gate (H*N); then final_resid (D).
  SiteLayout Layout() const;
  // V*D (embed) + 2 * n_head*D*N (encoder, encoder_v) + n_head*N*D (decoder) + D*V (lm_head).
  int64_t ParameterCount() const;

  static constexpr int kMaxLayers = 1024;
  static constexpr int kMaxWidth = 1 << 16;    // d_model, n_head
  static constexpr int kMaxNeurons = 1 << 24;  // n_head * n_neuron
  static constexpr int kMaxVocab = 1 << 20;
  static constexpr int kMaxContext = 1 << 20;
  static constexpr int64_t kMaxParameters = int64_t{1} << 32;

  // Checks every field; the message names the field and its value.
  absl::Status Validate() const;
};

}  // namespace circuit

#endif  // CIRCUIT_CORE_BDH_CONFIG_H_
