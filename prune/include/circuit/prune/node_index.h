// Flat addressing of every node of a model (PAPER.md §4.1), and the mask units
// that carry one mask parameter each. Torch-free.
//
// Nodes are numbered site by site in tap-site order (the model's SiteLayout;
// for the GPT site = layer * 8 + location, final_resid last), channels in
// order within a site:
//
//   NodeIndex index(config);
//   int64_t i = index.Flat(Node{2, NodeLocation::kMlpPostAct, 17});
//   Node n = index.At(i);                        // == {2, kMlpPostAct, 17}
//   MaskUnits units = BuildMaskUnits(index, /*tie_qk=*/true);
#ifndef CIRCUIT_PRUNE_NODE_INDEX_H_
#define CIRCUIT_PRUNE_NODE_INDEX_H_

#include <cstdint>
#include <vector>

#include "circuit/core/config.h"
#include "circuit/core/nodes.h"
#include "circuit/core/status.h"

namespace circuit::prune {

class NodeIndex {
 public:
  // The sites of any architecture (TapModel::layout()).
  explicit NodeIndex(SiteLayout layout);
  // The GPT's: n_layer * (2 d_in + 3 A + 2 d_model + d_mlp) + d_model nodes.
  explicit NodeIndex(const ModelConfig& config);

  int64_t total() const { return offsets_.back(); }
  const SiteLayout& layout() const { return layout_; }
  int n_layer() const { return layout_.n_layer(); }
  // Tap sites in the layout's numbering (for the GPT: circuit::TapSiteIndex).
  int num_sites() const { return static_cast<int>(widths_.size()); }
  // The site of (layer, loc); aborts when the model has no such location.
  int Site(int layer, NodeLocation loc) const {
    const int site = layout_.Site(layer, loc);
    CIRCUIT_CHECK(site >= 0);
    return site;
  }
  int SiteLayer(int site) const { return layout_.At(site).layer; }
  NodeLocation SiteLocation(int site) const { return layout_.At(site).location; }
  // The stage a site belongs to: its layer, n_layer for final_resid. Sites of
  // an earlier stage come first.
  int SiteStage(int site) const { return site / layout_.per_layer(); }
  // First flat index of `site` and its number of channels.
  int64_t site_offset(int site) const { return offsets_[site]; }
  int site_width(int site) const { return widths_[site]; }
  // The site a flat index falls in.
  int SiteOf(int64_t flat) const;

  // Flat index of a node; aborts (CIRCUIT_CHECK) when the node is outside the model.
  int64_t Flat(const Node& node) const;
  // The node at a flat index in [0, total()).
  Node At(int64_t flat) const;
  // True when `node` names a channel of this model.
  bool Contains(const Node& node) const;

 private:
  SiteLayout layout_;
  std::vector<int> widths_;        // per site
  std::vector<int64_t> offsets_;   // per site, plus the total at the end
};

// Mask units: each unit owns one mask parameter tau. Normally every node is its
// own unit; with tie_qk the query and key channel i of a layer share one unit
// (the "QK channel" of PAPER.md §4.1), which still counts as two nodes.
struct MaskUnits {
  int64_t n_units = 0;
  std::vector<int64_t> node_unit;                 // (total nodes) -> unit
  std::vector<std::vector<int64_t>> unit_nodes;   // unit -> its flat node indices
  bool tie_qk = false;
};
MaskUnits BuildMaskUnits(const NodeIndex& index, bool tie_qk);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_NODE_INDEX_H_
