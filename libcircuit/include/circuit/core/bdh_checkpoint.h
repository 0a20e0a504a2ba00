// BDH model files and the import of pathwaycom/bdh checkpoints.
//
// A BDH file is a "circuit.model" file with root attribute arch = "bdh", its
// config as root attributes (n_layer, d_model, n_head, n_neuron, vocab_size,
// n_ctx, dropout, tokenizer) and the five shared tensors under /weights/ by
// their reference names; /tokenizer/ and /training/ as for the GPT
// (docs/formats.md). LoadModel (GPT) rejects BDH files and LoadBdhModel GPT
// files, each with one line naming the arch.
//
//   CIRCUIT_RETURN_IF_ERROR(SaveBdhModel("bdh.h5", model, tokenizer, training));
//   CIRCUIT_ASSIGN_OR_RETURN(BdhModelFile file, LoadBdhModel("bdh.h5"));
//   CIRCUIT_ASSIGN_OR_RETURN(BdhModelFile imported, ImportBdhStateDict("bdh.pt", options));
#ifndef CIRCUIT_CORE_BDH_CHECKPOINT_H_
#define CIRCUIT_CORE_BDH_CHECKPOINT_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/bdh.h"
#include "circuit/core/checkpoint.h"  // TrainingInfo
#include "circuit/core/tokenizer.h"

namespace circuit {

struct BdhModelFile {
  BdhModel model;
  Tokenizer tokenizer;
  TrainingInfo training;
  std::string path;
  std::string digest;              // of the weights (WeightsDigest)
  std::vector<std::string> notes;  // import only: what was assumed or ignored
};

// Writes atomically (temp file + rename). Errors: a tokenizer whose size is not
// the model's vocab_size, I/O.
absl::Status SaveBdhModel(const std::string& path, const BdhModel& model,
                          const Tokenizer& tokenizer, const TrainingInfo& training);

// Loads and validates a BDH file; errors name the file, the object and the
// mismatch (a GPT file: "<path>: a GPT model (arch 'gpt'); this needs a BDH
// model (arch 'bdh')").
absl::StatusOr<BdhModelFile> LoadBdhModel(const std::string& path,
                                          torch::Device device = torch::kCPU);

struct BdhImportOptions {
  // Not in the state dict (the layer's weights are shared): the reference's
  // default is 6.
  int n_layer = 6;
  int n_ctx = 256;                     // longest sequence the tools will feed it
  double dropout = 0.1;                // the reference's default; recorded, used only in training
  std::string tokenizer_dir;           // encoder.json + vocab.bpe; "" = the fallback
  std::string fallback_tokenizer_dir;  // used when its size matches the vocabulary
};

// A pathwaycom/bdh state dict (torch.save(model.state_dict())): "decoder",
// "encoder", "encoder_v", "lm_head", "embed.weight" and the RoPE buffer
// "attn.freqs", each possibly prefixed "_orig_mod." (torch.compile). The shape
// (D, n_head, N, vocab) comes from the tensors; the buffer must equal
// BdhRopeFrequencies(N). Errors name the file and the key, shape or value.
absl::StatusOr<BdhModelFile> ImportBdhStateDict(const std::string& state_dict_path,
                                                const BdhImportOptions& options,
                                                torch::Device device = torch::kCPU);

}  // namespace circuit

#endif  // CIRCUIT_CORE_BDH_CHECKPOINT_H_
