// The optional /explanations/ group of a circuit file (docs/formats.md,
// "Node explanations"), written and read by circuit_file.cc. Every per-node
// list is stored flat with offsets, so h5py reads node i's entries as
// values[offsets[i]:offsets[i + 1]].
#ifndef CIRCUIT_EXPORT_SRC_EXPLANATIONS_FILE_H_
#define CIRCUIT_EXPORT_SRC_EXPLANATIONS_FILE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "circuit/core/explanation.h"
#include "circuit/core/h5.h"

namespace circuit::internal {

inline constexpr char kExplanationsGroup[] = "/explanations";

// Writes `e` (e.nodes.size() must equal n_nodes, the rows of /nodes) under /explanations.
absl::Status WriteExplanations(H5Writer& w, const CircuitExplanations& e, int64_t n_nodes);

// Reads /explanations for a circuit of n_nodes nodes. Errors name the file and
// the dataset: missing datasets, wrong types, offsets that are not a
// non-decreasing run from 0 to the number of values, or a node count that differs.
absl::StatusOr<CircuitExplanations> ReadExplanations(const H5Reader& r, int64_t n_nodes);

}  // namespace circuit::internal

#endif  // CIRCUIT_EXPORT_SRC_EXPLANATIONS_FILE_H_
