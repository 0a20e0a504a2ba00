// circuit export-torch: a circuit checkpoint in the release's format, for the
// paper's Python code (circuit_sparsity.inference.gpt.load_model).
#include <iostream>

#include "args.h"
#include "circuit/core/release_io.h"
#include "command.h"

namespace circuit::cli {
namespace {

int RunExportTorch(int argc, char** argv) {
  ArgParser parser("circuit export-torch [--model M | MODEL] --out DIR",
                   "Write a model checkpoint in the format of the paper's release: "
                   "DIR/beeg_config.json (GPTConfig), DIR/final_model.pt (torch.save()d state "
                   "dict, float32) and the tokenizer as DIR/encoder.json + DIR/vocab.bpe. "
                   "MODEL defaults to the bundled model. See docs/release_models.md.");
  std::string model_path = DefaultModelPath(), positional, out;
  parser.OptionalPositional("MODEL", "model checkpoint (.h5), as --model", &positional);
  parser.Option("model", "model checkpoint (.h5); env CIRCUIT_MODEL", &model_path);
  parser.Option("out", "output directory", &out);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (!positional.empty()) {
    if (parser.Given("model")) return Fail("export-torch", "give MODEL or --model, not both", kExitUsage);
    model_path = positional;
  }
  if (out.empty()) return Fail("export-torch", "--out is required", kExitUsage);

  absl::StatusOr<ModelFile> file = LoadModel(model_path);
  if (!file.ok()) return Fail("export-torch", std::string(file.status().message()), kExitUsage);
  if (absl::Status s = ExportReleaseModel(file->model, file->tokenizer, out); !s.ok()) {
    const bool bad_input = s.code() == absl::StatusCode::kInvalidArgument;
    return Fail("export-torch", std::string(s.message()), bad_input ? kExitUsage : kExitFailure);
  }
  std::cout << "wrote " << out << "/{beeg_config.json, final_model.pt, encoder.json, vocab.bpe}: "
            << file->model.NumParameters() << " parameters\n";
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(export_torch, "export-torch",
                "write a model in the paper release's format (final_model.pt)", RunExportTorch);

}  // namespace circuit::cli
