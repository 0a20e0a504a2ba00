// Matching named tensors to an architecture's expected parameter list, shared
// by Model::FromTensors (GPT) and BdhModel::FromTensors. Private.
#ifndef CIRCUIT_LIBCIRCUIT_SRC_NAMED_TENSORS_H_
#define CIRCUIT_LIBCIRCUIT_SRC_NAMED_TENSORS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/model.h"

namespace circuit::internal {

// The tensors of `expected` (name, shape) taken from `given`, in expected's
// order, as contiguous float32 copies. Errors: a name given twice, a missing
// or misshapen tensor, or tensors left over ("unexpected tensor(s) for <what>: ...").
absl::StatusOr<std::vector<NamedTensor>> TensorsInOrder(
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected,
    std::vector<NamedTensor> given, const std::string& what);

}  // namespace circuit::internal

#endif  // CIRCUIT_LIBCIRCUIT_SRC_NAMED_TENSORS_H_
