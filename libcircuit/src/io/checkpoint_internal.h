// The parts of a "circuit.model" file that every architecture writes the same
// way (docs/formats.md): /weights/, /tokenizer/, /training/. checkpoint.cc (GPT)
// and bdh_checkpoint.cc (BDH) add their config attributes around them. Private.
#ifndef CIRCUIT_LIBCIRCUIT_SRC_CHECKPOINT_INTERNAL_H_
#define CIRCUIT_LIBCIRCUIT_SRC_CHECKPOINT_INTERNAL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/h5.h"
#include "circuit/core/tokenizer.h"

namespace circuit::internal {

// ParameterDensity and WeightsDigest (circuit/core/checkpoint.h) of any
// architecture's parameter list.
std::vector<std::pair<std::string, double>> ParameterDensity(
    const std::vector<NamedTensor>& params);
std::string WeightsDigest(const std::vector<NamedTensor>& params);

// Root `format`, `format_version`, `arch`, `n_params` and `digest`.
absl::Status WriteModelHeader(H5Writer& w, const std::string& arch,
                              const std::vector<NamedTensor>& params);
// Every tensor as float32 under /weights/<name> (matrices chunked and deflated).
absl::Status WriteWeights(H5Writer& w, const std::vector<NamedTensor>& params);
// The tensors of `expected` (name, shape), each finite; a name under /weights/
// that `expected` lacks is an error.
absl::StatusOr<std::vector<NamedTensor>> ReadWeights(
    const H5Reader& r, const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected);
absl::Status WriteTokenizer(H5Writer& w, const Tokenizer& tokenizer);
// Errors: unreadable tokenizer, or one whose size is not `vocab_size`.
absl::StatusOr<Tokenizer> ReadTokenizer(const H5Reader& r, int vocab_size);
// /training/ with its curves and the density of `params`.
absl::Status WriteTraining(H5Writer& w, const TrainingInfo& t,
                           const std::vector<NamedTensor>& params);
// /training/ is provenance: absent fields are tolerated, wrong types are not.
absl::StatusOr<TrainingInfo> ReadTraining(const H5Reader& r);

}  // namespace circuit::internal

#endif  // CIRCUIT_LIBCIRCUIT_SRC_CHECKPOINT_INTERNAL_H_
