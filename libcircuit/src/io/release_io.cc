// Release model import/export. libtorch's c10::Error stops at this file's
// boundary; the pickle inside the zip is handled by torch_pickle.cc, because
// libtorch 1.13's unpickler rejects Python's state-dict pickles.
#include "circuit/core/release_io.h"

#include <caffe2/serialize/inline_container.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"
#include "io/torch_pickle.h"

namespace circuit {
namespace {

namespace fs = std::filesystem;
using internal::PickledTensor;

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return text.str();
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& contents) {
  const std::string tmp = absl::StrCat(path, ".tmp-", getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write"));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot rename: ", ec.message()));
  return absl::OkStatus();
}

std::string TorchMessage(const c10::Error& e) {
  std::string m = e.what_without_backtrace();
  if (const size_t nl = m.find('\n'); nl != std::string::npos) m.resize(nl);
  return m;
}

absl::StatusOr<torch::ScalarType> StorageDtype(const std::string& type) {
  if (type == "FloatStorage") return torch::kFloat32;
  if (type == "DoubleStorage") return torch::kFloat64;
  if (type == "HalfStorage") return torch::kFloat16;
  if (type == "BFloat16Storage") return torch::kBFloat16;
  return absl::InvalidArgumentError(absl::StrCat("storage type ", type, " is not a float type"));
}

// Checks that a strided view stays inside its storage.
bool ViewInBounds(const PickledTensor& t) {
  int64_t last = t.offset;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    if (t.sizes[d] == 0) return t.offset <= t.storage_numel;
    last += (t.sizes[d] - 1) * t.strides[d];
  }
  return t.offset >= 0 && last < t.storage_numel;
}

// Reads every (non-skipped) tensor; runs inside a try block for c10::Error.
absl::StatusOr<std::vector<NamedTensor>> ReadArchive(
    caffe2::serialize::PyTorchStreamReader& reader,
    const std::function<bool(const std::string&)>& skip) {
  if (!reader.hasRecord("data.pkl")) {
    return absl::InvalidArgumentError(
        "no data.pkl in the archive: not a torch.save() file (a TorchScript model?)");
  }
  if (reader.hasRecord("byteorder")) {
    auto [ptr, n] = reader.getRecord("byteorder");
    if (std::string(static_cast<const char*>(ptr.get()), n) != "little") {
      return absl::InvalidArgumentError("big-endian checkpoints are not supported");
    }
  }
  auto [pkl, pkl_size] = reader.getRecord("data.pkl");
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<PickledTensor> entries,
                           internal::ParseStateDictPickle(
                               absl::string_view(static_cast<const char*>(pkl.get()), pkl_size)));

  std::map<std::string, torch::Tensor> storages;  // record key -> (numel) tensor
  std::vector<NamedTensor> out;
  for (const PickledTensor& e : entries) {
    if (skip && skip(e.name)) continue;
    auto dtype = StorageDtype(e.storage_type);
    if (!dtype.ok()) return Annotate(dtype.status(), absl::StrCat("tensor '", e.name, "'"));
    auto it = storages.find(e.storage_key);
    if (it == storages.end()) {
      const std::string record = "data/" + e.storage_key;
      if (!reader.hasRecord(record)) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", e.name, "': storage record ", record, " is missing"));
      }
      auto [data, size] = reader.getRecord(record);
      const int64_t expected = e.storage_numel * internal::StorageElementSize(e.storage_type);
      if (static_cast<int64_t>(size) != expected) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", e.name, "': storage ", record,
                                                       " has ", size, " bytes, expected ",
                                                       expected));
      }
      auto holder = std::make_shared<at::DataPtr>(std::move(data));
      torch::Tensor storage = torch::from_blob(
          holder->get(), {e.storage_numel}, [holder](void*) {}, torch::dtype(*dtype));
      it = storages.emplace(e.storage_key, storage).first;
    } else if (it->second.scalar_type() != *dtype) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", e.name, "': storage ", e.storage_key, " read with two dtypes"));
    }
    if (!ViewInBounds(e)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", e.name, "': view lies outside its storage"));
    }
    torch::Tensor t = it->second.as_strided(e.sizes, e.strides, e.offset);
    if (*dtype != torch::kFloat32) t = t.to(torch::kFloat32);
    out.push_back({e.name, std::move(t)});
  }
  return out;
}

std::string Join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

}  // namespace

absl::StatusOr<std::vector<NamedTensor>> ReadStateDict(
    const std::string& path, const std::function<bool(const std::string&)>& skip) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  if (static_cast<unsigned char>(magic[0]) == 0x80) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": legacy torch.save format (PyTorch < 1.6) is not supported; re-save it with "
                     "torch.save(torch.load(path), path) in a newer PyTorch"));
  }
  if (std::string(magic, 4) != std::string("PK\x03\x04", 4)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a torch.save() checkpoint (not a zip archive)"));
  }
  in.close();
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    absl::StatusOr<std::vector<NamedTensor>> tensors = ReadArchive(reader, skip);
    if (!tensors.ok()) return Annotate(tensors.status(), path);
    return tensors;
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a readable torch.save() archive: ", TorchMessage(e)));
  }
}

absl::Status WriteStateDict(const std::string& path, const std::vector<NamedTensor>& tensors) {
  const std::string tmp = absl::StrCat(path, ".tmp-", getpid());
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot create ", tmp));
  // The writer's destructor finishes the archive when writeEndOfFile() was not
  // reached; had the write callback reported a failure there, it would throw
  // during unwinding and abort. So the callback always claims success and a
  // failed write (disk full) is remembered and reported after the writer is gone.
  bool write_failed = false;
  auto remove_tmp = [&tmp, &out] {
    out.close();
    std::error_code ec;
    fs::remove(tmp, ec);
  };
  try {
    caffe2::serialize::PyTorchStreamWriter writer([&out, &write_failed](const void* buf,
                                                                        size_t n) -> size_t {
      if (!write_failed) {
        out.write(static_cast<const char*>(buf), static_cast<std::streamsize>(n));
        write_failed = !out;
      }
      return n;
    });
    std::vector<PickledTensor> entries;
    std::vector<torch::Tensor> data;  // (numel) float32 CPU, in entry order
    for (size_t i = 0; i < tensors.size(); ++i) {
      torch::Tensor t = tensors[i].tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
      PickledTensor e;
      e.name = tensors[i].name;
      e.storage_key = std::to_string(i);
      e.storage_type = "FloatStorage";
      e.location = "cpu";
      e.storage_numel = t.numel();
      e.sizes = t.sizes().vec();
      e.strides = t.strides().vec();
      entries.push_back(std::move(e));
      data.push_back(std::move(t));
    }
    // Record order as torch.save: data.pkl, byteorder, the storages; version at the end.
    const std::string pkl = internal::WriteStateDictPickle(entries);
    writer.writeRecord("data.pkl", pkl.data(), pkl.size());
    writer.writeRecord("byteorder", "little", 6);
    for (size_t i = 0; i < data.size(); ++i) {
      writer.writeRecord("data/" + entries[i].storage_key, data[i].data_ptr(),
                         data[i].numel() * sizeof(float));
      data[i] = torch::Tensor();  // a GPU model's CPU copy is freed as soon as written
    }
    writer.writeEndOfFile();
  } catch (const c10::Error& e) {
    remove_tmp();
    return absl::DataLossError(absl::StrCat(path, ": write failed: ", TorchMessage(e)));
  } catch (const std::bad_alloc&) {
    remove_tmp();
    return absl::ResourceExhaustedError(absl::StrCat(path, ": out of memory while writing"));
  }
  out.close();
  std::error_code ec;
  if (write_failed || !out) {
    fs::remove(tmp, ec);
    return absl::DataLossError(absl::StrCat(path, ": write failed (disk full?)"));
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(tmp, ec);
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot rename: ", why));
  }
  return absl::OkStatus();
}

absl::StatusOr<ReleaseModel> ImportReleaseModel(const std::string& config_json_path,
                                                const std::string& state_dict_path,
                                                const std::string& tokenizer_dir,
                                                const std::string& fallback_tokenizer_dir,
                                                torch::Device device) {
  CIRCUIT_ASSIGN_OR_RETURN(std::string json_text, ReadTextFile(config_json_path));
  absl::StatusOr<ReleaseConfig> rc = ParseReleaseConfig(json_text);
  if (!rc.ok()) return Annotate(rc.status(), config_json_path);
  ModelConfig& config = rc->config;
  std::vector<std::string> notes = rc->notes;

  // Non-flash attention keeps a causal-mask buffer per layer: not a weight.
  static const std::regex kMaskBuffer(R"(transformer\.h\.\d+\.attn\.bias)");
  int skipped = 0;
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<NamedTensor> tensors,
                           ReadStateDict(state_dict_path, [&](const std::string& name) {
                             const bool mask = std::regex_match(name, kMaskBuffer);
                             skipped += mask;
                             return mask;
                           }));
  if (skipped > 0)
    notes.push_back(absl::StrCat("ignored ", skipped, " causal-mask buffers (attn.bias)"));

  auto find = [&tensors](const std::string& name) -> const NamedTensor* {
    for (const NamedTensor& t : tensors) {
      if (t.name == name) return &t;
    }
    return nullptr;
  };
  if (find("final_logits_bias") == nullptr) {
    tensors.push_back({"final_logits_bias", torch::zeros({config.vocab_size})});
    notes.push_back("final_logits_bias: absent, zeros used");
  }
  if (rc->tied_unembed && find("lm_head.weight") == nullptr) {
    if (const NamedTensor* wte = find("transformer.wte.weight")) {
      tensors.push_back({"lm_head.weight", wte->tensor.clone()});
    }
  }
  if (!rc->bias) {
    for (int l = 0; l < config.n_layer; ++l) {
      const std::string p = absl::StrCat("transformer.h.", l, ".");
      for (auto [key, width] :
           {std::pair<const char*, int>{"attn.c_attn.bias", 3 * config.attn_width()},
            {"attn.c_proj.bias", config.d_model},
            {"mlp.c_fc.bias", config.d_mlp},
            {"mlp.c_proj.bias", config.d_model}}) {
        if (find(p + key) == nullptr) tensors.push_back({p + key, torch::zeros({width})});
      }
    }
  }
  // The release applies the sink only on its flash path; a model saved without
  // flash has no sink logits and runs without a sink.
  if (config.attn_sink && !rc->flash &&
      find("transformer.h.0.attn.attn_imp.sink_logit") == nullptr) {
    config.attn_sink = false;
    notes.push_back(
        "sink: true but flash: false and no sink logits in the file: imported without a sink");
  }

  absl::StatusOr<Model> model = Model::FromTensors(config, std::move(tensors), device);
  if (!model.ok()) return Annotate(model.status(), state_dict_path);
  for (const NamedTensor& p : model->parameters()) {
    if (!torch::isfinite(p.tensor).all().item<bool>()) {
      return absl::InvalidArgumentError(
          absl::StrCat(state_dict_path, ": tensor '", p.name, "' contains NaN or infinite values"));
    }
  }

  std::string dir = tokenizer_dir;
  if (dir.empty()) {
    if (fallback_tokenizer_dir.empty()) {
      return absl::InvalidArgumentError(
          "no tokenizer given: pass the directory with the release's encoder.json and vocab.bpe");
    }
    dir = fallback_tokenizer_dir;
  }
  absl::StatusOr<Tokenizer> tokenizer =
      Tokenizer::FromFiles(Join(dir, "encoder.json"), Join(dir, "vocab.bpe"));
  if (!tokenizer.ok()) {
    if (!tokenizer_dir.empty()) return tokenizer.status();
    return Annotate(tokenizer.status(),
                    "no tokenizer given (pass the release's encoder.json and vocab.bpe directory) "
                    "and the bundled one cannot be read");
  }
  if (tokenizer->vocab_size() != config.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": tokenizer has ", tokenizer->vocab_size(),
                     " tokens, the model's vocab_size is ", config.vocab_size,
                     tokenizer_dir.empty()
                         ? " (no tokenizer directory given; pass the release's tinypython files)"
                         : ""));
  }
  if (tokenizer_dir.empty()) {
    notes.push_back(absl::StrCat(
        "tokenizer: none given, using the bundled one in ", dir, " (", tokenizer->vocab_size(),
        " tokens, same size as the model's); a model trained with another tokenizer (the "
        "release's use tinypython_2k) needs --tokenizer with that tokenizer's files"));
  }
  TrainingInfo training;
  training.command =
      absl::StrCat("circuit import --config ", config_json_path, " --weights ", state_dict_path);
  return ReleaseModel{std::move(*model), std::move(*tokenizer), std::move(training), dir,
                      std::move(notes)};
}

absl::Status ExportReleaseModel(const Model& model, const Tokenizer& tokenizer,
                                const std::string& dir) {
  CIRCUIT_ASSIGN_OR_RETURN(std::string json, ReleaseConfigJson(model.config()));
  if (tokenizer.vocab_size() != model.config().vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer has ", tokenizer.vocab_size(),
                                                   " tokens, the model's vocab_size is ",
                                                   model.config().vocab_size));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(dir, ": cannot create: ", ec.message()));
  CIRCUIT_RETURN_IF_ERROR(WriteFileAtomic(Join(dir, "beeg_config.json"), json));
  CIRCUIT_RETURN_IF_ERROR(WriteStateDict(Join(dir, "final_model.pt"), model.parameters()));
  CIRCUIT_RETURN_IF_ERROR(WriteFileAtomic(Join(dir, "encoder.json"), tokenizer.EncoderJson()));
  CIRCUIT_RETURN_IF_ERROR(WriteFileAtomic(Join(dir, "vocab.bpe"), tokenizer.VocabBpe()));
  return absl::OkStatus();
}

}  // namespace circuit
