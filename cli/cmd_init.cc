// circuit init: a freshly initialised (untrained) model — the random-weights
// control of PAPER.md §8, and a quick model for trying the tools.
#include <iostream>

#include "arch_options.h"
#include "args.h"
#include "circuit/core/bdh_checkpoint.h"
#include "circuit/core/checkpoint.h"
#include "command.h"

namespace circuit::cli {
namespace {

int RunInit(int argc, char** argv) {
  ArgParser parser("circuit init --out model.h5 [options]",
                   "Write a randomly initialised model (PAPER.md §1.6 init; --arch bdh: a BDH model, "
                   "docs/bdh.md) with a tokenizer. "
                   "Use it as the random-weights control for circuits, or to try the tools.");
  ModelConfig config;
  std::string out, tokenizer_dir = DataPath("tokenizer");
  uint64_t seed = 0;
  ArchOptions arch;
  AddModelConfigOptions(parser, &config);
  AddArchOptions(parser, &arch);
  parser.Option("tokenizer", "directory with encoder.json and vocab.bpe", &tokenizer_dir);
  parser.Option("seed", "initialisation seed", &seed);
  parser.Option("out", "output checkpoint (.h5)", &out);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (out.empty()) return Fail("init", "--out is required", kExitUsage);
  if (std::string e = ResolveArch(parser, config, &arch); !e.empty()) {
    return Fail("init", e, kExitUsage);
  }
  const bool bdh = arch.arch == kArchBdh;
  if (bdh) config.vocab_size = arch.bdh.vocab_size;  // for the tokenizer check below
  if (absl::Status s = config.Validate(); !bdh && !s.ok()) {
    return Fail("init", std::string(s.message()), kExitUsage);
  }
  absl::StatusOr<Tokenizer> tokenizer =
      Tokenizer::FromFiles(tokenizer_dir + "/encoder.json", tokenizer_dir + "/vocab.bpe");
  if (!tokenizer.ok()) return Fail("init", std::string(tokenizer.status().message()), kExitUsage);
  if (tokenizer->vocab_size() != config.vocab_size) {
    return Fail("init",
                "--vocab " + std::to_string(config.vocab_size) + " does not match the tokenizer's " +
                    std::to_string(tokenizer->vocab_size()) + " tokens",
                kExitUsage);
  }
  TrainingInfo training;
  training.seed = seed;
  training.command = "circuit init";
  if (bdh) {
    absl::StatusOr<BdhModel> model = BdhModel::Create(arch.bdh, seed);
    if (!model.ok()) return Fail("init", std::string(model.status().message()), kExitUsage);
    training.command += " --arch bdh";
    training.dense = true;
    if (absl::Status s = SaveBdhModel(out, *model, *tokenizer, training); !s.ok()) {
      return Fail("init", std::string(s.message()), kExitFailure);
    }
    const BdhConfig& b = arch.bdh;
    std::cout << "wrote " << out << ": BDH, " << model->NumParameters() << " parameters shared by "
              << b.n_layer << " layers, " << b.neurons() << " neurons per layer (" << b.n_head
              << " heads x " << b.n_neuron << ") (untrained)\n";
    return kExitOk;
  }
  absl::StatusOr<Model> model = Model::Create(config, seed);
  if (!model.ok()) return Fail("init", std::string(model.status().message()), kExitUsage);
  if (absl::Status s = SaveModel(out, *model, *tokenizer, training); !s.ok()) {
    return Fail("init", std::string(s.message()), kExitFailure);
  }
  std::cout << "wrote " << out << ": " << model->NumParameters() << " parameters, "
            << config.TotalNodes() << " nodes (untrained)\n";
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(init, "init", "write a randomly initialised model (random-weights control)",
                RunInit);

}  // namespace circuit::cli
