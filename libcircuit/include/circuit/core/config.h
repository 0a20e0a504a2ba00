// Model configuration: the shape of a weight-sparse GPT (PAPER.md §1), torch-free.
//
//   ModelConfig config;            // the bundled model's shape
//   config.n_layer = 2;
//   CIRCUIT_RETURN_IF_ERROR(config.Validate());
//   int64_t n = config.TotalNodes();
#ifndef CIRCUIT_CORE_CONFIG_H_
#define CIRCUIT_CORE_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "circuit/core/nodes.h"

namespace circuit {

struct ModelConfig {
  int n_layer = 4;
  int d_model = 128;
  int n_head = 8;
  int d_head = 16;          // may differ from d_model / n_head
  int d_mlp = 512;          // 4 * d_model in the paper
  int vocab_size = 2048;
  int n_ctx = 256;          // context length; rows of the positional table
  int d_pos_emb = 0;        // 0: positions added to the embedding; > 0: concatenated
  double afrac = 0.25;      // AbsTopK keeps floor(afrac * width); 0 turns it off
  // Locations with AbsTopK, as the release's `afrac_loctypes` keys (comma list):
  // attn_in, attn_q, attn_k, attn_v, attn_out, mlp_in, mlp_neuron, mlp_out.
  std::string afrac_loctypes = "attn_in,attn_out,mlp_in,mlp_out,mlp_neuron,attn_v,attn_k,attn_q";
  bool attn_sink = true;    // per-head learnable sink logit
  bool bigram_table = true; // learnable vocab x vocab table added to the logits
  std::string activation = "gelu";  // "gelu" (exact erf) or "relu"
  std::string tokenizer = "tinypython_2k";

  // Width of the residual reads: d_model + d_pos_emb.
  int d_in() const { return d_model + d_pos_emb; }
  // Attention width A = n_head * d_head.
  int attn_width() const { return n_head * d_head; }
  // Number of channels at `loc` (0 for another architecture's location).
  int LocationWidth(NodeLocation loc) const;
  // The tap sites: the eight layer locations in kAllNodeLocations order, then final_resid.
  SiteLayout Layout() const;
  // n_layer * (2 d_in + 3 A + 2 d_model + d_mlp) + d_model (PAPER.md §4.1).
  int64_t TotalNodes() const;
  // True when AbsTopK applies at `loc` (afrac > 0 and the key is listed).
  bool HasActivationSparsity(NodeLocation loc) const;
  // Entries AbsTopK keeps at `loc`: floor(afrac * width), or the width when off.
  int ActivationTopK(NodeLocation loc) const;

  // Parameters of a model of this shape (the sizes of Model::ParameterShapes),
  // computed without torch so that a config can be bounded before allocating.
  // Meaningful only for fields within the limits below (Validate() checks).
  int64_t ParameterCount() const;

  // Limits Validate() enforces: far above the paper's models, low enough that
  // no size computed from them overflows and no file can demand terabytes.
  static constexpr int kMaxLayers = 1024;
  static constexpr int kMaxWidth = 1 << 16;    // d_model, d_head, n_head * d_head, d_mlp, ...
  static constexpr int kMaxVocab = 1 << 20;
  static constexpr int kMaxContext = 1 << 20;
  static constexpr int64_t kMaxParameters = int64_t{1} << 32;

  // Checks every field; the message names the field and its value.
  absl::Status Validate() const;
};

}  // namespace circuit

#endif  // CIRCUIT_CORE_CONFIG_H_
