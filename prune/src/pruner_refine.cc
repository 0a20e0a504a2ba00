// ExtractCircuit's steps after discretization: refinement of the chosen
// candidate, and the circuit of a nodes-only re-extraction.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "circuit/core/runtime.h"
#include "circuit/prune/edges.h"
#include "circuit/prune/refine.h"
#include "pruner_internal.h"

namespace circuit::prune::internal {
namespace {

using Clock = std::chrono::steady_clock;

// The split refinement selects removals on: the first refine_pairs (default:
// as many as validation has) pairs of the train split.
std::vector<TaskExample> SelectionPrompts(const TaskData& task, const ExtractOptions& options) {
  const size_t pairs = options.refine_pairs > 0 ? static_cast<size_t>(options.refine_pairs)
                                                : task.validation.size() / 2;
  const size_t n = std::min(task.train.size(), 2 * pairs);
  return {task.train.begin(), task.train.begin() + n};
}

// Loss of `flat` kept on `eval`.
double LossOfNodes(const AblationEvaluator& eval, const NodeIndex& index,
                   const std::vector<int64_t>& flat, const LogitCalibration* cal) {
  torch::Tensor keep = torch::zeros({index.total()});
  float* k = keep.data_ptr<float>();
  for (int64_t i : flat) k[i] = 1.0f;
  return eval.Score(keep, cal).loss;
}

}  // namespace

double RefineCandidate(const TapModel& model, const NodeIndex& index, const MaskUnits& units,
                       const std::vector<torch::Tensor>& means, const TaskData& task,
                       const AblationEvaluator& val, const ExtractOptions& options,
                       const ProgressFn& progress, Candidate* c, ExtractStats* stats) {
  const double nan = std::nan("");
  if (!c->disc.met_target) return nan;
  if (options.nodes_only && !options.refine) return nan;  // minimality is not read
  const int64_t n = static_cast<int64_t>(c->flat.size());
  if (options.refine_limit > 0 && n > options.refine_limit) {
    AddNote(stats, absl::StrCat(options.refine ? "refinement and minimality" : "minimality",
                                " skipped: ", n, " nodes exceed --refine-limit ",
                                options.refine_limit));
    return nan;
  }
  std::vector<int64_t> kept;
  for (int64_t node : c->flat) kept.push_back(units.node_unit[node]);
  std::sort(kept.begin(), kept.end());
  kept.erase(std::unique(kept.begin(), kept.end()), kept.end());
  RefineOptions ro;
  ro.target_loss = options.target_loss;
  ro.z = ConfidenceZ(options.confidence);
  ro.stack = options.refine_stack;
  ro.remove = options.refine;
  ro.give_up = options.give_up;
  ro.final_sweep = !options.nodes_only;  // a re-extraction reads the set, not its minimality
  const LogitCalibration* cal = options.calibrate ? &c->calibration : nullptr;
  const std::vector<TaskExample> prompts = SelectionPrompts(task, options);
  const AblationEvaluator sel(model, index, means, options.ablation, prompts, options.eval_batch);
  stats->refine_selection_pairs = static_cast<int64_t>(prompts.size() / 2);
  const RefineResult r =
      RefineUnits(EvaluatorLoss(sel, cal, options.refine_stack), units, kept, ro, progress,
                  options.refine ? EvaluatorLoss(val, cal, 1) : BatchLossFn());
  stats->refine_seconds = r.seconds;
  stats->refine_passes = r.passes;
  stats->refine_evaluations = r.evaluations;
  if (!options.refine) return r.minimality;
  stats->refined = true;
  stats->refine_removed_nodes = r.removed_nodes;
  stats->refine_readded_nodes = r.readded_nodes;
  stats->refine_confirm_evaluations = r.confirm_evaluations;
  stats->refine_selection_loss = r.select_loss.loss;
  stats->nodes_before_refine = n;
  stats->edges_before_refine = static_cast<int64_t>(c->edges.size());
  stats->validation_loss_before_refine = c->disc.loss;
  if (r.removed_nodes > 0) {
    // The test loss of the unrefined set, for comparison only (nothing is chosen by it).
    const Clock::time_point t = Clock::now();
    const AblationEvaluator test(model, index, means, options.ablation, task.test,
                                 options.eval_batch);
    stats->test_loss_before_refine = LossOfNodes(test, index, c->flat, cal);
    stats->refine_seconds += SecondsSince(t);
    c->disc.loss = r.loss.loss;
    c->disc.loss_bound = r.loss.loss + ro.z * r.loss.std_error;
    c->flat.clear();
    for (int64_t u : r.units) {
      for (int64_t node : units.unit_nodes[u]) c->flat.push_back(node);
    }
    std::sort(c->flat.begin(), c->flat.end());
    std::vector<Node> nodes;
    for (int64_t i : c->flat) nodes.push_back(index.At(i));
    c->edges = CircuitEdges(model, nodes);
  }
  return r.minimality;
}

Circuit NodesOnlyCircuit(const TapModel& model, const NodeIndex& index,
                         const std::vector<torch::Tensor>& means, const TaskData& task,
                         const ExtractOptions& options, const Candidate& c, const MaskUnits& units) {
  const AblationEvaluator test(model, index, means, options.ablation, task.test,
                               options.eval_batch);
  torch::Tensor keep = torch::zeros({index.total()});
  if (!c.flat.empty()) keep.index_fill_(0, torch::tensor(c.flat, torch::kInt64), 1.0);
  const LogitCalibration* cal = options.calibrate ? &c.calibration : nullptr;
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  Circuit circuit;
  circuit.task = task.name;
  circuit.method = MethodName(options.method);
  circuit.seed = options.seed;
  circuit.n_layer = model.layout().n_layer();
  circuit.arch = model.arch();
  circuit.edge_definition = EdgeDefinition(circuit.arch);
  circuit.target_loss = options.target_loss;
  // A set of every node is the full model (no site is gated): one pass for both.
  const bool all = static_cast<int64_t>(c.flat.size()) == index.total();
  circuit.circuit_loss = test.Score(all ? torch::Tensor() : keep, cal).loss;
  circuit.full_model_loss = !std::isnan(options.full_test_loss) ? options.full_test_loss
                            : all ? circuit.circuit_loss
                                  : test.Score(torch::Tensor(), cal).loss;
  circuit.necessity_loss = kNaN;
  circuit.random_baseline_loss = kNaN;
  circuit.accuracy = kNaN;
  circuit.total_nodes = index.total();
  const torch::Tensor score = c.unit_score.to(torch::kCPU, torch::kFloat32).contiguous();
  const float* unit_score = score.data_ptr<float>();
  for (int64_t i : c.flat) {
    CircuitNode n;
    n.node = index.At(i);
    n.mask_logit = unit_score[units.node_unit[i]];
    n.importance = std::numeric_limits<float>::quiet_NaN();
    circuit.nodes.push_back(n);
  }
  circuit.edges = c.edges;
  circuit.node_scores.resize(index.total());
  for (int64_t i = 0; i < index.total(); ++i) circuit.node_scores[i] = unit_score[units.node_unit[i]];
  circuit.tied_nodes = c.tied_nodes;
  circuit.tie_note = c.tie_note;
  return circuit;
}

}  // namespace circuit::prune::internal
