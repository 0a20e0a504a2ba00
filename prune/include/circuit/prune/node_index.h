// Flat addressing of every node of a model (PAPER.md §4.1), and the mask units
// that carry one mask parameter each. Torch-free.
//
// Nodes are numbered site by site in tap-site order (circuit/core/model.h:
// site = layer * 8 + location, final_resid last), channels in order within a site:
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

namespace circuit::prune {

class NodeIndex {
 public:
  explicit NodeIndex(const ModelConfig& config);

  // All nodes: n_layer * (2 d_in + 3 A + 2 d_model + d_mlp) + d_model.
  int64_t total() const { return offsets_.back(); }
  int n_layer() const { return n_layer_; }
  // Tap sites: n_layer * 8 + 1 (the same numbering as circuit::TapSiteIndex).
  int num_sites() const { return static_cast<int>(widths_.size()); }
  int Site(int layer, NodeLocation loc) const;
  int SiteLayer(int site) const;
  NodeLocation SiteLocation(int site) const;
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
  int n_layer_;
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
