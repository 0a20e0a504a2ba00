// Flat node numbering and mask units.
#include "circuit/prune/node_index.h"

#include <algorithm>

#include "circuit/core/status.h"

namespace circuit::prune {

NodeIndex::NodeIndex(const ModelConfig& config) : n_layer_(config.n_layer) {
  const int sites = n_layer_ * kNumLayerLocations + 1;
  widths_.reserve(sites);
  offsets_.reserve(sites + 1);
  offsets_.push_back(0);
  for (int s = 0; s < sites; ++s) {
    widths_.push_back(config.LocationWidth(SiteLocation(s)));
    offsets_.push_back(offsets_.back() + widths_.back());
  }
}

int NodeIndex::Site(int layer, NodeLocation loc) const {
  // Matches circuit::TapSiteIndex in circuit/core/model.h.
  if (loc == NodeLocation::kFinalResid) return n_layer_ * kNumLayerLocations;
  return layer * kNumLayerLocations + static_cast<int>(loc);
}

int NodeIndex::SiteLayer(int site) const {
  return site == n_layer_ * kNumLayerLocations ? n_layer_ : site / kNumLayerLocations;
}

NodeLocation NodeIndex::SiteLocation(int site) const {
  if (site == n_layer_ * kNumLayerLocations) return NodeLocation::kFinalResid;
  return static_cast<NodeLocation>(site % kNumLayerLocations);
}

int NodeIndex::SiteOf(int64_t flat) const {
  CIRCUIT_CHECK(flat >= 0 && flat < total());
  // offsets_ is sorted: the site is the last offset <= flat.
  auto it = std::upper_bound(offsets_.begin(), offsets_.end(), flat);
  return static_cast<int>(it - offsets_.begin()) - 1;
}

bool NodeIndex::Contains(const Node& node) const {
  if (node.location == NodeLocation::kFinalResid) {
    if (node.layer != n_layer_) return false;
  } else if (node.layer < 0 || node.layer >= n_layer_) {
    return false;
  }
  return node.index >= 0 && node.index < widths_[Site(node.layer, node.location)];
}

int64_t NodeIndex::Flat(const Node& node) const {
  CIRCUIT_CHECK(Contains(node));
  return offsets_[Site(node.layer, node.location)] + node.index;
}

Node NodeIndex::At(int64_t flat) const {
  const int site = SiteOf(flat);
  return Node{SiteLayer(site), SiteLocation(site),
              static_cast<int32_t>(flat - offsets_[site])};
}

MaskUnits BuildMaskUnits(const NodeIndex& index, bool tie_qk) {
  MaskUnits units;
  units.tie_qk = tie_qk;
  units.node_unit.assign(index.total(), -1);
  for (int site = 0; site < index.num_sites(); ++site) {
    const NodeLocation loc = index.SiteLocation(site);
    const int64_t offset = index.site_offset(site);
    if (tie_qk && loc == NodeLocation::kAttnK) {
      // Key channel i joins the unit of query channel i of the same layer.
      const int64_t q_offset = index.site_offset(index.Site(index.SiteLayer(site), NodeLocation::kAttnQ));
      for (int i = 0; i < index.site_width(site); ++i) {
        const int64_t unit = units.node_unit[q_offset + i];
        units.node_unit[offset + i] = unit;
        units.unit_nodes[unit].push_back(offset + i);
      }
      continue;
    }
    for (int i = 0; i < index.site_width(site); ++i) {
      units.node_unit[offset + i] = units.n_units++;
      units.unit_nodes.push_back({offset + i});
    }
  }
  return units;
}

}  // namespace circuit::prune
