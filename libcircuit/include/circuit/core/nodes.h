// Node addressing: the node locations of each architecture (the GPT's nine of
// PAPER.md §1.2, BDH's six of docs/bdh.md), their names, and the tap sites of
// a model (SiteLayout).
//
// A node is one scalar channel at one location of one layer, for every token
// position. The same strings name locations in code, files and diagrams:
//
//   NodeLocation loc;
//   if (ParseNodeLocation("mlp.post_act", &loc)) ...;  // loc == kMlpPostAct
//   LocationName(NodeLocation::kAttnQ) == "attn.q"
//   SiteLayout layout = config.Layout();               // the model's tap sites
//   int site = layout.Site(2, NodeLocation::kMlpPostAct);
#ifndef CIRCUIT_CORE_NODES_H_
#define CIRCUIT_CORE_NODES_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace circuit {

// In computation order within a layer; kFinalResid comes after the last layer.
enum class NodeLocation : int8_t {
  kAttnActIn = 0,      // attention residual read, width d_in
  kAttnQ = 1,          // query channels, width A = n_head * d_head
  kAttnK = 2,          // key channels, width A
  kAttnV = 3,          // value channels, width A
  kAttnResidDelta = 4, // attention residual write, width d_model
  kMlpActIn = 5,       // MLP residual read, width d_in
  kMlpPostAct = 6,     // MLP neurons, width d_mlp
  kMlpResidDelta = 7,  // MLP residual write, width d_model
  kFinalResid = 8,     // residual read by the unembedding, width d_model (both archs)
  // BDH, per layer in computation order (docs/bdh.md):
  kBdhResidIn = 9,     // "resid_in": the residual stream as the layer reads it
                       // (the encoder's input, attention's values; not the skip), width D
  kBdhXNeuron = 10,    // "x_neuron": x-neurons ReLU(x E_h), width n_head * N
  kBdhAttnRead = 11,   // "attn_read": attention read-out LN(yKV), width n_head * D
  kBdhYNeuron = 12,    // "y_neuron": y-neurons ReLU(yKV E_v,h), width n_head * N
  kBdhGate = 13,       // "gate": x-neurons times y-neurons, the decoder's input, n_head * N
};
// The GPT's locations (kAllNodeLocations); kNumLocationNames counts BDH's too.
inline constexpr int kNumNodeLocations = 9;
inline constexpr int kNumLayerLocations = 8;  // the GPT's, all but kFinalResid
inline constexpr int kNumLocationNames = 14;

inline constexpr std::array<NodeLocation, kNumNodeLocations> kAllNodeLocations = {
    NodeLocation::kAttnActIn,      NodeLocation::kAttnQ,     NodeLocation::kAttnK,
    NodeLocation::kAttnV,          NodeLocation::kAttnResidDelta,
    NodeLocation::kMlpActIn,       NodeLocation::kMlpPostAct,
    NodeLocation::kMlpResidDelta,  NodeLocation::kFinalResid};

// "attn.act_in", "attn.q", ..., "final_resid", "resid_in", ..., "gate".
std::string_view LocationName(NodeLocation loc);
// Inverse of LocationName; false when `name` is not a location.
bool ParseNodeLocation(std::string_view name, NodeLocation* loc);
// The AbsTopK location key of the release's `afrac_loctypes` ("attn_in", "attn_q",
// ..., "mlp_neuron"); empty for kFinalResid, which has no activation sparsity.
std::string_view ActivationSparsityKey(NodeLocation loc);

// One node. For kFinalResid, layer == n_layer.
struct Node {
  int32_t layer = 0;
  NodeLocation location = NodeLocation::kAttnActIn;
  int32_t index = 0;

  friend bool operator==(const Node& a, const Node& b) {
    return a.layer == b.layer && a.location == b.location && a.index == b.index;
  }
  friend bool operator<(const Node& a, const Node& b) {
    if (a.layer != b.layer) return a.layer < b.layer;
    if (a.location != b.location) return a.location < b.location;
    return a.index < b.index;
  }
};

// "L3 mlp.post_act 417"
std::string NodeLabel(const Node& node);

// One place where the forward pass hands an activation to the taps.
struct SiteSpec {
  int32_t layer = 0;  // n_layer for kFinalResid
  NodeLocation location = NodeLocation::kAttnActIn;
  int32_t width = 0;
};

// The tap sites of a model, in forward order: n_layer layers of the same
// locations (`per_layer`, each with its width), then final_resid. Site
// numbers: layer * per_layer.size() + slot, final_resid last. The GPT's
// (ModelConfig::Layout) number as circuit::TapSiteIndex always has.
class SiteLayout {
 public:
  SiteLayout() = default;
  SiteLayout(int n_layer, std::vector<SiteSpec> per_layer, int final_width);

  int n_layer() const { return n_layer_; }
  int num_sites() const { return n_layer_ * per_layer() + 1; }
  int per_layer() const { return static_cast<int>(locations_.size()); }
  // The site of (layer, loc); -1 when the model has no such location (or the
  // layer is out of range). kFinalResid ignores `layer`.
  int Site(int layer, NodeLocation loc) const;
  SiteSpec At(int site) const;
  int width(int site) const { return At(site).width; }
  bool Has(NodeLocation loc) const { return Slot(loc) >= 0; }

 private:
  int Slot(NodeLocation loc) const;  // position in a layer, per_layer() for final_resid, -1: none

  int n_layer_ = 0;
  std::vector<NodeLocation> locations_;
  std::vector<int32_t> widths_;
  int32_t final_width_ = 0;
};

}  // namespace circuit

#endif  // CIRCUIT_CORE_NODES_H_
