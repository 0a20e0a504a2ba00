// BDH checkpoints and import (circuit/core/bdh_checkpoint.h; the file layout
// is documented in docs/formats.md).
#include "circuit/core/bdh_checkpoint.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "io/checkpoint_internal.h"
#include "circuit/core/arch.h"
#include "circuit/core/h5.h"
#include "circuit/core/release_io.h"
#include "circuit/core/status.h"

namespace circuit {
namespace {

constexpr char kCompiledPrefix[] = "_orig_mod.";  // torch.compile's wrapper
constexpr char kRopeBuffer[] = "attn.freqs";

absl::Status WriteBdhConfig(H5Writer& w, const BdhConfig& c) {
  for (auto [name, value] : {std::pair<const char*, int64_t>{"n_layer", c.n_layer},
                             {"d_model", c.d_model},
                             {"n_head", c.n_head},
                             {"n_neuron", c.n_neuron},
                             {"vocab_size", c.vocab_size},
                             {"n_ctx", c.n_ctx}}) {
    CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", name, value));
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "dropout", c.dropout));
  return w.WriteAttribute("/", "tokenizer", c.tokenizer);
}

absl::StatusOr<BdhConfig> ReadBdhConfig(const H5Reader& r) {
  BdhConfig c;
  for (auto [name, field] : {std::pair<const char*, int*>{"n_layer", &c.n_layer},
                             {"d_model", &c.d_model},
                             {"n_head", &c.n_head},
                             {"n_neuron", &c.n_neuron},
                             {"vocab_size", &c.vocab_size},
                             {"n_ctx", &c.n_ctx}}) {
    CIRCUIT_ASSIGN_OR_RETURN(int64_t v, r.ReadIntAttribute("/", name));
    if (v < 0 || v > (int64_t{1} << 30)) {
      return absl::InvalidArgumentError(absl::StrCat(r.path(), ": /@", name, ": bad value ", v));
    }
    *field = static_cast<int>(v);
  }
  CIRCUIT_ASSIGN_OR_RETURN(c.dropout, r.ReadDoubleAttribute("/", "dropout"));
  CIRCUIT_ASSIGN_OR_RETURN(c.tokenizer, r.ReadStringAttribute("/", "tokenizer"));
  CIRCUIT_RETURN_IF_ERROR(Annotate(c.Validate(), r.path()));
  return c;
}

// The tokenizer of an import: the given directory, else the fallback when its
// size matches.
absl::StatusOr<Tokenizer> ImportTokenizer(const BdhImportOptions& o, int vocab_size,
                                          std::vector<std::string>* notes) {
  const std::string dir = o.tokenizer_dir.empty() ? o.fallback_tokenizer_dir : o.tokenizer_dir;
  if (dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no tokenizer given for a vocabulary of ", vocab_size, " tokens"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(Tokenizer tok,
                           Tokenizer::FromFiles(dir + "/encoder.json", dir + "/vocab.bpe"));
  if (tok.vocab_size() != vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": tokenizer has ", tok.vocab_size(),
                                                   " tokens, the model's vocabulary is ",
                                                   vocab_size));
  }
  if (o.tokenizer_dir.empty()) notes->push_back("tokenizer: the bundled one (" + dir + ")");
  return tok;
}

}  // namespace

absl::Status SaveBdhModel(const std::string& path, const BdhModel& model,
                          const Tokenizer& tokenizer, const TrainingInfo& training) {
  if (tokenizer.vocab_size() != model.config().vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tokenizer has ", tokenizer.vocab_size(),
                                                   " tokens, model vocab_size is ",
                                                   model.config().vocab_size));
  }
  CIRCUIT_ASSIGN_OR_RETURN(H5Writer w, H5Writer::Create(path));
  CIRCUIT_RETURN_IF_ERROR(internal::WriteModelHeader(w, kArchBdh, model.parameters()));
  CIRCUIT_RETURN_IF_ERROR(WriteBdhConfig(w, model.config()));
  CIRCUIT_RETURN_IF_ERROR(internal::WriteWeights(w, model.parameters()));
  CIRCUIT_RETURN_IF_ERROR(internal::WriteTokenizer(w, tokenizer));
  CIRCUIT_RETURN_IF_ERROR(internal::WriteTraining(w, training, model.parameters()));
  return w.Commit();
}

absl::StatusOr<BdhModelFile> LoadBdhModel(const std::string& path, torch::Device device) {
  CIRCUIT_ASSIGN_OR_RETURN(H5Reader r, H5Reader::Open(path));
  CIRCUIT_RETURN_IF_ERROR(r.CheckFormat(kModelFormat, kModelFormatVersion));
  CIRCUIT_RETURN_IF_ERROR(RequireArch(r, kArchBdh));
  CIRCUIT_ASSIGN_OR_RETURN(BdhConfig config, ReadBdhConfig(r));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<NamedTensor> tensors,
                           internal::ReadWeights(r, BdhModel::ParameterShapes(config)));
  CIRCUIT_ASSIGN_OR_RETURN(Tokenizer tokenizer, internal::ReadTokenizer(r, config.vocab_size));
  CIRCUIT_ASSIGN_OR_RETURN(TrainingInfo training, internal::ReadTraining(r));
  absl::StatusOr<BdhModel> model = BdhModel::FromTensors(config, std::move(tensors), device);
  if (!model.ok()) return Annotate(model.status(), path);
  std::string digest = internal::WeightsDigest(model->parameters());
  return BdhModelFile{
      std::move(*model), std::move(tokenizer), std::move(training), path, std::move(digest), {}};
}

absl::StatusOr<BdhModelFile> ImportBdhStateDict(const std::string& state_dict_path,
                                                const BdhImportOptions& options,
                                                torch::Device device) {
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<NamedTensor> read, ReadStateDict(state_dict_path));
  std::vector<std::string> notes;
  std::map<std::string, torch::Tensor> by_name;
  bool compiled = false;
  for (NamedTensor& t : read) {
    std::string name = t.name;
    if (name.rfind(kCompiledPrefix, 0) == 0) {
      name = name.substr(sizeof(kCompiledPrefix) - 1);
      compiled = true;
    }
    if (!by_name.emplace(name, t.tensor).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(state_dict_path, ": tensor '", name, "' appears twice"));
    }
  }
  if (compiled) notes.push_back("stripped the torch.compile prefix '_orig_mod.' from the keys");

  // The shape comes from the encoder (H, D, N) and the embedding (V, D).
  auto need = [&](const std::string& name, int64_t dims) -> absl::StatusOr<torch::Tensor> {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(state_dict_path, ": no tensor '", name, "': not a BDH state dict"));
    }
    if (it->second.dim() != dims) {
      return absl::InvalidArgumentError(absl::StrCat(state_dict_path, ": tensor '", name, "' has ",
                                                     it->second.dim(), " dimensions, expected ",
                                                     dims));
    }
    return it->second;
  };
  CIRCUIT_ASSIGN_OR_RETURN(torch::Tensor encoder, need("encoder", 3));
  CIRCUIT_ASSIGN_OR_RETURN(torch::Tensor embed, need("embed.weight", 2));
  for (const torch::Tensor& t : {encoder, embed}) {
    for (int64_t size : t.sizes()) {
      if (size > (int64_t{1} << 30)) {
        return absl::InvalidArgumentError(
            absl::StrCat(state_dict_path, ": a dimension of ", size, " is too large"));
      }
    }
  }
  BdhConfig config;
  config.n_layer = options.n_layer;
  config.n_ctx = options.n_ctx;
  config.dropout = options.dropout;
  config.n_head = static_cast<int>(encoder.size(0));
  config.d_model = static_cast<int>(encoder.size(1));
  config.n_neuron = static_cast<int>(encoder.size(2));
  config.vocab_size = static_cast<int>(embed.size(0));
  CIRCUIT_RETURN_IF_ERROR(Annotate(config.Validate(), state_dict_path));

  // The RoPE buffer is derived data: check it, do not keep it.
  auto freqs = by_name.find(kRopeBuffer);
  if (freqs == by_name.end()) {
    notes.push_back("no RoPE buffer 'attn.freqs' in the file: computed from N");
  } else {
    const torch::Tensor expected = BdhRopeFrequencies(config.n_neuron);
    if (freqs->second.numel() != config.n_neuron ||
        !torch::allclose(freqs->second.reshape({-1}), expected, /*rtol=*/1e-6, /*atol=*/0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(state_dict_path, ": tensor 'attn.freqs' (shape (",
                       absl::StrJoin(freqs->second.sizes().vec(), ", "),
                       ")) is not the reference's RoPE frequencies for N = ", config.n_neuron));
    }
    by_name.erase(freqs);
  }
  std::vector<NamedTensor> tensors;
  for (auto& [name, t] : by_name) tensors.push_back({name, t});
  absl::StatusOr<BdhModel> model = BdhModel::FromTensors(config, std::move(tensors), device);
  if (!model.ok()) return Annotate(model.status(), state_dict_path);

  CIRCUIT_ASSIGN_OR_RETURN(Tokenizer tokenizer,
                           ImportTokenizer(options, config.vocab_size, &notes));
  TrainingInfo training;
  training.command = "circuit import --arch bdh " + state_dict_path;
  std::string digest = internal::WeightsDigest(model->parameters());
  return BdhModelFile{std::move(*model), std::move(tokenizer), std::move(training), "",
                      std::move(digest), std::move(notes)};
}

}  // namespace circuit
