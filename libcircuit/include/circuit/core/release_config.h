// The release's model config (`beeg_config.json`, a serialised GPTConfig of
// openai/circuit_sparsity) mapped to and from our ModelConfig. Torch-free.
//
//   CIRCUIT_ASSIGN_OR_RETURN(ReleaseConfig rc, ParseReleaseConfig(json_text));
//   for (const std::string& note : rc.notes) std::cout << note << "\n";
//   std::string json = ReleaseConfigJson(rc.config);   // back to beeg_config.json
//
// Mapping (absent keys take GPTConfig's defaults, as the release does):
//   block_size -> n_ctx; d_head null -> d_model / n_head; d_mlp null -> 4 d_model
//   (the legacy key `n_mlp` means d_mlp); afrac null -> 0 (no AbsTopK);
//   afrac_loctypes as is; d_pos_emb null -> 0 (added positions), > 0 -> concatenated;
//   sink -> attn_sink (default false); enable_bigram_table -> bigram_table;
//   activation_type -> activation; tokenizer_name -> tokenizer.
// Supported by conversion: bias false (zero biases are filled in), tied_unembed
// true (lm_head.weight becomes a copy of transformer.wte.weight).
// Rejected: rms_norm false (LayerNorm), residual_activation_type other than
// identity, AbsTopK at resid_post_attn / resid_post_mlp, use_tied_aux_matrix true.
// Ignored: training-only and runtime keys (dropout, pfrac, expansion_factor,
// grad_checkpointing, flash, bigram_table_rank, ...), each listed in `notes`.
#ifndef CIRCUIT_CORE_RELEASE_CONFIG_H_
#define CIRCUIT_CORE_RELEASE_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/config.h"

namespace circuit {

struct ReleaseConfig {
  ModelConfig config;
  bool bias = true;                // false: the file has no Linear biases (zeros are used)
  bool tied_unembed = false;       // true: lm_head.weight may be absent; wte is used
  bool flash = true;               // the release only applies the sink on the flash path
  std::vector<std::string> notes;  // one line per default taken or key ignored
};

// Parses beeg_config.json's text. Errors name the key and its value
// ("rms_norm: false (LayerNorm) is not supported ..."); the caller adds the file.
absl::StatusOr<ReleaseConfig> ParseReleaseConfig(const std::string& json_text);

// beeg_config.json for `config`: every GPTConfig field (rms_norm true, bias
// true, tied_unembed false, flash true) and nothing else, since the release's
// load_model() passes the file to GPTConfig(**config), which rejects unknown
// keys. Errors when the release cannot express the config (its GPTConfig
// requires d_model % n_head == 0).
absl::StatusOr<std::string> ReleaseConfigJson(const ModelConfig& config);

}  // namespace circuit

#endif  // CIRCUIT_CORE_RELEASE_CONFIG_H_
