// circuit explain: what each node of a circuit responds to and what it writes
// (docs/explanations.md), stored in the circuit file's /explanations/ group.
#include <iostream>

#include "absl/strings/str_format.h"
#include "args.h"
#include "circuit/core/runtime.h"
#include "circuit/export/circuit_file.h"
#include "circuit/export/describe.h"
#include "circuit/prune/circuit_context.h"
#include "circuit/prune/explain_run.h"
#include "command.h"

namespace circuit::cli {
namespace {

int RunExplain(int argc, char** argv) {
  ArgParser parser(
      "circuit explain --circuit C.h5 [--corpus DIR] [--top 8] [options]",
      "Explain every node of a circuit: its top and bottom activating contexts in the corpus "
      "validation split, an activation histogram, its mean at the answer per class of the task's "
      "prompts, the output tokens it promotes and suppresses, the input tokens that drive it, and "
      "where a q/k channel's head looks. Rewrites C.h5 with the group /explanations/ and prints "
      "one line per node. See docs/explanations.md.");
  CommonOptions common;
  AddCommonOptions(parser, &common);
  std::string circuit_path, task_name;
  prune::ExplainRun run;
  int pairs = -1;
  parser.Option("circuit", "circuit file written by circuit extract (rewritten in place)", &circuit_path);
  parser.Option("corpus", "corpus folder from `circuit corpus build`; env CIRCUIT_CORPUS", &run.corpus_dir);
  parser.Option("top", "contexts per side, and tokens per promoted/suppressed/input list", &run.top);
  parser.Option("windows", "windows of n_ctx tokens taken from the corpus validation split", &run.windows);
  parser.Option("task", "task whose prompts give the class means (default: the circuit's)", &task_name);
  parser.Option("pairs", "the task's train datapoints (default: as recorded in the circuit)", &pairs);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (circuit_path.empty()) return Fail("explain", "--circuit is required", kExitUsage);
  if (run.top < 1) return Fail("explain", absl::StrFormat("--top must be >= 1, got %d", run.top), kExitUsage);
  if (run.windows < 1) {
    return Fail("explain", absl::StrFormat("--windows must be >= 1, got %d", run.windows), kExitUsage);
  }
  auto usage_error = [](const absl::Status& s) { return Fail("explain", std::string(s.message()), kExitUsage); };

  absl::StatusOr<Circuit> circuit = ReadCircuitFile(circuit_path);
  if (!circuit.ok()) return usage_error(circuit.status());
  ConfigureRuntime(common.threads);
  absl::StatusOr<torch::Device> device = ParseDevice(common.device);
  if (!device.ok()) return usage_error(device.status());
  absl::StatusOr<prune::CircuitContext> context =
      prune::LoadCircuitContext(*circuit, circuit_path, common.model, *device, pairs, task_name);
  if (!context.ok()) return usage_error(context.status());

  double seconds = 0.0;
  absl::StatusOr<ModelFile> gpt = GptFileOf(context->file, "circuit explain");
  if (!gpt.ok()) return usage_error(gpt.status());
  if (absl::Status s = prune::ExplainCircuit(*gpt, context->task, run, &*circuit, &seconds); !s.ok()) {
    return Fail("explain", std::string(s.message()), absl::IsNotFound(s) ? kExitUsage : kExitFailure);
  }
  if (absl::Status s = WriteCircuitFile(circuit_path, *circuit); !s.ok()) {
    return Fail("explain", std::string(s.message()), kExitFailure);
  }
  std::cout << DescribeExplanations(*circuit);
  std::cout << absl::StrFormat("explained %d nodes in %.1f s; wrote %s\n", circuit->nodes.size(), seconds,
                               circuit_path);
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(explain, "explain", "explain a circuit's nodes: contexts, tokens, class means", RunExplain);

}  // namespace circuit::cli
