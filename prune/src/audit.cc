// AuditCircuit: faithfulness, completeness, controls, stability and the verdict.
#include "circuit/prune/audit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "circuit/core/runtime.h"
#include "circuit/core/status.h"
#include "circuit/prune/attribution.h"
#include "circuit/prune/mask_optimizer.h"
#include "transfer.h"

namespace circuit::prune {
namespace {

using Clock = std::chrono::steady_clock;

// Node scores of every node (flat order) from unit scores (U).
std::vector<float> NodeScores(const torch::Tensor& unit_score, const MaskUnits& units) {
  const torch::Tensor s = unit_score.to(torch::kCPU, torch::kFloat32).contiguous();
  const float* p = s.data_ptr<float>();
  std::vector<float> out(units.node_unit.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = p[units.node_unit[i]];
  return out;
}

std::vector<int64_t> FlatNodes(const Circuit& c, const NodeIndex& index) {
  std::vector<int64_t> flat;
  for (const CircuitNode& n : c.nodes) flat.push_back(index.Flat(n.node));
  std::sort(flat.begin(), flat.end());
  return flat;
}

// The same pairs drawn with replacement (a bootstrap resample of the prompts).
std::vector<TaskExample> ResamplePairs(const std::vector<TaskExample>& split, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const size_t pairs = split.size() / 2;
  std::uniform_int_distribution<size_t> pick(0, pairs - 1);
  std::vector<TaskExample> out;
  out.reserve(2 * pairs);
  for (size_t i = 0; i < pairs; ++i) {
    const size_t p = pick(rng);
    out.push_back(split[2 * p]);
    out.push_back(split[2 * p + 1]);
  }
  return out;
}

struct Run {
  Circuit circuit;
  ExtractStats stats;
};

}  // namespace

TaskData ShuffledAnswers(const TaskData& task, uint64_t seed) {
  TaskData out = task;
  out.name = task.name + " (shuffled answers)";
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution coin(0.5);
  for (std::vector<TaskExample>* split : {&out.train, &out.validation, &out.test}) {
    for (size_t i = 0; i + 1 < split->size(); i += 2) {
      if (!coin(rng)) continue;
      for (size_t j : {i, i + 1}) std::swap((*split)[j].correct, (*split)[j].alternative);
    }
  }
  return out;
}

TaskData ConstantTarget(const TaskData& task) {
  TaskData out = task;
  out.name = task.name + " (constant target)";
  if (task.train.empty()) return out;
  const int32_t correct = task.train[0].correct, alternative = task.train[0].alternative;
  for (std::vector<TaskExample>* split : {&out.train, &out.validation, &out.test}) {
    for (TaskExample& ex : *split) {
      ex.correct = correct;
      ex.alternative = alternative;
    }
  }
  return out;
}

double Jaccard(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> both;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
  const size_t uni = a.size() + b.size() - both.size();
  return uni == 0 ? 1.0 : static_cast<double>(both.size()) / uni;
}

absl::StatusOr<AuditResult> AuditCircuit(const AuditInputs& in, const AuditOptions& options,
                                         const ProgressFn& progress) {
  const Clock::time_point start = Clock::now();
  if (in.model == nullptr || in.circuit == nullptr || in.task == nullptr) {
    return absl::InvalidArgumentError("audit: model, circuit and task are required");
  }
  const TapModel& model = *in.model;
  const Circuit& circuit = *in.circuit;
  const TaskData& task = *in.task;
  if (task.test.size() < 2 || task.train.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit: task ", task.name, " has no train or test pairs"));
  }
  const NodeIndex index(model.layout());
  for (const CircuitNode& n : circuit.nodes) {
    if (!index.Contains(n.node)) {
      return absl::InvalidArgumentError(
          absl::StrCat("audit: circuit node ", NodeLabel(n.node), " is not in the model"));
    }
  }
  AuditResult a;
  a.total_nodes = index.total();
  a.circuit_nodes = static_cast<int64_t>(circuit.nodes.size());
  const std::vector<int64_t> flat = FlatNodes(circuit, index);
  std::mutex audit_mu;  // the re-extractions run in parallel: their reports and counts
  auto stage = [&](const std::string& name) -> ProgressFn {
    if (!progress) return nullptr;
    return [&progress, &audit_mu, name](const std::string& s, double f) {
      const std::lock_guard<std::mutex> lock(audit_mu);
      progress(name.empty() ? s : name + " " + s, f);
    };
  };

  // Every re-run extraction: the circuit's settings, no importances and no
  // random baseline (only the node set and the losses are read).
  // Nodes only (no verification pass), the audited model's means resolved once;
  // refinement as the circuit was extracted (docs/faithfulness.md).
  const MeanCache* shared_means = nullptr;
  auto extract = [&](const TapModel& m, const std::string& digest, const TaskData& t,
                     ExtractOptions o, uint64_t seed, const std::string& what,
                     bool same_test = false) -> absl::StatusOr<Run> {
    o.seed = seed;
    o.node_importance = false;
    o.random_draws = 0;
    o.location_importance = false;
    o.nodes_only = true;
    // Refined as the circuit was: the file records whether refinement ran.
    o.refine = circuit.refined;
    if (&m == in.model) o.means = shared_means;
    if (same_test) o.full_test_loss = a.full_loss;
    Run run;
    CIRCUIT_ASSIGN_OR_RETURN(run.circuit, ExtractCircuitFromModel(m, in.model_file, digest, t, o,
                                                                  stage(what), &run.stats));
    const ExtractStats& st = run.stats;
    const std::lock_guard<std::mutex> lock(audit_mu);
    ++a.extractions;
    a.extraction_times.push_back(
        {what, st.seconds, st.tie_break_seconds, st.score_seconds, st.discretize_seconds,
         st.refine_seconds, st.verify_seconds, st.evaluations,
         st.refine_evaluations + st.refine_confirm_evaluations,
         static_cast<int64_t>(run.circuit.nodes.size()), st.met_target});
    return run;
  };

  Clock::time_point part = Clock::now();
  auto lap = [&](const std::string& name) {
    const Clock::time_point now = Clock::now();
    a.part_seconds.emplace_back(name, std::chrono::duration<double>(now - part).count());
    part = now;
  };
  CIRCUIT_ASSIGN_OR_RETURN(MeanCache cache, ResolveMeans(model, in.model_digest, task, in.extract));
  shared_means = &cache;
  const AblationEvaluator eval(model, index, cache.means, in.extract.ablation, task.test,
                               in.extract.eval_batch);
  FaithfulnessInputs fin{&eval, index.total(), flat, options.stack};
  {
    // L(M), L(∅) and L(C) in one stacked pass.
    std::vector<int64_t> all(index.total());
    for (int64_t i = 0; i < index.total(); ++i) all[i] = i;
    const std::vector<double> l = StackedLosses(eval, {all, {}, flat}, index.total(), 3,
                                                &a.evaluations);
    a.full_loss = l[0];
    a.empty_loss = l[1];
    a.circuit_loss = l[2];
  }
  lap("losses");

  // The circuit's own ranking: stored, or recomputed by the same extraction.
  std::vector<std::vector<int64_t>> runs;  // node sets for stability
  std::vector<float> own_scores = circuit.node_scores;
  if (static_cast<int64_t>(own_scores.size()) != index.total()) {
    CIRCUIT_ASSIGN_OR_RETURN(Run r, extract(model, in.model_digest, task, in.extract, circuit.seed,
                                            "ranking", /*same_test=*/true));
    own_scores = r.circuit.node_scores;
    a.ranking_recomputed = true;
    lap("ranking");
  }
  runs.push_back(flat);

  std::vector<std::pair<std::string, std::vector<int64_t>>> rankings;
  rankings.emplace_back(MethodName(in.extract.method), RankNodes(own_scores));
  if (options.other_method) {
    const MaskUnits units = BuildMaskUnits(index, in.extract.tie_qk);
    torch::Tensor unit_score;
    if (in.extract.method == Method::kMasks) {
      AttributionOptions ao;
      ao.ablation = in.extract.ablation;
      ao.batch_prompts = in.extract.eval_batch;
      ao.absolute = in.extract.attribution_absolute;
      CIRCUIT_ASSIGN_OR_RETURN(unit_score, AttributionScores(model, index, units, cache.means,
                                                             task.train, ao, stage("attribution")));
      rankings.emplace_back("attribution", RankNodes(NodeScores(unit_score, units)));
    } else {
      MaskTrainOptions mo = in.extract.masks;
      mo.ablation = in.extract.ablation;
      CIRCUIT_ASSIGN_OR_RETURN(MaskTrainResult r, TrainMasks(model, index, units, cache.means,
                                                             task.train, mo, circuit.seed,
                                                             stage("masks")));
      rankings.emplace_back("masks", RankNodes(NodeScores(r.tau, units)));
    }
    lap("other method");
  }
  CIRCUIT_ASSIGN_OR_RETURN(a.curves, FaithfulnessCurves(fin, rankings, options.random_rankings,
                                                        options.seed, a.full_loss, a.empty_loss,
                                                        &a.evaluations, stage("")));
  lap("curves");
  a.completeness = CompletenessGap(fin, options.completeness_subsets, options.seed, &a.evaluations);
  lap("completeness");

  // The re-extractions (controls, stability runs, transfer) are independent
  // jobs: one ParallelFor, each job on one thread with the other threads
  // taking its prompt batches once they are done with their own jobs.
  struct Job {
    std::string part;  // "controls", "stability" or "transfer"
    std::function<absl::Status()> run;
    absl::Status status;
    double seconds = 0.0;
  };
  std::vector<Job> jobs;
  std::vector<Run> control_runs;
  const std::vector<std::string> control_names = {"shuffled", "random_init", "constant"};
  // Stability. Joint: run i varies the seed and the train pairs at once (each
  // figure then bounds the spread from either source). Separate: the seeds on
  // the circuit's own pairs, then the resamples with the circuit's seed.
  auto resampled = [&](int i) {
    TaskData t = task;
    t.train = ResamplePairs(task.train, options.seed + 0x9e37 + i);
    return t;
  };
  struct StabilityRun {
    std::string what;
    bool resample = false;
    int i = 0;
    uint64_t seed = 0;
  };
  std::vector<StabilityRun> stability_runs;
  for (int i = 1; options.seeds > 0 && i < options.seeds; ++i) {
    stability_runs.push_back({options.joint_stability ? absl::StrCat("stability run ", i)
                                                      : absl::StrCat("stability seed ", i),
                              options.joint_stability, i, circuit.seed + i});
  }
  for (int i = 0; options.seeds > 0 && !options.joint_stability && i < options.seeds; ++i) {
    stability_runs.push_back({absl::StrCat("stability resample ", i), true, i, circuit.seed});
  }
  std::vector<std::vector<int64_t>> stability_sets(stability_runs.size());
  for (size_t j = 0; j < stability_runs.size(); ++j) {
    jobs.push_back({"stability", [&, j]() -> absl::Status {
      const StabilityRun& sr = stability_runs[j];
      CIRCUIT_ASSIGN_OR_RETURN(Run r, extract(model, in.model_digest,
                                              sr.resample ? resampled(sr.i) : task, in.extract,
                                              sr.seed, sr.what, /*same_test=*/true));
      stability_sets[j] = FlatNodes(r.circuit, index);
      return absl::OkStatus();
    }});
  }
  if (options.transfer) {
    jobs.push_back({"transfer", [&]() -> absl::Status {
      internal::ExtractFn fn = [&](const TaskData& t, const std::string& what,
                                   bool* met) -> absl::StatusOr<Circuit> {
        CIRCUIT_ASSIGN_OR_RETURN(Run r, extract(model, in.model_digest, t, in.extract,
                                                circuit.seed, what));
        *met = r.stats.met_target;
        return r.circuit;
      };
      CIRCUIT_ASSIGN_OR_RETURN(a.transfer, internal::TransferAcrossFamilies(in, cache, fn));
      return absl::OkStatus();
    }});
  } else {
    a.transfer.note = "not computed: switched off";
    internal::ScoreOnOtherTask(in, cache, &a.transfer);
  }
  if (options.controls) {
    control_runs.resize(control_names.size());
    // Likely the longest job: a constant answer is the easiest target, so
    // this control usually meets it and is refined. ParallelFor starts jobs
    // in order; the nonsense controls, which usually miss and stop after
    // mask training, go last.
    jobs.insert(jobs.begin(), Job{"controls", [&]() -> absl::Status {
      CIRCUIT_ASSIGN_OR_RETURN(control_runs[2], extract(model, in.model_digest,
                                                        ConstantTarget(task), in.extract,
                                                        circuit.seed, "control constant"));
      return absl::OkStatus();
    }});
    jobs.push_back({"controls", [&]() -> absl::Status {
      const TaskData shuffled = ShuffledAnswers(task, options.seed ^ 0x5bu);
      CIRCUIT_ASSIGN_OR_RETURN(control_runs[0], extract(model, in.model_digest, shuffled,
                                                        in.extract, circuit.seed,
                                                        "control shuffled"));
      return absl::OkStatus();
    }});
    jobs.push_back({"controls", [&]() -> absl::Status {
      // A model of the same config from `circuit init`; its means come from the
      // task's train prompts (there is no pretraining text for it).
      CIRCUIT_ASSIGN_OR_RETURN(std::unique_ptr<TapModel> random_model,
                               model.Reinitialized(options.seed));
      ExtractOptions ro = in.extract;
      ro.means_cache.clear();
      ro.mean_windows = torch::Tensor();
      CIRCUIT_ASSIGN_OR_RETURN(control_runs[1], extract(*random_model, "random-init", task, ro,
                                                        circuit.seed, "control random_init"));
      return absl::OkStatus();
    }});
  }
  ParallelFor(static_cast<int64_t>(jobs.size()), [&](int64_t j) {
    const Clock::time_point job_start = Clock::now();
    jobs[j].status = jobs[j].run();
    jobs[j].seconds = std::chrono::duration<double>(Clock::now() - job_start).count();
  });
  for (const Job& job : jobs) CIRCUIT_RETURN_IF_ERROR(job.status);
  // The jobs' times overlap: each part's is the sum over its jobs; the
  // re-extractions' wall time is its own entry.
  if (!jobs.empty()) {
    for (const char* name : {"controls", "stability", "transfer"}) {
      double sum = 0.0;
      bool any = false;
      for (const Job& job : jobs) {
        if (job.part != name) continue;
        sum += job.seconds;
        any = true;
      }
      if (any) a.part_seconds.emplace_back(name, sum);
    }
    lap("re-extractions");
  }
  // The re-extractions' times in a fixed order, whichever finished first: the
  // controls (shuffled, random_init, constant), the stability runs, transfer.
  std::vector<std::string> order;
  for (const std::string& c : control_names) order.push_back("control " + c);
  for (const StabilityRun& sr : stability_runs) order.push_back(sr.what);
  auto rank = [&](const ExtractionTime& t) {
    return std::find(order.begin(), order.end(), t.what) - order.begin();
  };
  std::stable_sort(a.extraction_times.begin(), a.extraction_times.end(),
                   [&](const ExtractionTime& x, const ExtractionTime& y) { return rank(x) < rank(y); });

  for (size_t c = 0; c < control_runs.size(); ++c) {
    const Run& r = control_runs[c];
    ControlResult cr;
    cr.name = control_names[c];
    cr.n_nodes = static_cast<int64_t>(r.circuit.nodes.size());
    cr.n_edges = static_cast<int64_t>(r.circuit.edges.size());
    cr.circuit_loss = r.circuit.circuit_loss;
    cr.met_target = r.stats.met_target;
    a.controls.push_back(cr);
  }
  if (options.seeds > 0) {
    runs.insert(runs.end(), stability_sets.begin(), stability_sets.end());
    Stability& st = a.stability;
    st.joint = options.joint_stability;
    st.runs = static_cast<int>(runs.size());
    double sum = 0.0;
    int pairs = 0;
    st.min_jaccard = 1.0;
    for (size_t i = 0; i < runs.size(); ++i) {
      st.run_nodes.push_back(static_cast<int64_t>(runs[i].size()));
      for (size_t j = i + 1; j < runs.size(); ++j) {
        const double jac = Jaccard(runs[i], runs[j]);
        sum += jac;
        ++pairs;
        st.min_jaccard = std::min(st.min_jaccard, jac);
      }
    }
    st.mean_jaccard = pairs > 0 ? sum / pairs : 1.0;
    std::map<int64_t, int> count;
    for (const auto& r : runs) {
      for (int64_t n : r) ++count[n];
    }
    for (const auto& [node, k] : count) {
      if (k >= 0.8 * runs.size()) st.core.push_back(NodeLabel(index.At(node)));
    }
  }

  a.verdict = VerdictLine(a, circuit.target_loss);
  a.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return a;
}

double ControlRatio(const AuditResult& a) {
  double ratio = std::numeric_limits<double>::quiet_NaN();
  for (const ControlResult& c : a.controls) {
    if (c.name != "shuffled" && c.name != "random_init") continue;
    const double r = static_cast<double>(c.n_nodes) / std::max<int64_t>(1, a.circuit_nodes);
    if (!(r >= ratio)) ratio = r;  // NaN-safe min
  }
  return ratio;
}

std::string VerdictLine(const AuditResult& a, double target_loss) {
  const int64_t n = std::max<int64_t>(1, a.circuit_nodes);
  std::string head;
  if (!(a.circuit_loss <= target_loss)) {
    head = absl::StrFormat("NOT a circuit for the task: its test loss %.3f exceeds the target %.3g",
                           a.circuit_loss, target_loss);
  } else if (a.controls.empty()) {
    head = "controls not run: cannot tell this circuit from a pruning artefact";
  } else {
    // The nonsense controls: no mechanism should exist for them.
    const ControlResult* cheap = nullptr;  // met the target with the fewest nodes
    for (const ControlResult& c : a.controls) {
      if (c.name == "constant" || !c.met_target) continue;
      if (cheap == nullptr || c.n_nodes < cheap->n_nodes) cheap = &c;
    }
    const ControlResult* shuffled = nullptr;
    for (const ControlResult& c : a.controls) {
      if (c.name == "shuffled") shuffled = &c;
    }
    if (cheap != nullptr && cheap->n_nodes <= 2 * n) {
      head = absl::StrFormat("NOT distinguishable: the %s control reaches the target with %d nodes "
                             "(circuit: %d)", cheap->name, cheap->n_nodes, n);
    } else if (cheap != nullptr) {
      head = absl::StrFormat("weakly distinguishable: the %s control reaches the target, but needs "
                             "%.1fx more nodes (%d vs %d)", cheap->name,
                             static_cast<double>(cheap->n_nodes) / n, cheap->n_nodes, n);
    } else {
      head = absl::StrFormat("distinguishable from controls: the shuffled control needs %.0fx more "
                             "nodes and misses the target, as does the random-init model",
                             shuffled ? static_cast<double>(shuffled->n_nodes) / n : 0.0);
    }
    for (const ControlResult& c : a.controls) {
      // 0 nodes: the all-ablated model already gives the constant answer; no comparison.
      if (c.name == "constant" && c.met_target && c.n_nodes > 0 && n >= c.n_nodes) {
        head += absl::StrFormat(" (but it is no smaller than the constant-answer control's %d nodes)",
                                c.n_nodes);
      }
    }
  }
  std::vector<std::string> notes;
  const FaithfulnessCurve* own = a.curves.empty() ? nullptr : &a.curves.front();
  const FaithfulnessCurve* random = nullptr;
  for (const FaithfulnessCurve& c : a.curves) {
    if (c.ranking == "random") random = &c;
  }
  if (own != nullptr && random != nullptr) {
    notes.push_back(absl::StrFormat("%s CPR %.3f vs random %.3f (CMD %.3f vs %.3f)",
                                    own->cpr > random->cpr ? "ranking beats random:"
                                                           : "ranking NO better than random:",
                                    own->cpr, random->cpr, own->cmd, random->cmd));
  }
  if (a.completeness.subsets > 0) {
    notes.push_back(absl::StrFormat(
        "%s (mean |L(C\\K) - L(M\\K)| %.3f, max %.3f)",
        a.completeness.mean > target_loss ? "INCOMPLETE" : "complete", a.completeness.mean,
        a.completeness.max));
  }
  if (a.stability.runs > 1) {
    notes.push_back(absl::StrFormat("%s over %d runs (mean Jaccard %.2f, min %.2f, %d core nodes)",
                                    a.stability.mean_jaccard >= 0.5 ? "stable" : "UNSTABLE",
                                    a.stability.runs, a.stability.mean_jaccard,
                                    a.stability.min_jaccard, a.stability.core.size()));
  }
  if (a.transfer.computed) {
    const Transfer& t = a.transfer;
    notes.push_back(absl::StrFormat(
        "%s to the held-out template family '%s' (loss %.3f vs %.3f in-family; full model %.3f)",
        t.held_out_loss <= target_loss ? "transfers" : "does NOT transfer", t.held_out,
        t.held_out_loss, t.in_family_loss, t.full_model_held_out_loss));
  }
  std::string line = head;
  for (const std::string& s : notes) absl::StrAppend(&line, "; ", s);
  return line;
}

}  // namespace circuit::prune
