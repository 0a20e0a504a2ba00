// circuit ablate: how much each node and location of an extracted circuit
// matters (PAPER.md §4.10) — the loss on the task's test split when that node
// (or all the circuit's nodes at that location) is ablated as well.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <limits>
#include <numeric>

#include "absl/strings/str_format.h"
#include "args.h"
#include "circuit/core/runtime.h"
#include "circuit/core/task.h"
#include "circuit/core/trainer.h"
#include "circuit/export/circuit_file.h"
#include "circuit/prune/circuit_context.h"
#include "circuit/prune/mean_cache.h"
#include "circuit/prune/pruner.h"
#include "circuit/prune/verify.h"
#include "command.h"
#include "nlohmann/json.hpp"

namespace circuit::cli {
namespace {

int RunAblate(int argc, char** argv) {
  ArgParser parser("circuit ablate --circuit DIR/circuit.h5 [options]",
                   "Re-verify a circuit on its task's test split and rank its nodes and locations by "
                   "importance: the task loss when the node (or all circuit nodes at the location) is "
                   "ablated on top of everything outside the circuit.");
  CommonOptions common;
  AddCommonOptions(parser, &common);
  std::string circuit_path, ablation_name;
  int top = 20, draws = 4;
  bool json = false;
  parser.Option("circuit", "circuit file written by circuit extract", &circuit_path);
  parser.Option("ablation", "mean | zero | resample (default: the circuit's)", &ablation_name);
  parser.Option("top", "nodes to list, most important first (0: all)", &top);
  parser.Option("random-draws", "random circuits of the same shape for the baseline", &draws);
  int pairs = -1;
  parser.Option("pairs", "the task's train datapoints (default: as recorded in the circuit)", &pairs);
  parser.Flag("json", "print one JSON object instead of tables", &json);
  std::string task_name;
  parser.Option("task", "score on this task instead of the circuit's own (same candidate tokens; "
                "e.g. single_double_quote@print, one template family)", &task_name);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (circuit_path.empty()) return Fail("ablate", "--circuit is required", kExitUsage);
  auto usage_error = [](const absl::Status& s) { return Fail("ablate", std::string(s.message()), kExitUsage); };

  absl::StatusOr<Circuit> circuit = ReadCircuitFile(circuit_path);
  if (!circuit.ok()) return usage_error(circuit.status());
  absl::StatusOr<prune::Ablation> ablation =
      prune::ParseAblation(ablation_name.empty() ? circuit->ablation : ablation_name);
  if (!ablation.ok()) return usage_error(ablation.status());

  ConfigureRuntime(common.threads);
  KeepFreedMemory();
  absl::StatusOr<torch::Device> device = ParseDevice(common.device);
  if (!device.ok()) return usage_error(device.status());
  // The circuit's own splits (recorded by extract); --pairs overrides the size.
  absl::StatusOr<prune::CircuitContext> context =
      prune::LoadCircuitContext(*circuit, circuit_path, common.model, *device, pairs);
  if (!context.ok()) return usage_error(context.status());
  if (!task_name.empty() && task_name != circuit->task) {
    absl::StatusOr<TaskData> other = prune::BuildOtherTask(task_name, *context);
    if (!other.ok()) return usage_error(other.status());
    context->task = *std::move(other);
  }
  const AnyModelFile* file = &context->file;
  const TaskData* task = &context->task;
  if (absl::Status s = RequireTwins(*task); !s.ok()) return usage_error(s);

  prune::ExtractOptions means_options;
  means_options.means_cache = prune::MeansPathFor(file->path);
  prune::ExtractStats stats;
  absl::StatusOr<prune::MeanCache> means =
      prune::ResolveMeans(*file->model, file->digest, *task, means_options, &stats);
  if (!means.ok()) return Fail("ablate", std::string(means.status().message()), kExitFailure);
  // A damaged or unreadable cache was recomputed: say so (stderr, so --json stays one object).
  if (!stats.note.empty()) std::cerr << "circuit ablate: note: " << stats.note << "\n";

  const prune::NodeIndex index(file->model->layout());
  std::vector<int64_t> flat;
  for (const CircuitNode& n : circuit->nodes) {
    if (!index.Contains(n.node)) {
      return Fail("ablate", absl::StrFormat("%s: node %s is not in the model", circuit_path, NodeLabel(n.node)),
                  kExitUsage);
    }
    flat.push_back(index.Flat(n.node));
  }
  prune::VerifyOptions v;
  v.ablation = *ablation;
  v.seed = circuit->seed;
  v.random_draws = draws;
  absl::StatusOr<prune::Verification> r =
      prune::VerifyCircuit(*file->model, index, means->means, task->test, flat, v);
  if (!r.ok()) return Fail("ablate", std::string(r.status().message()), kExitFailure);

  // No draws: no baseline (NaN; JSON null), not a loss of 0.
  const double random_loss = draws > 0 ? r->random.loss : std::numeric_limits<double>::quiet_NaN();
  std::vector<size_t> order(circuit->nodes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return r->node_importance[a] > r->node_importance[b]; });
  if (top > 0 && static_cast<size_t>(top) < order.size()) order.resize(top);
  std::vector<std::pair<std::string, double>> locations(r->location_importance.begin(),
                                                        r->location_importance.end());
  std::stable_sort(locations.begin(), locations.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });

  if (json) {
    nlohmann::json j;
    j["task"] = task->name;
    j["ablation"] = prune::AblationName(*ablation);
    j["n_nodes"] = circuit->nodes.size();
    j["loss"] = {{"full_model", r->full.loss}, {"circuit", r->circuit.loss},
                 {"necessity", r->necessity.loss}, {"random_baseline", random_loss}};
    j["accuracy"] = {{"full_model", r->full.accuracy}, {"circuit", r->circuit.accuracy}};
    j["nodes"] = nlohmann::json::array();
    for (size_t i : order) {
      j["nodes"].push_back({{"node", NodeLabel(circuit->nodes[i].node)}, {"importance", r->node_importance[i]}});
    }
    j["locations"] = nlohmann::json::array();
    for (const auto& [key, loss] : locations) j["locations"].push_back({{"location", key}, {"importance", loss}});
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  const std::string scored =
      task->name == circuit->task ? circuit->task : circuit->task + ", scored on " + task->name;
  std::cout << absl::StrFormat("circuit of %s: %d nodes, %d edges; %s ablation, test split (%d prompts)\n",
                               scored, circuit->nodes.size(), circuit->edges.size(),
                               prune::AblationName(*ablation), task->test.size());
  std::cout << absl::StrFormat(
      "loss        full model %.4f, circuit %.4f (acc %.3f), circuit ablated %.4f, random circuit %.4f\n",
      r->full.loss, r->circuit.loss, r->circuit.accuracy, r->necessity.loss, random_loss);
  std::cout << absl::StrFormat("means       %s%s\n", stats.means_source, stats.means_reused ? " (cached)" : "");
  std::cout << "\nlocation importance (loss with the location's circuit nodes ablated too):\n";
  for (const auto& [key, loss] : locations) std::cout << absl::StrFormat("  %-22s %8.4f\n", key, loss);
  std::cout << absl::StrFormat("\nnode importance (loss with the node ablated too), top %d:\n", order.size());
  for (size_t i : order) {
    std::cout << absl::StrFormat("  %-26s %8.4f  (+%.4f)\n", NodeLabel(circuit->nodes[i].node),
                                 r->node_importance[i], r->node_importance[i] - r->circuit.loss);
  }
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(ablate, "ablate", "rank a circuit's nodes and locations by importance", RunAblate);

}  // namespace circuit::cli
