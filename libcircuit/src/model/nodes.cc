#include "circuit/core/nodes.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"

namespace circuit {
namespace {

constexpr std::array<std::string_view, kNumLocationNames> kNames = {
    "attn.act_in", "attn.q",        "attn.k",         "attn.v",     "attn.resid_delta",
    "mlp.act_in",  "mlp.post_act",  "mlp.resid_delta", "final_resid",
    "resid_in",    "x_neuron",      "attn_read",      "y_neuron",   "gate"};
constexpr std::array<std::string_view, kNumLocationNames> kSparsityKeys = {
    "attn_in", "attn_q", "attn_k", "attn_v", "attn_out", "mlp_in", "mlp_neuron", "mlp_out", "",
    "",        "",       "",       "",       ""};

}  // namespace

std::string_view LocationName(NodeLocation loc) { return kNames[static_cast<int>(loc)]; }

bool ParseNodeLocation(std::string_view name, NodeLocation* loc) {
  for (int i = 0; i < kNumLocationNames; ++i) {
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

SiteLayout::SiteLayout(int n_layer, std::vector<SiteSpec> per_layer, int final_width)
    : n_layer_(n_layer), final_width_(final_width) {
  for (const SiteSpec& s : per_layer) {
    CIRCUIT_CHECK(s.location != NodeLocation::kFinalResid && Slot(s.location) < 0);
    locations_.push_back(s.location);
    widths_.push_back(s.width);
  }
}

int SiteLayout::Slot(NodeLocation loc) const {
  if (loc == NodeLocation::kFinalResid) return per_layer();
  for (int i = 0; i < per_layer(); ++i) {
    if (locations_[i] == loc) return i;
  }
  return -1;
}

int SiteLayout::Site(int layer, NodeLocation loc) const {
  const int slot = Slot(loc);
  if (slot < 0) return -1;
  if (loc == NodeLocation::kFinalResid) return n_layer_ * per_layer();
  if (layer < 0 || layer >= n_layer_) return -1;
  return layer * per_layer() + slot;
}

SiteSpec SiteLayout::At(int site) const {
  CIRCUIT_CHECK(site >= 0 && site < num_sites());
  if (site == n_layer_ * per_layer()) return {n_layer_, NodeLocation::kFinalResid, final_width_};
  const int slot = site % per_layer();
  return {site / per_layer(), locations_[slot], widths_[slot]};
}

}  // namespace circuit
