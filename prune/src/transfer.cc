// The transfer part of the audit: a circuit extracted on all template families
// of a task but one, scored on the held-out one.
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"
#include "circuit/prune/audit.h"
#include "transfer.h"

namespace circuit::prune {

std::string HeldOutFamily(const std::string& task, uint64_t seed, std::vector<std::string>* others) {
  std::vector<std::string> families;
  for (const TaskInfo& info : BuiltinTasks()) {
    if (info.name == task) families = info.families;
  }
  if (families.empty()) return "";
  absl::StatusOr<std::vector<TaskPair>> sample = GenerateTaskPairs(task, 256, seed);
  if (!sample.ok()) return "";
  std::set<std::string> seen;
  for (const TaskPair& p : *sample) seen.insert(p.family);
  std::vector<std::string> present;
  for (const std::string& f : families) {
    if (seen.count(f)) present.push_back(f);
  }
  if (present.size() < 2) return "";
  const std::string held_out = present.back();
  present.pop_back();
  if (others != nullptr) *others = present;
  return held_out;
}

namespace internal {

void ScoreOnOtherTask(const AuditInputs& in, const MeanCache& means, Transfer* t) {
  if (in.other_task == nullptr) return;
  const NodeIndex index(in.model->layout());
  torch::Tensor keep = torch::zeros({index.total()});
  for (const CircuitNode& n : in.circuit->nodes) keep[index.Flat(n.node)] = 1.0;
  const AblationEvaluator eval(*in.model, index, means.means, in.extract.ablation,
                               in.other_task->test, in.extract.eval_batch);
  t->other_task = in.other_task->name;
  t->other_task_loss = eval.Score(keep).loss;
  t->full_model_other_task_loss = eval.Score(torch::Tensor()).loss;
}

absl::StatusOr<Transfer> TransferAcrossFamilies(const AuditInputs& in, const MeanCache& means,
                                                const ExtractFn& extract) {
  Transfer t;
  ScoreOnOtherTask(in, means, &t);
  const Circuit& circuit = *in.circuit;
  if (in.tokenizer == nullptr) {
    t.note = "not computed: no tokenizer given";
    return t;
  }
  t.held_out = HeldOutFamily(circuit.task, circuit.seed, &t.extracted_on);
  if (t.held_out.empty()) {
    t.note = absl::StrCat("not computed: task ", circuit.task,
                          " has fewer than two template families (user task files have none)");
    return t;
  }
  // A family this tokenizer cannot build the splits of (a model of its own
  // vocabulary) leaves transfer out, with the reason; the rest of the audit stands.
  absl::StatusOr<TaskData> rest =
      BuildTask(absl::StrCat(circuit.task, "@!", t.held_out), *in.tokenizer, in.task_options);
  absl::StatusOr<TaskData> held =
      BuildTask(absl::StrCat(circuit.task, "@", t.held_out), *in.tokenizer, in.task_options);
  for (const absl::StatusOr<TaskData>* built : {&rest, &held}) {
    if (!built->ok()) {
      t.note = absl::StrCat("not computed: ", built->status().message());
      return t;
    }
  }
  CIRCUIT_ASSIGN_OR_RETURN(Circuit c, extract(*rest, "transfer", &t.met_target));
  const NodeIndex index(in.model->layout());
  torch::Tensor keep = torch::zeros({index.total()});
  for (const CircuitNode& n : c.nodes) keep[index.Flat(n.node)] = 1.0;
  t.n_nodes = static_cast<int64_t>(c.nodes.size());
  for (const auto& [split, loss, full] :
       {std::tuple{&rest->test, &t.in_family_loss, &t.full_model_in_family_loss},
        std::tuple{&held->test, &t.held_out_loss, &t.full_model_held_out_loss}}) {
    const AblationEvaluator eval(*in.model, index, means.means, in.extract.ablation, *split,
                                 in.extract.eval_batch);
    *loss = eval.Score(keep).loss;
    *full = eval.Score(torch::Tensor()).loss;
  }
  t.computed = true;
  return t;
}

}  // namespace internal
}  // namespace circuit::prune
