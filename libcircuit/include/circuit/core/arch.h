// Which architecture a model file holds: the root attribute `arch` of a
// "circuit.model" file ("gpt", the weight-sparse transformer, or "bdh",
// Pathway's Dragon Hatchling). Files written before the attribute existed are
// GPT files. Torch-free, so that a command can choose its path before loading.
//
//   CIRCUIT_ASSIGN_OR_RETURN(std::string arch, ReadModelArch("model.h5"));
//   if (arch != kArchGpt) return ArchMismatch("model.h5", arch, kArchGpt);
#ifndef CIRCUIT_CORE_ARCH_H_
#define CIRCUIT_CORE_ARCH_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace circuit {

class H5Reader;

// Every model file, whatever its architecture: root `format` and its version.
inline constexpr char kModelFormat[] = "circuit.model";
inline constexpr int64_t kModelFormatVersion = 1;

inline constexpr char kArchGpt[] = "gpt";
inline constexpr char kArchBdh[] = "bdh";

// True for the architectures this build knows ("gpt", "bdh").
bool IsKnownArch(const std::string& arch);

// The `arch` of a model file: its root attribute, or "gpt" when absent.
// Errors: not an HDF5 file, not a "circuit.model" file, an `arch` that is not
// a string or names an unknown architecture.
absl::StatusOr<std::string> ReadModelArch(const std::string& path);
// The same, from a model file already open (its format already checked).
absl::StatusOr<std::string> ReadModelArch(const H5Reader& r);

// The model file open in `r` holds `wanted`, else ArchMismatch.
absl::Status RequireArch(const H5Reader& r, const std::string& wanted);

// InvalidArgument, one line: "<path>: a BDH model (arch 'bdh'); this needs a
// GPT model (arch 'gpt')" — for a command or loader given the other kind.
absl::Status ArchMismatch(const std::string& path, const std::string& found,
                          const std::string& wanted);

}  // namespace circuit

#endif  // CIRCUIT_CORE_ARCH_H_
