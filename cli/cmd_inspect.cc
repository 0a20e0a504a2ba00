// circuit inspect FILE: what a model checkpoint (or circuit file) holds.
#include <cstdio>
#include <iostream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "args.h"
#include "circuit/core/arch.h"
#include "circuit/core/bdh_checkpoint.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/h5.h"
#include "circuit/export/circuit_file.h"
#include "circuit/export/describe.h"
#include "circuit/export/json.h"
#include "command.h"

namespace circuit::cli {
namespace {

// The provenance lines both architectures share. A checkpoint saved before
// the first validation pass has no validation loss to show.
void PrintTrainingTail(const TrainingInfo& t) {
  std::cout << absl::StrFormat("            final loss %.4f, validation loss %s\n", t.final_loss,
                               t.val_loss.empty()
                                   ? std::string("not measured yet")
                                   : absl::StrFormat("%.4f nats/token", t.final_val_loss));
  if (!t.corpus_digest.empty()) std::cout << "            corpus digest " << t.corpus_digest << "\n";
  if (!t.command.empty()) std::cout << "            command: " << t.command << "\n";
  if (!t.init_from.empty()) std::cout << "            started from " << t.init_from << "\n";
}

void PrintModel(const ModelFile& file) {
  const ModelConfig& c = file.model.config();
  std::cout << absl::StrFormat("model       %s (digest %s)\n", file.path, file.digest);
  std::cout << absl::StrFormat(
      "config      %d layers, d_model %d, %d heads x %d, d_mlp %d, vocab %d, n_ctx %d\n",
      c.n_layer, c.d_model, c.n_head, c.d_head, c.d_mlp, c.vocab_size, c.n_ctx);
  std::cout << absl::StrFormat(
      "            positions %s, attention sink %s, bigram table %s, activation %s\n",
      c.d_pos_emb > 0 ? absl::StrFormat("concatenated (%d)", c.d_pos_emb) : "added",
      c.attn_sink ? "yes" : "no", c.bigram_table ? "yes" : "no", c.activation);
  std::cout << absl::StrFormat("            AbsTopK afrac %g at %s\n", c.afrac,
                               c.afrac > 0 ? c.afrac_loctypes : "(off)");
  std::cout << absl::StrFormat("parameters  %d (%d nodes)\n", file.model.NumParameters(),
                               c.TotalNodes());
  std::cout << "density     nonzero fraction per matrix:\n";
  int64_t nonzero = 0, total = 0;
  for (const auto& [name, fraction] : ParameterDensity(file.model)) {
    const int64_t n = file.model.Parameter(name).numel();
    if (name != "final_logits_bias") {
      nonzero += static_cast<int64_t>(fraction * n + 0.5);
      total += n;
    }
    if (file.model.Parameter(name).dim() == 2) {
      std::cout << absl::StrFormat("  %-40s %8.4f  (1/%.0f)\n", name, fraction,
                                   fraction > 0 ? 1.0 / fraction : 0.0);
    }
  }
  std::cout << absl::StrFormat("  %-40s %8.4f  (%d nonzero)\n", "all parameters",
                               total ? double(nonzero) / total : 0.0, nonzero);
  const int products = file.model.NumProducts(), sparse = file.model.NumSparseProducts();
  std::cout << absl::StrFormat(
      "products    %s (matrices at most %s nonzero go through the CSR product)\n",
      sparse == 0 ? "all dense" : absl::StrFormat("%d of %d sparse", sparse, products),
      SparseProductMaxDensity() > 0 ? absl::StrFormat("1/%.0f", 1 / SparseProductMaxDensity())
                                    : std::string("0 (off)"));
  const TrainingInfo& t = file.training;
  std::cout << absl::StrFormat("training    %d steps, %d tokens, seed %d, %s, %.0f s\n", t.steps,
                               t.tokens, t.seed, t.dense ? "dense" : "weight-sparse", t.seconds);
  PrintTrainingTail(t);
}

void PrintBdhModel(const BdhModelFile& file) {
  const BdhConfig& c = file.model.config();
  std::cout << absl::StrFormat("model       %s (digest %s)\n", file.path, file.digest);
  std::cout << absl::StrFormat(
      "arch        bdh (Dragon Hatchling, BDH-GPU): one set of weights shared by %d layers\n",
      c.n_layer);
  std::cout << absl::StrFormat(
      "config      d_model %d, %d heads x %d neurons (%d per layer), vocab %d, n_ctx %d, "
      "dropout %g (training only)\n",
      c.d_model, c.n_head, c.n_neuron, c.neurons(), c.vocab_size, c.n_ctx, c.dropout);
  std::cout << absl::StrFormat("parameters  %d\n", file.model.NumParameters());
  for (const NamedTensor& p : file.model.parameters()) {
    std::cout << absl::StrFormat("  %-14s (%s)\n", p.name, absl::StrJoin(p.tensor.sizes(), ", "));
  }
  const TrainingInfo& t = file.training;
  std::cout << absl::StrFormat("training    %d steps, %d tokens, seed %d, dense, %.0f s\n", t.steps,
                               t.tokens, t.seed, t.seconds);
  PrintTrainingTail(t);
}

int RunInspect(int argc, char** argv) {
  ArgParser parser("circuit inspect FILE",
                   "Print what a model checkpoint or circuit file holds: for a model its config, "
                   "parameter count, per-matrix density and training provenance; for a circuit "
                   "its task, losses, size and most important nodes.");
  std::string path;
  bool json = false;
  parser.Positional("FILE", "model.h5 (or circuit.h5)", &path);
  parser.Flag("json", "for a circuit: print it as JSON (nodes, edges, figures; docs/formats.md)", &json);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;

  absl::StatusOr<H5Reader> reader = H5Reader::Open(path);
  if (!reader.ok()) return Fail("inspect", std::string(reader.status().message()), kExitUsage);
  absl::StatusOr<std::string> format = reader->ReadStringAttribute("/", "format");
  if (!format.ok()) return Fail("inspect", std::string(format.status().message()), kExitUsage);
  if (*format == kModelFormat) {
    absl::StatusOr<std::string> arch = ReadModelArch(path);
    if (!arch.ok()) return Fail("inspect", std::string(arch.status().message()), kExitUsage);
    if (*arch == kArchBdh) {
      absl::StatusOr<BdhModelFile> file = LoadBdhModel(path);
      if (!file.ok()) return Fail("inspect", std::string(file.status().message()), kExitUsage);
      PrintBdhModel(*file);
      return kExitOk;
    }
    absl::StatusOr<ModelFile> file = LoadModel(path);
    if (!file.ok()) return Fail("inspect", std::string(file.status().message()), kExitUsage);
    PrintModel(*file);
    return kExitOk;
  }
  if (*format == kCircuitFormat) {
    absl::StatusOr<Circuit> circuit = ReadCircuitFile(path);
    if (!circuit.ok()) return Fail("inspect", std::string(circuit.status().message()), kExitUsage);
    std::cout << (json ? CircuitToJson(*circuit, nullptr) + "\n" : DescribeCircuit(*circuit));
    return kExitOk;
  }
  return Fail("inspect", path + ": unknown format '" + *format + "'", kExitUsage);
}

}  // namespace

CIRCUIT_COMMAND(inspect, "inspect", "print a model's or circuit's summary", RunInspect);

}  // namespace circuit::cli
