#include "circuit/prune/explain_run.h"

#include <chrono>
#include <cstdlib>
#include <vector>

#include "circuit/core/status.h"
#include "circuit/prune/explain.h"

namespace circuit::prune {

std::string DefaultCorpusDir() {
  if (const char* env = std::getenv("CIRCUIT_CORPUS"); env != nullptr && *env != '\0') return env;
  return "corpus";
}

absl::Status ExplainCircuit(const ModelFile& file, const TaskData& task, const ExplainRun& run,
                            Circuit* circuit, double* seconds) {
  const auto start = std::chrono::steady_clock::now();
  std::string words;
  CIRCUIT_ASSIGN_OR_RETURN(torch::Tensor text,
                           ExplainWindows(run.corpus_dir, file.model.config(), run.windows, &words));
  std::vector<Node> nodes;
  for (const CircuitNode& n : circuit->nodes) nodes.push_back(n.node);
  ExplainOptions o;
  o.top = run.top;
  CIRCUIT_ASSIGN_OR_RETURN(circuit->explanations,
                           ExplainNodes(file.model, TokenTexts(file.tokenizer), nodes, text, words, task, o));
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return absl::OkStatus();
}

}  // namespace circuit::prune
