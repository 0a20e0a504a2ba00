// circuit import: a model of the paper's release (beeg_config.json +
// final_model.pt) to our checkpoint format, ready for extract, ablate, sweep.
#include <filesystem>
#include <iostream>

#include "args.h"
#include "circuit/core/release_io.h"
#include "command.h"

namespace circuit::cli {
namespace {

int RunImport(int argc, char** argv) {
  ArgParser parser(
      "circuit import [DIR] [--config beeg_config.json --weights final_model.pt] "
      "[--tokenizer DIR] --out model.h5",
      "Convert a model released with the paper (openai/circuit_sparsity: beeg_config.json and "
      "final_model.pt, a torch.save()d state dict) into a circuit checkpoint. Every tensor is "
      "checked against the config. The tokenizer (encoder.json + vocab.bpe, the release's "
      "tinypython files) comes from --tokenizer, else from DIR, else the bundled one when its "
      "vocabulary size matches. See docs/release_models.md.");
  std::string dir, config_path, weights_path, tokenizer_dir, out;
  parser.OptionalPositional("DIR", "release model directory (beeg_config.json, final_model.pt)",
                            &dir);
  parser.Option("config", "the release's beeg_config.json (default DIR/beeg_config.json)",
                &config_path);
  parser.Option("weights", "the release's final_model.pt (default DIR/final_model.pt)",
                &weights_path);
  parser.Option("tokenizer", "directory with encoder.json and vocab.bpe", &tokenizer_dir);
  parser.Option("out", "output checkpoint (.h5)", &out);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
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
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(import, "import",
                "convert a model of the paper's release (final_model.pt) to model.h5", RunImport);

}  // namespace circuit::cli
