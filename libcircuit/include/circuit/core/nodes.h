// Node addressing: the nine node locations of PAPER.md §1.2 and their names.
//
// A node is one scalar channel at one location of one layer, for every token
// position. The same strings name locations in code, files and diagrams:
//
//   NodeLocation loc;
//   if (ParseNodeLocation("mlp.post_act", &loc)) ...;  // loc == kMlpPostAct
//   LocationName(NodeLocation::kAttnQ) == "attn.q"
#ifndef CIRCUIT_CORE_NODES_H_
#define CIRCUIT_CORE_NODES_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

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
  kFinalResid = 8,     // residual read by the unembedding, width d_model
};
inline constexpr int kNumNodeLocations = 9;
inline constexpr int kNumLayerLocations = 8;  // all but kFinalResid

inline constexpr std::array<NodeLocation, kNumNodeLocations> kAllNodeLocations = {
    NodeLocation::kAttnActIn,      NodeLocation::kAttnQ,     NodeLocation::kAttnK,
    NodeLocation::kAttnV,          NodeLocation::kAttnResidDelta,
    NodeLocation::kMlpActIn,       NodeLocation::kMlpPostAct,
    NodeLocation::kMlpResidDelta,  NodeLocation::kFinalResid};

// "attn.act_in", "attn.q", ..., "final_resid".
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

}  // namespace circuit

#endif  // CIRCUIT_CORE_NODES_H_
