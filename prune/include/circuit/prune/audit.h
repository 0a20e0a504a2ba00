// Circuit audit (docs/faithfulness.md): the figures a reviewer asks for before
// trusting a circuit, computed on the circuit's own model, task and test split.
//   faithfulness — loss of the top-n nodes of a ranking at MIB's grid of node
//                  fractions (Mueller et al. 2025), normalised to
//                  f = (L(∅) − L(C_n)) / (L(∅) − L(M)), and its CPR and CMD;
//                  for the circuit's own ranking, the other method's and random;
//   completeness — |L(C∖K) − L(M∖K)| over random subsets K of the circuit
//                  (Wang et al. 2022);
//   controls     — the same extraction on shuffled answers, a randomly
//                  initialised model, and a constant target;
//   stability    — the same extraction over seeds and resampled train prompts;
//   verdict      — one line derived from the figures (VerdictLine).
//
//   AuditInputs in{&model, "default.h5", digest, &circuit, &task, extract_options};
//   CIRCUIT_ASSIGN_OR_RETURN(AuditResult a, AuditCircuit(in, AuditOptions{}, progress));
//   a.curves[0].cpr, a.controls[0].result.met_target, a.stability.mean_jaccard, a.verdict
#ifndef CIRCUIT_PRUNE_AUDIT_H_
#define CIRCUIT_PRUNE_AUDIT_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/core/circuit.h"
#include "circuit/core/model.h"
#include "circuit/core/task.h"
#include "circuit/prune/ablation.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/progress.h"
#include "circuit/prune/pruner.h"

namespace circuit::prune {

// MIB's node fractions (evaluation.py, `percentages`).
inline constexpr double kMibFractions[] = {0.001, 0.002, 0.005, 0.01, 0.02,
                                           0.05,  0.1,   0.2,   0.5,  1.0};

// f = (L(∅) − L) / (L(∅) − L(M)): 1 for the full model, 0 for the empty
// circuit. NaN when L(∅) == L(M) (nothing to recover).
double Faithfulness(double loss, double empty_loss, double full_loss);

// CPR and CMD as MIB's evaluation code integrates them: trapezoids over the
// points in the order given, on the linear fraction axis (x = the requested
// fraction, not the realised node share), of f (CPR) and of |1 − f| (CMD).
// fractions and f have equal sizes (>= 2 for a nonzero area).
struct MibAreas {
  double cpr = 0.0;
  double cmd = 0.0;
};
MibAreas MibArea(const std::vector<double>& fractions, const std::vector<double>& f);

struct CurvePoint {
  double fraction = 0.0;  // of all nodes; the grid's value, or n / N for the circuit's size
  int64_t nodes = 0;      // kept: floor(fraction · N) on the grid (MIB's int())
  double loss = 0.0;      // test split, nats/prompt, uncalibrated
  double f = 0.0;         // Faithfulness(loss)
  bool on_grid = true;    // false: the extra point at the circuit's own size
};

struct FaithfulnessCurve {
  std::string ranking;             // "masks" | "attribution" | "random"
  std::vector<CurvePoint> points;  // ascending nodes: the grid and the circuit's size
  double cpr = 0.0;                // MibArea over the grid points only
  double cmd = 0.0;
};

struct ControlResult {
  std::string name;     // "shuffled" | "random_init" | "constant"
  int64_t n_nodes = 0;
  int64_t n_edges = 0;
  double circuit_loss = 0.0;  // test split of the control's task
  bool met_target = false;    // as `circuit extract` decides it (validation bound)
};

struct Completeness {
  int subsets = 0;
  double mean = 0.0;  // of |L(C∖K) − L(M∖K)|, nats/prompt
  double max = 0.0;
};

struct Stability {
  int runs = 0;               // the circuit itself and the re-extractions (AuditOptions::seeds)
  bool joint = true;          // AuditOptions::joint_stability
  double mean_jaccard = 0.0;  // over all pairs of runs' node sets
  double min_jaccard = 0.0;
  std::vector<std::string> core;  // NodeLabel of nodes in >= 80 % of runs
  std::vector<int64_t> run_nodes;  // node count of each run
};

// Transfer across template families (CEAP): a circuit extracted, with the
// circuit's settings, on every family of the task but one, scored on the
// held-out family's test split.
struct Transfer {
  bool computed = false;
  std::string note;                      // why not, when not computed
  std::string held_out;                  // the held-out family
  std::vector<std::string> extracted_on; // the other families the variant produces
  int64_t n_nodes = 0;                   // of the circuit extracted without held_out
  bool met_target = false;
  double in_family_loss = 0.0;           // its test loss on its own families
  double held_out_loss = 0.0;            // ... and on the held-out family
  double full_model_in_family_loss = 0.0;
  double full_model_held_out_loss = 0.0;
  // --task T: the audited circuit itself (no re-extraction) on another task's
  // test split (same candidate tokens); other_task "" when not asked.
  std::string other_task;
  double other_task_loss = 0.0;
  double full_model_other_task_loss = 0.0;
};

struct AuditOptions {
  int seeds = 5;              // stability: seeds (the circuit is the first) and resamples; 0: skip
  // true: `seeds` runs in all, run i > 0 with seed + i AND the i-th resample of
  // the train pairs (the circuit is run 0); false: seeds - 1 seed runs, then
  // `seeds` resample runs (twice the extractions). docs/faithfulness.md.
  bool joint_stability = true;
  int stack = 8;              // kept-node sets per stacked forward pass (curves, completeness)
  int random_rankings = 4;    // random rankings averaged into the random curve
  int completeness_subsets = 32;
  bool other_method = true;   // the curve of the method the circuit did not use
  bool controls = true;
  bool transfer = true;
  uint64_t seed = 0;          // random rankings, subsets, coin flips, resamples, random_init
};

struct AuditInputs {
  const TapModel* model = nullptr;  // either architecture
  std::string model_file;
  std::string model_digest;
  const Circuit* circuit = nullptr;  // with node_scores (else the ranking is recomputed)
  const TaskData* task = nullptr;    // the circuit's task, built as it was (TaskOptionsFor)
  ExtractOptions extract;            // ExtractOptionsFor(circuit), means cache set
  // For transfer: the model's tokenizer and the options the task was built
  // with (TaskOptionsFor). No tokenizer: no transfer.
  const Tokenizer* tokenizer = nullptr;
  TaskOptions task_options;
  const TaskData* other_task = nullptr;  // --task T: also score the circuit on T (Transfer)
};

// Where one re-extraction's time went (ExtractStats), for time_extractions.
struct ExtractionTime {
  std::string what;           // "control shuffled", "stability run 1", "transfer", ...
  double seconds = 0.0;       // the whole re-extraction
  double tie_break = 0.0;     // attribution scores that break tau ties
  double masks = 0.0;         // mask training (or attribution scores)
  double discretize = 0.0;    // discretization, edges included
  double refine = 0.0;        // refinement
  double finish = 0.0;        // the chosen set's test loss
  int64_t discretize_evaluations = 0;
  int64_t refine_evaluations = 0;  // selection and confirmation sets
  int64_t nodes = 0;
  bool met_target = false;
};

struct AuditResult {
  double full_loss = 0.0;   // L(M), test split
  double empty_loss = 0.0;  // L(∅): every node ablated
  double circuit_loss = 0.0;
  int64_t total_nodes = 0;
  int64_t circuit_nodes = 0;
  bool ranking_recomputed = false;      // the file had no node scores
  std::vector<FaithfulnessCurve> curves;  // the circuit's method first, then the other, random
  std::vector<ControlResult> controls;    // shuffled, random_init, constant (empty: skipped)
  Completeness completeness;
  Stability stability;                    // runs == 0: skipped
  Transfer transfer;
  std::string verdict;
  int64_t evaluations = 0;   // ablated test-split evaluations
  int64_t extractions = 0;   // extractions re-run (controls, stability)
  double seconds = 0.0;
  // Time of each part, in the order run ("losses", "ranking", "other method",
  // "curves", "completeness", then "controls", "stability", "transfer" and
  // "re-extractions"). The re-extractions run in parallel (ParallelFor): a
  // part of them has the sum of its re-extractions' seconds, and
  // "re-extractions" the wall time of all of them; the rest are wall times.
  std::vector<std::pair<std::string, double>> part_seconds;
  std::vector<ExtractionTime> extraction_times;  // each re-extraction: controls, stability, transfer
};

// Runs the audit. Errors: missing inputs, a circuit node outside the model, a
// task whose splits lack whole pairs, failed extractions.
absl::StatusOr<AuditResult> AuditCircuit(const AuditInputs& inputs, const AuditOptions& options,
                                         const ProgressFn& progress = nullptr);

// The family held out by the transfer check: the last of the task's families
// (generator order) among those its first candidate variant produces; "" when
// the task has no families.
std::string HeldOutFamily(const std::string& task, uint64_t seed,
                          std::vector<std::string>* others);

// The fewest nodes a nonsense control (shuffled, random_init) kept, over the
// circuit's node count (a control that missed the target kept every node);
// NaN when no control ran. Below ~2: the controls are as cheap as the circuit.
double ControlRatio(const AuditResult& a);

// The verdict line from the figures (the rule is in docs/faithfulness.md).
std::string VerdictLine(const AuditResult& a, double target_loss);

// Task transforms for the controls (twin order kept). Shuffled: each pair's
// two answers swap with probability ½, in every split. Constant: every prompt's
// correct answer is the first prompt's correct token (and its alternative the
// first prompt's alternative).
TaskData ShuffledAnswers(const TaskData& task, uint64_t seed);
TaskData ConstantTarget(const TaskData& task);

// Jaccard index |a ∩ b| / |a ∪ b| of two sorted node lists (1 when both are empty).
double Jaccard(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

// The node (flat indices) of the top-n by score, ties to the lower index. scores: (N).
std::vector<int64_t> RankNodes(const std::vector<float>& scores);

// The faithfulness part alone (curves and completeness): used by AuditCircuit,
// and by tests with hand-made rankings. `rankings`: (name, node order, best first).
struct FaithfulnessInputs {
  const AblationEvaluator* eval = nullptr;  // the test split
  int64_t total_nodes = 0;
  std::vector<int64_t> circuit;             // flat, ascending
  int stack = 8;                            // kept-node sets per stacked forward pass
};
// Test losses of kept-node sets (flat indices), `stack` sets per
// AblationEvaluator::LogitDiffsMany pass; adds the sets to *evaluations.
std::vector<double> StackedLosses(const AblationEvaluator& eval,
                                  const std::vector<std::vector<int64_t>>& sets, int64_t total,
                                  int stack, int64_t* evaluations,
                                  const ProgressFn& progress = nullptr);
absl::StatusOr<std::vector<FaithfulnessCurve>> FaithfulnessCurves(
    const FaithfulnessInputs& in, const std::vector<std::pair<std::string, std::vector<int64_t>>>& rankings,
    int random_rankings, uint64_t seed, double full_loss, double empty_loss, int64_t* evaluations,
    const ProgressFn& progress = nullptr);
Completeness CompletenessGap(const FaithfulnessInputs& in, int subsets, uint64_t seed,
                             int64_t* evaluations);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_AUDIT_H_
