// Node explanations as `circuit explain`, `circuit extract` and the Python
// module's circuit.explain compute them: the corpus windows, the explanation
// pass (explain.h), and the result put into the circuit.
//
//   ExplainRun run;                       // corpus DefaultCorpusDir(), top 8, 128 windows
//   CIRCUIT_RETURN_IF_ERROR(ExplainCircuit(model_file, task, run, &circuit, &seconds));
#ifndef CIRCUIT_PRUNE_EXPLAIN_RUN_H_
#define CIRCUIT_PRUNE_EXPLAIN_RUN_H_

#include <string>

#include "absl/status/status.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/circuit.h"
#include "circuit/core/task.h"

namespace circuit::prune {

// The corpus the contexts come from: $CIRCUIT_CORPUS, else "corpus" (where
// `circuit corpus build --out corpus` puts it, relative to the working directory).
std::string DefaultCorpusDir();

struct ExplainRun {
  std::string corpus_dir = DefaultCorpusDir();
  int top = 8;         // contexts per side and tokens per list
  int windows = 128;   // windows of n_ctx tokens from the corpus validation split
};

// Explains every node of *circuit with the model of `file` (which the circuit
// must come from) on `task`'s test prompts, and stores the result in
// circuit->explanations. *seconds gets the time taken. Errors: NotFound when
// the corpus folder does not exist (the message says how to build one);
// InvalidArgument for a corpus that does not fit the model.
absl::Status ExplainCircuit(const ModelFile& file, const TaskData& task, const ExplainRun& run,
                            Circuit* circuit, double* seconds);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_EXPLAIN_RUN_H_
