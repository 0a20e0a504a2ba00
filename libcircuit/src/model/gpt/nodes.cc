#include "circuit/core/nodes.h"

#include "absl/strings/str_cat.h"

namespace circuit {
namespace {

constexpr std::array<std::string_view, kNumNodeLocations> kNames = {
    "attn.act_in", "attn.q",        "attn.k",         "attn.v",     "attn.resid_delta",
    "mlp.act_in",  "mlp.post_act",  "mlp.resid_delta", "final_resid"};
constexpr std::array<std::string_view, kNumNodeLocations> kSparsityKeys = {
    "attn_in", "attn_q", "attn_k", "attn_v", "attn_out", "mlp_in", "mlp_neuron", "mlp_out", ""};

}  // namespace

std::string_view LocationName(NodeLocation loc) { return kNames[static_cast<int>(loc)]; }

bool ParseNodeLocation(std::string_view name, NodeLocation* loc) {
  for (int i = 0; i < kNumNodeLocations; ++i) {
    if (kNames[i] == name) {
      *loc = static_cast<NodeLocation>(i);
      return true;
    }
  }
  return false;
}

std::string_view ActivationSparsityKey(NodeLocation loc) {
  return kSparsityKeys[static_cast<int>(loc)];
}

std::string NodeLabel(const Node& node) {
  return absl::StrCat("L", node.layer, " ", std::string(LocationName(node.location)), " ", node.index);
}

}  // namespace circuit
