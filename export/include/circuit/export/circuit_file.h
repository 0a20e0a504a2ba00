// Circuit files (format "circuit.circuit", version 1): one extracted circuit with
// its provenance and figures, in HDF5 so that h5py and other tools read it.
// Every attribute and dataset is documented in docs/formats.md ("Circuit file").
//
//   CIRCUIT_RETURN_IF_ERROR(WriteCircuitFile("out/circuit.h5", circuit));
//   CIRCUIT_ASSIGN_OR_RETURN(Circuit c, ReadCircuitFile("out/circuit.h5"));
//   // c == circuit, field for field (floats and doubles bit-exact)
#ifndef CIRCUIT_EXPORT_CIRCUIT_FILE_H_
#define CIRCUIT_EXPORT_CIRCUIT_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "circuit/core/circuit.h"

namespace circuit {

inline constexpr char kCircuitFormat[] = "circuit.circuit";
inline constexpr int64_t kCircuitFormatVersion = 1;

// Writes `circuit` to `path` (a temporary file renamed into place), with the
// group /explanations/ when circuit.explanations.present(). Errors:
// InvalidArgument when the directory is not writable, the circuit's
// loss_vs_k_k and loss_vs_k_loss differ in length, or explanations do not have
// one entry per node; Internal on a write failure.
absl::Status WriteCircuitFile(const std::string& path, const Circuit& circuit);

// Reads and validates a circuit file. Errors: NotFound when `path` does not
// exist; otherwise InvalidArgument, the message starting with the file name and
// naming the dataset or attribute: not HDF5 or truncated, wrong `format` or
// `format_version`, a missing attribute or dataset, a wrong type, dataset
// lengths that disagree with n_nodes / n_edges, an unknown location name, a
// layer out of range (final_resid must sit at n_layer), nodes not sorted by
// (layer, location, index) or repeated, an edge endpoint out of range, or an
// /explanations/ group (optional; Circuit::explanations stays empty without
// it) whose lists do not fit together.
absl::StatusOr<Circuit> ReadCircuitFile(const std::string& path);

}  // namespace circuit

#endif  // CIRCUIT_EXPORT_CIRCUIT_FILE_H_
