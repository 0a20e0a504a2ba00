// A model file of either architecture, for the commands that work on every
// one through the TapModel seam (taps.h): extract, ablate, draw's defaults.
//
//   CIRCUIT_ASSIGN_OR_RETURN(AnyModelFile file, LoadAnyModel("bdh.h5"));
//   const TapModel& model = *file.model;     // a Model or a BdhModel
//   if (const Model* gpt = file.gpt()) ...;  // GPT-only steps (explanations)
#ifndef CIRCUIT_CORE_ANY_MODEL_H_
#define CIRCUIT_CORE_ANY_MODEL_H_

#include <torch/torch.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/taps.h"
#include "circuit/core/tokenizer.h"

namespace circuit {

struct AnyModelFile {
  std::shared_ptr<const TapModel> model;
  Tokenizer tokenizer;
  TrainingInfo training;
  std::string path;
  std::string digest;  // of the weights; names the model in circuits and caches
  std::string arch;    // kArchGpt or kArchBdh

  const Model* gpt() const { return dynamic_cast<const Model*>(model.get()); }
};

// Reads the file's `arch` (arch.h) and loads it with that architecture's
// loader; errors are theirs (one line naming the file and the problem).
absl::StatusOr<AnyModelFile> LoadAnyModel(const std::string& path,
                                          torch::Device device = torch::kCPU);

// The same file as a GPT ModelFile (copies share the tensors), for the steps
// that exist only for the GPT; InvalidArgument for another architecture:
// "<what> exists for GPT models only; <path> is a bdh model".
absl::StatusOr<ModelFile> GptFileOf(const AnyModelFile& file, const std::string& what);

}  // namespace circuit

#endif  // CIRCUIT_CORE_ANY_MODEL_H_
