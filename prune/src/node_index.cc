// Flat node numbering and mask units.
#include "circuit/prune/node_index.h"

#include <algorithm>
#include <utility>

#include "circuit/core/status.h"

namespace circuit::prune {

NodeIndex::NodeIndex(const ModelConfig& config) : NodeIndex(config.Layout()) {}

NodeIndex::NodeIndex(SiteLayout layout) : layout_(std::move(layout)) {
  const int sites = layout_.num_sites();
  widths_.reserve(sites);
  offsets_.reserve(sites + 1);
  offsets_.push_back(0);
  for (int s = 0; s < sites; ++s) {
    widths_.push_back(layout_.width(s));
    offsets_.push_back(offsets_.back() + widths_.back());
  }
}

int NodeIndex::SiteOf(int64_t flat) const {
  CIRCUIT_CHECK(flat >= 0 && flat < total());
  // offsets_ is sorted: the site is the last offset <= flat.
  auto it = std::upper_bound(offsets_.begin(), offsets_.end(), flat);
  return static_cast<int>(it - offsets_.begin()) - 1;
}

bool NodeIndex::Contains(const Node& node) const {
  if (node.location == NodeLocation::kFinalResid && node.layer != n_layer()) return false;
  const int site = layout_.Site(node.layer, node.location);
  return site >= 0 && node.index >= 0 && node.index < widths_[site];
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
