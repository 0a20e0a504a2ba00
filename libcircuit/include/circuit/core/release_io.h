// The paper's released models (openai/circuit_sparsity, PAPER.md §6) in and out:
// a model directory holds beeg_config.json (a GPTConfig), final_model.pt (a
// torch.save()d state dict) and, for the tokenizer, encoder.json + vocab.bpe.
// No Python is needed: the zip container is read and written with libtorch's
// PyTorchStream{Reader,Writer}, the state-dict pickle by a small strict reader.
//
//   CIRCUIT_ASSIGN_OR_RETURN(ReleaseModel rm,
//       ImportReleaseModel("csp_yolo2/beeg_config.json", "csp_yolo2/final_model.pt",
//       "tinypython"));
//   CIRCUIT_RETURN_IF_ERROR(SaveModel("yolo2.h5", rm.model, rm.tokenizer, rm.training));
//   CIRCUIT_RETURN_IF_ERROR(ExportReleaseModel(rm.model, rm.tokenizer, "exported/"));
#ifndef CIRCUIT_CORE_RELEASE_IO_H_
#define CIRCUIT_CORE_RELEASE_IO_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/model.h"
#include "circuit/core/release_config.h"
#include "circuit/core/tokenizer.h"

namespace circuit {

// An imported release model, ready for SaveModel().
struct ReleaseModel {
  Model model;
  Tokenizer tokenizer;
  TrainingInfo training;           // command = where it came from; nothing else is known
  std::string tokenizer_source;    // the directory the tokenizer was read from
  std::vector<std::string> notes;  // config defaults taken, keys and tensors ignored, fallbacks
};

// The tensors of a torch.save()d state dict, as float32 CPU tensors, in the
// file's order. Tensors are views of the file's storages (shared storages are
// read once). float16/bfloat16/float64 are converted; other dtypes are errors.
// `skip(name)` true leaves a tensor out without reading its data.
// Errors name the file: not a zip/torch.save archive, legacy (pre-1.6) format,
// a bad pickle, a storage record missing or of the wrong size, a view outside
// its storage.
absl::StatusOr<std::vector<NamedTensor>> ReadStateDict(
    const std::string& path, const std::function<bool(const std::string&)>& skip = nullptr);

// Writes tensors as torch.save(OrderedDict(...)) would (float32, one storage
// per tensor), atomically (temp file + rename); torch.load(weights_only=True)
// reads it.
absl::Status WriteStateDict(const std::string& path, const std::vector<NamedTensor>& tensors);

// Imports a release model.
//   config_json_path: beeg_config.json (see release_config.h for the mapping).
//   state_dict_path: final_model.pt. Every tensor is checked against the config
//     (missing, unexpected or wrong shape); non-flash causal-mask buffers
//     (transformer.h.N.attn.bias) are ignored; final_logits_bias is zero if absent.
//   tokenizer_dir: a directory with encoder.json and vocab.bpe, or empty to use
//     `fallback_tokenizer_dir` (the bundled tokenizer) when its vocabulary size
//     matches the model's — a note says so.
// Errors name the file and the key, shape or value at fault.
absl::StatusOr<ReleaseModel> ImportReleaseModel(const std::string& config_json_path,
                                                const std::string& state_dict_path,
                                                const std::string& tokenizer_dir,
                                                const std::string& fallback_tokenizer_dir = "",
                                                torch::Device device = torch::kCPU);

// Writes `dir`/beeg_config.json, final_model.pt, encoder.json and vocab.bpe
// (creating `dir`), each atomically, so that the release's
// circuit_sparsity.inference.gpt.load_model(dir) loads the model.
// Errors: a config the release cannot express, a tokenizer of the wrong size, I/O.
absl::Status ExportReleaseModel(const Model& model, const Tokenizer& tokenizer,
                                const std::string& dir);

}  // namespace circuit

#endif  // CIRCUIT_CORE_RELEASE_IO_H_
