// Extract a task's circuit from a model and write it, through the library —
// what `circuit extract` does, in 30 lines. Build it against an installed
// circuit (find_package(circuit CONFIG); see examples/CMakeLists.txt).
//
//   extract_circuit data/models/default.h5 single_double_quote out.h5
#include <iostream>

#include "circuit/core/checkpoint.h"
#include "circuit/core/runtime.h"
#include "circuit/core/task.h"
#include "circuit/export/circuit_file.h"
#include "circuit/prune/pruner.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: extract_circuit MODEL.h5 TASK OUT.h5\n";
    return 2;
  }
  circuit::ConfigureRuntime(/*threads=*/0);
  absl::StatusOr<circuit::ModelFile> file = circuit::LoadModel(argv[1]);
  if (!file.ok()) return std::cerr << file.status().message() << "\n", 2;
  const circuit::TaskOptions splits =
      circuit::PruningSplits(/*n_train=*/512, file->model.config().n_ctx, /*seed=*/0);
  absl::StatusOr<circuit::TaskData> task = circuit::BuildTask(argv[2], file->tokenizer, splits);
  if (!task.ok()) return std::cerr << task.status().message() << "\n", 2;

  circuit::prune::ExtractOptions options;  // target loss 0.15; the small-model mask settings:
  const int64_t nodes = circuit::prune::NodeIndex(file->model.config()).total();
  options.masks = circuit::prune::MaskPresetOptions(circuit::prune::MaskPreset::kAuto, nodes);
  absl::StatusOr<circuit::Circuit> c = circuit::prune::ExtractCircuit(*file, *task, options);
  if (!c.ok()) return std::cerr << c.status().message() << "\n", 1;
  if (absl::Status s = circuit::WriteCircuitFile(argv[3], *c); !s.ok()) {
    return std::cerr << s.message() << "\n", 1;
  }
  std::cout << c->nodes.size() << " nodes, " << c->edges.size() << " edges, circuit loss "
            << c->circuit_loss << " (target " << c->target_loss << ")\n";
  return 0;
}
