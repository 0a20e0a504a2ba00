// circuit import: a model of the paper's release (beeg_config.json +
// final_model.pt) to our checkpoint format, ready for extract, ablate, sweep.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "args.h"
#include "circuit/core/arch.h"
#include "circuit/core/bdh_checkpoint.h"
#include "circuit/core/release_io.h"
#include "circuit/prune/mean_cache.h"
#include "command.h"
#include "nlohmann/json.hpp"

namespace circuit::cli {
namespace {

// --training-log: the JSON log scripts/train_bdh_gpu.py writes beside its state
// dict, as the imported model's provenance (steps, tokens, curves, recipe).
absl::Status ReadTrainingLog(const std::string& path, const BdhConfig& config,
                             const std::string& weights_path, TrainingInfo* info) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the training log"));
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a JSON object (expected the log of scripts/train_bdh_gpu.py)"));
  }
  try {
    const nlohmann::json& args = j.at("args");
    for (const auto& [key, want] : {std::pair<const char*, int64_t>{"d_model", config.d_model},
                                    {"heads", config.n_head},
                                    {"neurons", config.n_neuron},
                                    {"vocab", config.vocab_size}}) {
      if (args.at(key).get<int64_t>() != want) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": the log's ", key, " is ",
                                                       args.at(key).dump(), ", the weights' ", want,
                                                       " (a log of another model?)"));
      }
    }
    info->steps = j.at("steps").get<int64_t>();
    info->tokens = j.at("tokens").get<int64_t>();
    info->seconds = j.at("seconds").get<double>();
    info->seed = args.at("seed").get<uint64_t>();
    info->dense = true;
    info->corpus_digest = j.value("corpus_digest", "");
    for (const nlohmann::json& point : j.at("curve")) {
      info->curve_step.push_back(point.at(0).get<int64_t>());
      info->curve_loss.push_back(point.at(1).get<double>());
    }
    for (const nlohmann::json& point : j.at("val")) {
      info->val_step.push_back(point.at(0).get<int64_t>());
      info->val_loss.push_back(point.at(1).get<double>());
    }
    info->final_loss = RecentMeanLoss(info->curve_loss);
    if (!info->val_loss.empty()) info->final_val_loss = info->val_loss.back();
    for (const char* key : {"lr", "cooldown", "batch", "weight_decay", "dropout", "n_ctx",
                            "val_windows"}) {
      info->hyperparameters[key] = args.at(key).get<double>();
    }
    info->hyperparameters["steps"] = static_cast<double>(info->steps);
    info->command = absl::StrCat(j.value("command", "scripts/train_bdh_gpu.py"), " (",
                                 j.value("device", "?"), ", torch ", j.value("torch", "?"),
                                 "); circuit import --arch bdh --weights ", weights_path);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  return absl::OkStatus();
}

// --corpus: the means pruning substitutes, over the corpus's val split, beside
// the model as `circuit train` leaves them.
int WriteMeans(const std::string& out, const std::string& corpus_dir) {
  if (corpus_dir.empty()) return kExitOk;
  if (absl::Status s = prune::SaveCorpusMeans(out, corpus_dir, torch::kCPU); !s.ok()) {
    return Fail("import", std::string(s.message()), kExitFailure);
  }
  std::cout << "means over the corpus val split: " << prune::MeansPathFor(out) << "\n";
  return kExitOk;
}

// --arch bdh: a pathwaycom/bdh state dict (circuit/core/bdh_checkpoint.h).
int ImportBdh(const std::string& weights_path, BdhImportOptions options,
              const std::string& training_log, const std::string& out,
              const std::string& corpus_dir) {
  options.fallback_tokenizer_dir = DataPath("tokenizer");
  absl::StatusOr<BdhModelFile> imported = ImportBdhStateDict(weights_path, options);
  if (!imported.ok()) return Fail("import", std::string(imported.status().message()), kExitUsage);
  if (!training_log.empty()) {
    imported->training = TrainingInfo();
    if (absl::Status s = ReadTrainingLog(training_log, imported->model.config(), weights_path,
                                         &imported->training);
        !s.ok()) {
      return Fail("import", std::string(s.message()), kExitUsage);
    }
  }
  for (const std::string& note : imported->notes) std::cout << "note: " << note << "\n";
  if (absl::Status s = SaveBdhModel(out, imported->model, imported->tokenizer, imported->training);
      !s.ok()) {
    return Fail("import", std::string(s.message()), kExitFailure);
  }
  const BdhConfig& c = imported->model.config();
  std::cout << "wrote " << out << ": BDH, " << c.n_layer << " layers sharing "
            << imported->model.NumParameters() << " parameters, d_model " << c.d_model << ", "
            << c.n_head << " heads x " << c.n_neuron << " neurons, vocab " << c.vocab_size << "\n";
  return WriteMeans(out, corpus_dir);
}

int RunImport(int argc, char** argv) {
  ArgParser parser(
      "circuit import [DIR] [--config beeg_config.json --weights final_model.pt] "
      "[--tokenizer DIR] [--corpus DIR] --out model.h5\n"
      "       circuit import --arch bdh --weights bdh.pt --layers N [--training-log bdh.json] "
      "[--tokenizer DIR] [--corpus DIR] --out bdh.h5",
      "Convert a model released with the paper (openai/circuit_sparsity: beeg_config.json and "
      "final_model.pt, a torch.save()d state dict) into a circuit checkpoint. Every tensor is "
      "checked against the config. The tokenizer (encoder.json + vocab.bpe, the release's "
      "tinypython files) comes from --tokenizer, else from DIR, else the bundled one when its "
      "vocabulary size matches. See docs/release_models.md. With --arch bdh: a state dict of "
      "pathwaycom/bdh's BDH (torch.save(model.state_dict())), see docs/bdh.md.");
  std::string dir, config_path, weights_path, tokenizer_dir, out;
  parser.OptionalPositional("DIR", "release model directory (beeg_config.json, final_model.pt)",
                            &dir);
  parser.Option("config", "the release's beeg_config.json (default DIR/beeg_config.json)",
                &config_path);
  parser.Option("weights", "the release's final_model.pt (default DIR/final_model.pt)",
                &weights_path);
  parser.Option("tokenizer", "directory with encoder.json and vocab.bpe", &tokenizer_dir);
  parser.Option("out", "output checkpoint (.h5)", &out);
  std::string corpus_dir;
  parser.Option("corpus", "also write the means pruning substitutes (over this corpus's val "
                "split) beside the model, as circuit train does", &corpus_dir);
  std::string arch = kArchGpt;
  BdhImportOptions bdh;
  parser.Option("arch", "gpt (a release model) or bdh (a pathwaycom/bdh state dict: --weights, "
                "--layers; docs/bdh.md)", &arch);
  parser.Option("layers", "bdh: layers (not stored in a BDH state dict)", &bdh.n_layer);
  parser.Option("n-ctx", "bdh: longest sequence the tools will feed it", &bdh.n_ctx);
  std::string training_log;
  parser.Option("training-log",
                "bdh: the JSON log of scripts/train_bdh_gpu.py, kept as the model's provenance",
                &training_log);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (arch == kArchBdh) {
    if (out.empty()) return Fail("import", "--out is required", kExitUsage);
    if (weights_path.empty() || !dir.empty() || !config_path.empty()) {
      return Fail("import", "--arch bdh takes --weights FILE.pt (no DIR, no --config)", kExitUsage);
    }
    bdh.tokenizer_dir = tokenizer_dir;
    return ImportBdh(weights_path, bdh, training_log, out, corpus_dir);
  }
  if (arch != kArchGpt) return Fail("import", "--arch must be gpt or bdh, got '" + arch + "'", kExitUsage);
  if (parser.Given("layers") || parser.Given("n-ctx") || parser.Given("training-log")) {
    return Fail("import", "--layers, --n-ctx and --training-log apply to --arch bdh only",
                kExitUsage);
  }
  namespace fs = std::filesystem;
  if (!dir.empty()) {
    if (config_path.empty()) config_path = (fs::path(dir) / "beeg_config.json").string();
    if (weights_path.empty()) weights_path = (fs::path(dir) / "final_model.pt").string();
    if (tokenizer_dir.empty() && fs::exists(fs::path(dir) / "encoder.json")) tokenizer_dir = dir;
  }
  if (config_path.empty() || weights_path.empty()) {
    return Fail("import", "give a release model DIR or both --config and --weights", kExitUsage);
  }
  if (out.empty()) return Fail("import", "--out is required", kExitUsage);

  absl::StatusOr<ReleaseModel> imported =
      ImportReleaseModel(config_path, weights_path, tokenizer_dir, DataPath("tokenizer"));
  if (!imported.ok()) return Fail("import", std::string(imported.status().message()), kExitUsage);
  for (const std::string& note : imported->notes) std::cout << "note: " << note << "\n";
  if (absl::Status s = SaveModel(out, imported->model, imported->tokenizer, imported->training);
      !s.ok()) {
    return Fail("import", std::string(s.message()), kExitFailure);
  }
  const ModelConfig& c = imported->model.config();
  std::cout << "wrote " << out << ": " << c.n_layer << " layers, d_model " << c.d_model << ", "
            << imported->model.NumParameters() << " parameters, " << c.TotalNodes()
            << " nodes (tokenizer from " << imported->tokenizer_source << ")\n";
  return WriteMeans(out, corpus_dir);
}

}  // namespace

CIRCUIT_COMMAND(import, "import",
                "convert a model of the paper's release (final_model.pt) to model.h5", RunImport);

}  // namespace circuit::cli
