// Checkpoint I/O. The file layout is documented in docs/formats.md.
#include "circuit/core/checkpoint.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "circuit/core/arch.h"
#include "circuit/core/digest.h"
#include "circuit/core/h5.h"
#include "circuit/core/status.h"
#include "io/checkpoint_internal.h"

namespace circuit {
namespace {

torch::Tensor CpuFloat(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
}

absl::Status WriteConfig(H5Writer& w, const ModelConfig& c) {
  for (auto [name, value] : {std::pair<const char*, int64_t>{"n_layer", c.n_layer},
                             {"d_model", c.d_model}, {"n_head", c.n_head}, {"d_head", c.d_head},
                             {"d_mlp", c.d_mlp}, {"vocab_size", c.vocab_size}, {"n_ctx", c.n_ctx},
                             {"d_pos_emb", c.d_pos_emb}, {"attn_sink", c.attn_sink ? 1 : 0},
                             {"bigram_table", c.bigram_table ? 1 : 0}}) {
    CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", name, value));
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "afrac", c.afrac));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "afrac_loctypes", c.afrac_loctypes));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "activation", c.activation));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "tokenizer", c.tokenizer));
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> ReadConfig(const H5Reader& r) {
  ModelConfig c;
  for (auto [name, field] :
       {std::pair<const char*, int*>{"n_layer", &c.n_layer}, {"d_model", &c.d_model},
        {"n_head", &c.n_head}, {"d_head", &c.d_head}, {"d_mlp", &c.d_mlp},
        {"vocab_size", &c.vocab_size}, {"n_ctx", &c.n_ctx}, {"d_pos_emb", &c.d_pos_emb}}) {
    CIRCUIT_ASSIGN_OR_RETURN(int64_t v, r.ReadIntAttribute("/", name));
    if (v < 0 || v > (int64_t{1} << 30)) {
      return absl::InvalidArgumentError(absl::StrCat(r.path(), ": /@", name, ": bad value ", v));
    }
    *field = static_cast<int>(v);
  }
  CIRCUIT_ASSIGN_OR_RETURN(int64_t sink, r.ReadIntAttribute("/", "attn_sink"));
  CIRCUIT_ASSIGN_OR_RETURN(int64_t bigram, r.ReadIntAttribute("/", "bigram_table"));
  c.attn_sink = sink != 0;
  c.bigram_table = bigram != 0;
  CIRCUIT_ASSIGN_OR_RETURN(c.afrac, r.ReadDoubleAttribute("/", "afrac"));
  CIRCUIT_ASSIGN_OR_RETURN(c.afrac_loctypes, r.ReadStringAttribute("/", "afrac_loctypes"));
  CIRCUIT_ASSIGN_OR_RETURN(c.activation, r.ReadStringAttribute("/", "activation"));
  CIRCUIT_ASSIGN_OR_RETURN(c.tokenizer, r.ReadStringAttribute("/", "tokenizer"));
  CIRCUIT_RETURN_IF_ERROR(Annotate(c.Validate(), r.path()));
  return c;
}

}  // namespace

namespace internal {

absl::Status WriteModelHeader(H5Writer& w, const std::string& arch,
                              const std::vector<NamedTensor>& params) {
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "format", kModelFormat));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "format_version", kModelFormatVersion));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "arch", arch));
  int64_t n_params = 0;
  for (const NamedTensor& p : params) {
    if (p.name != "final_logits_bias") n_params += p.tensor.numel();  // a buffer in the release
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "n_params", n_params));
  return w.WriteAttribute("/", "digest", WeightsDigest(params));
}

absl::Status WriteWeights(H5Writer& w, const std::vector<NamedTensor>& params) {
  for (const NamedTensor& p : params) {
    torch::Tensor t = CpuFloat(p.tensor);
    H5Shape shape(t.sizes().begin(), t.sizes().end());
    CIRCUIT_RETURN_IF_ERROR(w.WriteFloats("/weights/" + p.name, shape,
                                          absl::MakeConstSpan(t.data_ptr<float>(), t.numel()),
                                          /*compress=*/t.dim() >= 2));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<NamedTensor>> ReadWeights(
    const H5Reader& r, const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected) {
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> present, r.ListGroup("/weights"));
  for (const std::string& name : present) {
    bool known = false;
    for (const auto& e : expected) known = known || e.first == name;
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat(r.path(), ": /weights/", name, ": not a tensor of this config"));
    }
  }
  std::vector<NamedTensor> tensors;
  for (const auto& [name, shape] : expected) {
    H5Shape h5_shape(shape.begin(), shape.end());
    CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> data, r.ReadFloats("/weights/" + name, h5_shape));
    torch::Tensor t = torch::from_blob(data.data(), shape, torch::kFloat32).clone();
    if (!torch::isfinite(t).all().item<bool>()) {
      return absl::InvalidArgumentError(
          absl::StrCat(r.path(), ": /weights/", name, ": contains NaN or infinite values"));
    }
    tensors.push_back({name, std::move(t)});
  }
  return tensors;
}

absl::Status WriteTokenizer(H5Writer& w, const Tokenizer& tokenizer) {
  CIRCUIT_RETURN_IF_ERROR(w.WriteString("/tokenizer/encoder_json", tokenizer.EncoderJson()));
  return w.WriteString("/tokenizer/vocab_bpe", tokenizer.VocabBpe());
}

absl::StatusOr<Tokenizer> ReadTokenizer(const H5Reader& r, int vocab_size) {
  CIRCUIT_ASSIGN_OR_RETURN(std::string encoder, r.ReadString("/tokenizer/encoder_json"));
  CIRCUIT_ASSIGN_OR_RETURN(std::string merges, r.ReadString("/tokenizer/vocab_bpe"));
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromStrings(encoder, merges);
  if (!tokenizer.ok()) return Annotate(tokenizer.status(), r.path() + ": /tokenizer");
  if (tokenizer->vocab_size() != vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(r.path(), ": /tokenizer has ",
                                                   tokenizer->vocab_size(), " tokens, vocab_size is ",
                                                   vocab_size));
  }
  return tokenizer;
}

absl::Status WriteTraining(H5Writer& w, const TrainingInfo& t,
                           const std::vector<NamedTensor>& params) {
  const std::string g = "/training";
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g, "steps", t.steps));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g, "tokens", t.tokens));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g, "seed", static_cast<int64_t>(t.seed)));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g, "dense", int64_t{t.dense ? 1 : 0}));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g, "final_loss", t.final_loss));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g, "final_val_loss", t.final_val_loss));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g, "seconds", t.seconds));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g, "corpus_digest", t.corpus_digest));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g, "command", t.command));
  if (!t.init_from.empty()) CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g, "init_from", t.init_from));
  for (const auto& [name, value] : t.hyperparameters) {
    CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g + "/hyperparameters", name, value));
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(g + "/curve/step", t.curve_step));
  CIRCUIT_RETURN_IF_ERROR(w.WriteDoubles(g + "/curve/loss", t.curve_loss));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s(g + "/validation/step", t.val_step));
  CIRCUIT_RETURN_IF_ERROR(w.WriteDoubles(g + "/validation/loss", t.val_loss));
  std::vector<std::string> names;
  std::vector<double> density;
  for (const auto& [name, value] : ParameterDensity(params)) {
    names.push_back(name);
    density.push_back(value);
  }
  CIRCUIT_RETURN_IF_ERROR(w.WriteStrings(g + "/density/name", names));
  return w.WriteDoubles(g + "/density/fraction", density);
}

absl::StatusOr<TrainingInfo> ReadTraining(const H5Reader& r) {
  TrainingInfo t;
  const std::string g = "/training";
  CIRCUIT_ASSIGN_OR_RETURN(const bool trained, r.Exists(g));
  if (!trained) return t;
  auto read_int = [&](const char* name, int64_t* out) -> absl::Status {
    CIRCUIT_ASSIGN_OR_RETURN(const bool has, r.HasAttribute(g, name));
    if (!has) return absl::OkStatus();
    CIRCUIT_ASSIGN_OR_RETURN(*out, r.ReadIntAttribute(g, name));
    return absl::OkStatus();
  };
  auto read_double = [&](const char* name, double* out) -> absl::Status {
    CIRCUIT_ASSIGN_OR_RETURN(const bool has, r.HasAttribute(g, name));
    if (!has) return absl::OkStatus();
    CIRCUIT_ASSIGN_OR_RETURN(*out, r.ReadDoubleAttribute(g, name));
    return absl::OkStatus();
  };
  auto read_string = [&](const char* name, std::string* out) -> absl::Status {
    CIRCUIT_ASSIGN_OR_RETURN(const bool has, r.HasAttribute(g, name));
    if (!has) return absl::OkStatus();
    CIRCUIT_ASSIGN_OR_RETURN(*out, r.ReadStringAttribute(g, name));
    return absl::OkStatus();
  };
  int64_t seed = 0, dense = 0;
  CIRCUIT_RETURN_IF_ERROR(read_int("steps", &t.steps));
  CIRCUIT_RETURN_IF_ERROR(read_int("tokens", &t.tokens));
  CIRCUIT_RETURN_IF_ERROR(read_int("seed", &seed));
  CIRCUIT_RETURN_IF_ERROR(read_int("dense", &dense));
  t.seed = static_cast<uint64_t>(seed);
  t.dense = dense != 0;
  CIRCUIT_RETURN_IF_ERROR(read_double("final_loss", &t.final_loss));
  CIRCUIT_RETURN_IF_ERROR(read_double("final_val_loss", &t.final_val_loss));
  CIRCUIT_RETURN_IF_ERROR(read_double("seconds", &t.seconds));
  CIRCUIT_RETURN_IF_ERROR(read_string("corpus_digest", &t.corpus_digest));
  CIRCUIT_RETURN_IF_ERROR(read_string("command", &t.command));
  CIRCUIT_RETURN_IF_ERROR(read_string("init_from", &t.init_from));
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_hyper, r.Exists(g + "/hyperparameters"));
  if (has_hyper) {
    // Attribute names are not listable through H5Reader; the trainer's known keys.
    for (const char* name : {"lr", "batch", "density", "embed_density", "weight_decay",
                             "anneal_start", "anneal_end", "warmup", "afrac", "min_per_channel"}) {
      CIRCUIT_ASSIGN_OR_RETURN(const bool has, r.HasAttribute(g + "/hyperparameters", name));
      if (has) {
        CIRCUIT_ASSIGN_OR_RETURN(t.hyperparameters[name],
                                 r.ReadDoubleAttribute(g + "/hyperparameters", name));
      }
    }
  }
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_curve, r.Exists(g + "/curve/step"));
  if (has_curve) {
    CIRCUIT_ASSIGN_OR_RETURN(t.curve_step, r.ReadInt64s(g + "/curve/step"));
    CIRCUIT_ASSIGN_OR_RETURN(t.curve_loss, r.ReadDoubles(g + "/curve/loss"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_validation, r.Exists(g + "/validation/step"));
  if (has_validation) {
    CIRCUIT_ASSIGN_OR_RETURN(t.val_step, r.ReadInt64s(g + "/validation/step"));
    CIRCUIT_ASSIGN_OR_RETURN(t.val_loss, r.ReadDoubles(g + "/validation/loss"));
  }
  return t;
}

}  // namespace internal

std::vector<std::pair<std::string, double>> ParameterDensity(const Model& model) {
  return internal::ParameterDensity(model.parameters());
}

std::vector<std::pair<std::string, double>> internal::ParameterDensity(
    const std::vector<NamedTensor>& params) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<std::string, double>> out;
  for (const NamedTensor& p : params) {
    const double n = static_cast<double>(p.tensor.numel());
    out.push_back({p.name, n == 0 ? 0.0 : p.tensor.ne(0).sum().item<double>() / n});
  }
  return out;
}

std::string WeightsDigest(const Model& model) { return internal::WeightsDigest(model.parameters()); }

std::string internal::WeightsDigest(const std::vector<NamedTensor>& params) {
  Digest d;
  for (const NamedTensor& p : params) {
    d.Update(p.name);
    torch::Tensor t = CpuFloat(p.tensor);
    for (int64_t s : t.sizes()) d.Update(&s, sizeof(s));
    d.Update(t.data_ptr<float>(), t.numel() * sizeof(float));
  }
  return d.Hex();
}

double RecentMeanLoss(const std::vector<double>& curve_loss) {
  const size_t n = std::min<size_t>(20, curve_loss.size());
  double mean = 0;
  for (size_t i = curve_loss.size() - n; i < curve_loss.size(); ++i) {
    mean += curve_loss[i] / static_cast<double>(n);
  }
  return mean;
}

absl::Status SaveModel(const std::string& path, const Model& model, const Tokenizer& tokenizer,
                       const TrainingInfo& training) {
  if (tokenizer.vocab_size() != model.config().vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tokenizer has ", tokenizer.vocab_size(),
                                                   " tokens, model vocab_size is ",
                                                   model.config().vocab_size));
  }
  CIRCUIT_ASSIGN_OR_RETURN(H5Writer w, H5Writer::Create(path));
  CIRCUIT_RETURN_IF_ERROR(internal::WriteModelHeader(w, kArchGpt, model.parameters()));
  CIRCUIT_RETURN_IF_ERROR(WriteConfig(w, model.config()));
  CIRCUIT_RETURN_IF_ERROR(internal::WriteWeights(w, model.parameters()));
  CIRCUIT_RETURN_IF_ERROR(internal::WriteTokenizer(w, tokenizer));
  CIRCUIT_RETURN_IF_ERROR(internal::WriteTraining(w, training, model.parameters()));
  return w.Commit();
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path) {
  CIRCUIT_ASSIGN_OR_RETURN(H5Reader r, H5Reader::Open(path));
  CIRCUIT_RETURN_IF_ERROR(r.CheckFormat(kModelFormat, kModelFormatVersion));
  CIRCUIT_RETURN_IF_ERROR(RequireArch(r, kArchGpt));
  return ReadConfig(r);
}

absl::StatusOr<ModelFile> LoadModel(const std::string& path, torch::Device device) {
  CIRCUIT_ASSIGN_OR_RETURN(H5Reader r, H5Reader::Open(path));
  CIRCUIT_RETURN_IF_ERROR(r.CheckFormat(kModelFormat, kModelFormatVersion));
  CIRCUIT_RETURN_IF_ERROR(RequireArch(r, kArchGpt));
  CIRCUIT_ASSIGN_OR_RETURN(ModelConfig config, ReadConfig(r));
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<NamedTensor> tensors,
                           internal::ReadWeights(r, Model::ParameterShapes(config)));
  CIRCUIT_ASSIGN_OR_RETURN(Tokenizer tokenizer, internal::ReadTokenizer(r, config.vocab_size));
  CIRCUIT_ASSIGN_OR_RETURN(TrainingInfo training, internal::ReadTraining(r));
  absl::StatusOr<Model> model = Model::FromTensors(config, std::move(tensors), device);
  if (!model.ok()) return Annotate(model.status(), path);
  std::string digest = WeightsDigest(*model);
  return ModelFile{std::move(*model), std::move(tokenizer), std::move(training), path,
                   std::move(digest)};
}

}  // namespace circuit
