// beeg_config.json <-> ModelConfig. Defaults are GPTConfig's in the release's
// circuit_sparsity/inference/gpt.py, so a key left out means what it means there.
#include "circuit/core/release_config.h"

#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "circuit/core/status.h"

namespace circuit {
namespace {

using Json = nlohmann::json;

absl::Status BadValue(const std::string& key, const Json& value, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", value.dump(), " ", why));
}

// Reads an integer key (absent -> `fallback`; null allowed only when `nullable`,
// giving -1).
absl::StatusOr<int> IntKey(const Json& j, const std::string& key, int fallback, bool nullable) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (it->is_null() && nullable) return -1;
  if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > (1 << 30)) {
    return BadValue(key, *it,
                    nullable ? "is not a positive integer or null" : "is not a positive integer");
  }
  return static_cast<int>(it->get<int64_t>());
}

absl::StatusOr<bool> BoolKey(const Json& j, const std::string& key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (!it->is_boolean()) return BadValue(key, *it, "is not true or false");
  return it->get<bool>();
}

absl::StatusOr<std::string> StringKey(const Json& j, const std::string& key,
                                      const std::string& fallback) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (!it->is_string()) return BadValue(key, *it, "is not a string");
  return it->get<std::string>();
}

// Keys of the release's GPTConfig (and load_model's legacy/extra keys) that we read.
const std::set<std::string>& MappedKeys() {
  static const auto* keys = new std::set<std::string>{"block_size",
                                                      "vocab_size",
                                                      "n_layer",
                                                      "n_head",
                                                      "d_head",
                                                      "d_model",
                                                      "bias",
                                                      "ln_bias",
                                                      "rms_norm",
                                                      "residual_activation_type",
                                                      "activation_type",
                                                      "afrac",
                                                      "afrac_loctypes",
                                                      "tied_unembed",
                                                      "tokenizer_name",
                                                      "d_mlp",
                                                      "n_mlp",
                                                      "enable_bigram_table",
                                                      "d_pos_emb",
                                                      "flash",
                                                      "sink",
                                                      "use_tied_aux_matrix"};
  return *keys;
}

}  // namespace

absl::StatusOr<ReleaseConfig> ParseReleaseConfig(const std::string& json_text) {
  Json j;
  try {
    j = Json::parse(json_text);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not valid JSON: ", e.what()));
  }
  if (!j.is_object()) return absl::InvalidArgumentError("not a JSON object (expected a GPTConfig)");

  ReleaseConfig rc;
  ModelConfig& c = rc.config;
  std::vector<std::string>& notes = rc.notes;
  for (const char* key : {"block_size", "vocab_size", "n_layer", "n_head", "d_model"}) {
    if (!j.contains(key)) notes.push_back(absl::StrCat(key, ": absent, GPTConfig's default taken"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(c.n_ctx, IntKey(j, "block_size", 1024, false));
  CIRCUIT_ASSIGN_OR_RETURN(c.vocab_size, IntKey(j, "vocab_size", 50304, false));
  CIRCUIT_ASSIGN_OR_RETURN(c.n_layer, IntKey(j, "n_layer", 12, false));
  CIRCUIT_ASSIGN_OR_RETURN(c.n_head, IntKey(j, "n_head", 12, false));
  CIRCUIT_ASSIGN_OR_RETURN(c.d_model, IntKey(j, "d_model", 768, false));
  CIRCUIT_ASSIGN_OR_RETURN(c.d_head, IntKey(j, "d_head", -1, true));
  if (c.d_head < 0) c.d_head = c.d_model / c.n_head;
  // load_model() renames the legacy n_mlp to d_mlp (n_mlp wins when both are there).
  const std::string mlp_key = j.contains("n_mlp") ? "n_mlp" : "d_mlp";
  CIRCUIT_ASSIGN_OR_RETURN(c.d_mlp, IntKey(j, mlp_key, -1, true));
  if (c.d_mlp < 0) c.d_mlp = 4 * c.d_model;
  CIRCUIT_ASSIGN_OR_RETURN(c.d_pos_emb, IntKey(j, "d_pos_emb", -1, true));
  if (c.d_pos_emb < 0) c.d_pos_emb = 0;

  CIRCUIT_ASSIGN_OR_RETURN(bool rms_norm, BoolKey(j, "rms_norm", false));
  if (!rms_norm) {
    return absl::InvalidArgumentError(
        "rms_norm: false (LayerNorm) is not supported: circuit models use RMSNorm (PAPER.md §1.1)");
  }
  CIRCUIT_ASSIGN_OR_RETURN(std::string resid_act,
                           StringKey(j, "residual_activation_type", "identity"));
  if (resid_act != "identity") {
    return BadValue("residual_activation_type", j["residual_activation_type"],
                    "is not supported (only \"identity\")");
  }
  CIRCUIT_ASSIGN_OR_RETURN(c.activation, StringKey(j, "activation_type", "gelu"));
  if (c.activation != "gelu" && c.activation != "relu") {
    return BadValue("activation_type", j["activation_type"], "is not \"gelu\" or \"relu\"");
  }
  CIRCUIT_ASSIGN_OR_RETURN(bool aux, BoolKey(j, "use_tied_aux_matrix", false));
  if (aux) return absl::InvalidArgumentError("use_tied_aux_matrix: true is not supported");

  CIRCUIT_ASSIGN_OR_RETURN(rc.bias, BoolKey(j, "bias", true));
  if (!rc.bias) notes.push_back("bias: false, zero biases filled in");
  CIRCUIT_ASSIGN_OR_RETURN(rc.tied_unembed, BoolKey(j, "tied_unembed", true));
  if (rc.tied_unembed)
    notes.push_back("tied_unembed: true, lm_head.weight imported as a copy of wte");
  CIRCUIT_ASSIGN_OR_RETURN(rc.flash, BoolKey(j, "flash", true));
  CIRCUIT_ASSIGN_OR_RETURN(c.attn_sink, BoolKey(j, "sink", false));
  CIRCUIT_ASSIGN_OR_RETURN(c.bigram_table, BoolKey(j, "enable_bigram_table", false));
  CIRCUIT_ASSIGN_OR_RETURN(c.tokenizer, StringKey(j, "tokenizer_name", "tinypython_2k"));

  // AbsTopK: afrac null -> off. int(afrac * width) in Python = floor for afrac >= 0.
  c.afrac = 0.0;
  if (auto it = j.find("afrac"); it != j.end() && !it->is_null()) {
    if (!it->is_number() || !(it->get<double>() > 0.0 && it->get<double>() <= 1.0)) {
      return BadValue("afrac", *it, "is not null or a number in (0, 1]");
    }
    c.afrac = it->get<double>();
  }
  CIRCUIT_ASSIGN_OR_RETURN(std::string loctypes,
                           StringKey(j, "afrac_loctypes", "attn_in,attn_out,mlp_in,mlp_out"));
  std::vector<std::string> known;
  for (absl::string_view item : absl::StrSplit(loctypes, ',', absl::SkipEmpty())) {
    bool ours = false;
    for (NodeLocation loc : kAllNodeLocations) {
      if (loc != NodeLocation::kFinalResid && std::string(ActivationSparsityKey(loc)) == item)
        ours = true;
    }
    if (ours) {
      known.emplace_back(item);
    } else if (c.afrac > 0.0) {
      return absl::InvalidArgumentError(
          absl::StrCat("afrac_loctypes: AbsTopK at '", item,
                       "' is not supported (only at the eight node locations)"));
    }
  }
  c.afrac_loctypes = absl::StrJoin(known, ",");
  if (c.afrac == 0.0) notes.push_back("afrac: null, no activation sparsity");

  std::vector<std::string> ignored;
  for (const auto& [key, value] : j.items()) {
    if (MappedKeys().count(key) == 0) ignored.push_back(key);
  }
  if (!ignored.empty()) {
    notes.push_back(
        absl::StrCat("ignored (training-only or runtime): ", absl::StrJoin(ignored, ", ")));
  }
  CIRCUIT_RETURN_IF_ERROR(c.Validate());
  return rc;
}

absl::StatusOr<std::string> ReleaseConfigJson(const ModelConfig& c) {
  CIRCUIT_RETURN_IF_ERROR(c.Validate());
  if (c.d_model % c.n_head != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the release's GPTConfig requires d_model % n_head == 0; d_model ", c.d_model,
                     ", n_head ", c.n_head));
  }
  nlohmann::ordered_json j;
  j["block_size"] = c.n_ctx;
  j["vocab_size"] = c.vocab_size;
  j["n_layer"] = c.n_layer;
  j["n_head"] = c.n_head;
  j["d_head"] = c.d_head;
  j["d_model"] = c.d_model;
  j["dropout"] = 0.0;
  j["bias"] = true;
  j["ln_bias"] = true;
  j["rms_norm"] = true;
  j["residual_activation_type"] = "identity";
  j["activation_type"] = c.activation;
  j["afrac"] = c.afrac > 0.0 ? nlohmann::ordered_json(c.afrac) : nlohmann::ordered_json();
  j["afrac_loctypes"] = c.afrac_loctypes;
  j["debug_nans"] = false;
  j["tied_unembed"] = false;
  j["tokenizer_name"] = c.tokenizer;
  j["grad_checkpointing"] = false;
  j["d_mlp"] = c.d_mlp;
  j["enable_bigram_table"] = c.bigram_table;
  j["learnable_bigram_table"] = c.bigram_table;
  j["d_pos_emb"] = c.d_pos_emb > 0 ? nlohmann::ordered_json(c.d_pos_emb) : nlohmann::ordered_json();
  j["dropout_cat_pos_emb"] = false;
  j["sinusoidal_cat_pos_emb"] = false;
  j["enable_sparse_kernels"] = false;
  j["flash"] = true;
  j["sink"] = c.attn_sink;
  // No "bigram_table_rank": the release's load_model() stopped popping it
  // (2025-11-22), so GPTConfig(**config) would reject the key, even as null.
  return j.dump(2) + "\n";
}

}  // namespace circuit
