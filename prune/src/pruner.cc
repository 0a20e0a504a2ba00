// ExtractCircuit: means, scores, discretization, edges, verification.
#include "circuit/prune/pruner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "circuit/core/runtime.h"
#include "circuit/core/status.h"
#include "circuit/prune/attribution.h"
#include "circuit/prune/discretizer.h"
#include "circuit/prune/edge_selection.h"
#include "circuit/prune/edges.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/refine.h"
#include "circuit/prune/search.h"
#include "circuit/prune/settings.h"
#include "circuit/prune/verify.h"
#include "pruner_internal.h"

namespace circuit::prune {
namespace {

using Clock = std::chrono::steady_clock;
using internal::AddNote;
using internal::Candidate;
using internal::NodesOnlyCircuit;
using internal::RefineCandidate;
bool Better(const Candidate& a, const Candidate& b) {
  if (a.disc.met_target != b.disc.met_target) return a.disc.met_target;
  if (!a.disc.met_target) return a.disc.loss < b.disc.loss;
  if (a.edges.size() != b.edges.size()) return a.edges.size() < b.edges.size();
  return a.flat.size() < b.flat.size();
}

// The signal that breaks near-ties of the scores (RankUnits), computed on first
// use; nullptr: no tie-break.
using SecondFn = std::function<torch::Tensor()>;

// Cuts of the tau-only ranking `order` that keep whole blocks of near-tied
// units (RankUnits' blocks): boundary[k] is true when the top k units are the
// same set whatever order the tie-break gives inside the blocks.
std::vector<bool> BlockBoundaries(const torch::Tensor& scores, const std::vector<int64_t>& order) {
  const int64_t n = static_cast<int64_t>(order.size());
  std::vector<bool> boundary(n + 1, true);
  const torch::Tensor s = scores.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* v = s.data_ptr<double>();
  const double tol = TieTolerance(s);
  int64_t begin = 0;
  for (int64_t i = 1; i <= n; ++i) {
    if (i == n || v[order[begin]] - v[order[i]] > tol) {
      for (int64_t j = begin + 1; j < i; ++j) boundary[j] = false;
      begin = i;
    }
  }
  return boundary;
}

// Ranks units by score (near-ties by second() when given) and finds the
// smallest k meeting the target on `eval`. The tie-break is computed only when
// a cut that is evaluated, or the tie note at the chosen cut, passes through a
// block of near-tied units: every other cut keeps the same set in either order.
Candidate DiscretizeScores(const TapModel& model, const NodeIndex& index, const MaskUnits& units,
                           const AblationEvaluator& eval, torch::Tensor unit_score, int64_t hint,
                           const ExtractOptions& options, const SecondFn& second_fn = nullptr) {
  Candidate c;
  c.unit_score = std::move(unit_score);
  torch::Tensor second;
  std::vector<int64_t> order = RankUnits(c.unit_score);
  const std::vector<bool> boundary = second_fn ? BlockBoundaries(c.unit_score, order)
                                               : std::vector<bool>(units.n_units + 1, true);
  std::vector<int64_t> unit_rank(units.n_units);
  std::vector<int64_t> nodes_upto(units.n_units + 1, 0);  // nodes in the top-k units
  torch::Tensor node_rank;                                // (N)
  auto rank = [&] {
    for (int64_t r = 0; r < units.n_units; ++r) {
      unit_rank[order[r]] = r;
      nodes_upto[r + 1] = nodes_upto[r] + static_cast<int64_t>(units.unit_nodes[order[r]].size());
    }
    std::vector<int64_t> node_rank_v(index.total());
    for (int64_t i = 0; i < index.total(); ++i) node_rank_v[i] = unit_rank[units.node_unit[i]];
    node_rank = torch::tensor(node_rank_v, torch::kInt64);
  };
  rank();
  auto tie_break = [&] {
    if (!second_fn || second.defined()) return;
    second = second_fn();
    order = RankUnits(c.unit_score, second);
    rank();
  };
  auto keep_top = [&](int64_t k) {
    if (!boundary[k]) tie_break();
    return (node_rank < k).to(torch::kFloat32);
  };

  std::map<int64_t, LogitCalibration> cals;
  // A nodes-only run reads no loss-vs-k curve: a k that misses the target may
  // stop early (GiveUp), except the full set (its loss is reported on a miss).
  const bool give_up = options.give_up && options.nodes_only && !options.calibrate;
  auto loss_at = [&](int64_t k) {
    GiveUp g{{options.target_loss}, nullptr};
    if (give_up && k < units.n_units) {
      const TaskScore s = AblationEvaluator::ScreenedScore(eval.LogitDiffs(keep_top(k), &g));
      return LossEstimate{s.loss, s.loss_std_error};
    }
    const torch::Tensor diffs = eval.LogitDiffs(keep_top(k));
    const LogitCalibration* cal = nullptr;
    if (options.calibrate) {
      cals[k] = FitCalibration(diffs, TwinSigns(diffs.size(0)));
      cal = &cals[k];
    }
    const TaskScore s = AblationEvaluator::ScoreDiffs(diffs, cal);
    return LossEstimate{s.loss, s.loss_std_error};
  };
  DiscretizeOptions d;
  d.target_loss = options.target_loss;
  d.z = ConfidenceZ(options.confidence);
  d.sweep_points = options.sweep_points;
  c.disc = Discretize(loss_at, units.n_units, hint, d);
  if (cals.count(c.disc.units)) c.calibration = cals[c.disc.units];
  for (int64_t k : c.disc.curve_units) c.curve_nodes.push_back(nodes_upto[k]);
  if (c.disc.met_target) {
    std::vector<int64_t> unit_size(units.n_units);
    for (int64_t u = 0; u < units.n_units; ++u) unit_size[u] = units.unit_nodes[u].size();
    TieAtCut tie = FindTieAtCut(c.unit_score, order, c.disc.units, unit_size);
    // A tie under the tau-only order is one under the tie-broken order too when
    // its last kept unit is the block's lowest; the note needs the broken order.
    if (tie.tied_kept > 0 && second_fn && !second.defined()) {
      tie_break();
      tie = FindTieAtCut(c.unit_score, order, c.disc.units, unit_size);
    }
    c.tied_nodes = tie.tied_kept;
    if (tie.tied_kept > 0) {
      c.tie_note = absl::StrFormat(
          "%d of the %d kept nodes are tied with %d left-out nodes at %s %.4g (within %.2g); "
          "their order %s",
          tie.tied_kept, nodes_upto[c.disc.units], tie.tied_left,
          options.method == Method::kMasks ? "tau" : "score", tie.score, tie.tolerance,
          second.defined() ? "follows the attribution score" : "is arbitrary (node index)");
    }
  }

  for (int64_t r = 0; r < c.disc.units; ++r) {
    for (int64_t node : units.unit_nodes[order[r]]) c.flat.push_back(node);
  }
  std::sort(c.flat.begin(), c.flat.end());
  std::vector<Node> nodes;
  nodes.reserve(c.flat.size());
  for (int64_t i : c.flat) nodes.push_back(index.At(i));
  c.edges = CircuitEdges(model, nodes);
  return c;
}

absl::Status CheckTask(const TaskData& task) {
  CIRCUIT_RETURN_IF_ERROR(RequireTwins(task));
  auto check = [&](const std::vector<TaskExample>& split, const char* name) -> absl::Status {
    if (split.size() < 2 || split.size() % 2 != 0) {
      return absl::InvalidArgumentError(absl::StrCat("task ", task.name, ": the ", name,
                                                     " split needs whole pairs, has ",
                                                     split.size(), " prompts"));
    }
    return absl::OkStatus();
  };
  CIRCUIT_RETURN_IF_ERROR(check(task.train, "train"));
  CIRCUIT_RETURN_IF_ERROR(check(task.validation, "validation"));
  return check(task.test, "test");
}

}  // namespace

absl::StatusOr<Method> ParseMethod(const std::string& name) {
  if (name == "masks") return Method::kMasks;
  if (name == "attribution") return Method::kAttribution;
  return absl::InvalidArgumentError(
      absl::StrCat("method: unknown value '", name, "' (expected masks or attribution)"));
}

std::string MethodName(Method method) { return method == Method::kMasks ? "masks" : "attribution"; }

absl::StatusOr<torch::Tensor> WindowsFromExamples(const std::vector<TaskExample>& examples,
                                                  int length) {
  std::vector<int64_t> stream;
  for (const TaskExample& ex : examples) stream.insert(stream.end(), ex.tokens.begin(), ex.tokens.end());
  const int64_t n = static_cast<int64_t>(stream.size()) / std::max(1, length);
  if (length < 1 || n < 1) {
    return absl::InvalidArgumentError(absl::StrCat("means: ", stream.size(),
                                                   " task tokens are fewer than one window of ",
                                                   length));
  }
  stream.resize(n * length);
  return torch::tensor(stream, torch::kInt64).view({n, length});
}

absl::StatusOr<MeanCache> ResolveMeans(const TapModel& model, const std::string& model_digest,
                                       const TaskData& task, const ExtractOptions& options,
                                       ExtractStats* stats) {
  torch::Tensor windows = options.mean_windows;
  std::string source = options.mean_source;
  std::string cache_path = options.means_cache;
  bool reused = false;
  std::string note;
  if (!windows.defined() && !cache_path.empty()) {
    // Means cached for this model (by `circuit train` or an extract with a
    // corpus) are over pretraining text: better than any stand-in.
    absl::StatusOr<MeanCache> cached = LoadMeans(cache_path, model.layout(), model.device());
    if (cached.ok() && cached->model_digest == model_digest) {
      if (stats != nullptr) {
        stats->means_reused = true;
        stats->means_source = cached->source;
      }
      return cached;
    }
    if (!cached.ok() && !absl::IsNotFound(cached.status())) {
      note = absl::StrCat("ignored the mean cache: ", cached.status().message());
    }
  }
  if (windows.defined() && !cache_path.empty()) {
    cache_path = MeansPathForSource(cache_path, model.layout(), model_digest, TokensDigest(windows));
  }
  if (!windows.defined()) {
    CIRCUIT_ASSIGN_OR_RETURN(windows, WindowsFromExamples(task.train, model.n_ctx()));
    source = absl::StrCat("train prompts of task ", task.name, " (no corpus means cached for this model)");
    cache_path.clear();  // task-specific means must not pose as the model's means
  }
  CIRCUIT_ASSIGN_OR_RETURN(MeanCache cache, LoadOrComputeMeans(cache_path, model,
                                                               model_digest, windows, source,
                                                               &reused, &note));
  if (stats != nullptr) {
    stats->means_reused = reused;
    stats->means_source = cache.source.empty() ? source : cache.source;
    if (!note.empty()) stats->note = note;
  }
  return cache;
}

namespace {

absl::StatusOr<Circuit> ExtractFromFile(const TapModel& model, const std::string& path,
                                        const std::string& digest, const TaskData& task,
                                        const ExtractOptions& options, const ProgressFn& progress,
                                        ExtractStats* stats) {
  ExtractOptions o = options;
  if (o.means_cache.empty() && o.means_cache_auto && !path.empty()) {
    o.means_cache = MeansPathFor(path);
  }
  return ExtractCircuitFromModel(model, std::filesystem::path(path).filename().string(), digest,
                                 task, o, progress, stats);
}

}  // namespace

absl::StatusOr<Circuit> ExtractCircuit(const ModelFile& file, const TaskData& task,
                                       const ExtractOptions& options, const ProgressFn& progress,
                                       ExtractStats* stats) {
  return ExtractFromFile(file.model, file.path, file.digest, task, options, progress, stats);
}

absl::StatusOr<Circuit> ExtractCircuit(const AnyModelFile& file, const TaskData& task,
                                       const ExtractOptions& options, const ProgressFn& progress,
                                       ExtractStats* stats) {
  return ExtractFromFile(*file.model, file.path, file.digest, task, options, progress, stats);
}

absl::StatusOr<Circuit> ExtractCircuitFromModel(const TapModel& model, const std::string& model_file,
                                                const std::string& model_digest,
                                                const TaskData& task,
                                                const ExtractOptions& options,
                                                const ProgressFn& progress,
                                                ExtractStats* stats_out) {
  const Clock::time_point start = Clock::now();
  ExtractStats stats;
  CIRCUIT_RETURN_IF_ERROR(CheckTask(task));
  CIRCUIT_RETURN_IF_ERROR(ValidateMaskTrainOptions(options.masks));
  if (!(options.target_loss > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target loss must be > 0, got ", options.target_loss));
  }
  CIRCUIT_RETURN_IF_ERROR(ValidateConfidence(options.confidence));
  const NodeIndex index(model.layout());
  const MaskUnits units = BuildMaskUnits(index, options.tie_qk);

  Clock::time_point t = Clock::now();
  if (progress) progress("means", 0.0);
  MeanCache resolved;
  if (options.means == nullptr) {
    CIRCUIT_ASSIGN_OR_RETURN(resolved, ResolveMeans(model, model_digest, task, options, &stats));
  } else {
    stats.means_reused = true;
    stats.means_source = options.means->source;
  }
  const std::vector<torch::Tensor>& means =
      options.means != nullptr ? options.means->means : resolved.means;
  stats.means_seconds = SecondsSince(t);

  const AblationEvaluator val(model, index, means, options.ablation, task.validation,
                              options.eval_batch);
  // Read by reports only: a nodes-only re-extraction skips the pass.
  stats.full_validation_loss =
      options.nodes_only ? std::nan("") : val.Score(torch::Tensor()).loss;

  std::vector<Candidate> candidates;
  if (options.method == Method::kMasks) {
    MaskTrainOptions centre = options.masks;
    centre.ablation = options.ablation;
    const std::vector<MaskTrainOptions> settings =
        SearchSettings(centre, std::max(1, options.search), options.seed);
    // Breaks tau ties: computed once, when a cut first needs it (DiscretizeScores).
    torch::Tensor second;
    absl::Status second_status;
    SecondFn second_fn = nullptr;
    if (options.tie_break) {
      second_fn = [&]() -> torch::Tensor {
        if (second.defined() || !second_status.ok()) return second;
        const Clock::time_point t0 = Clock::now();
        AttributionOptions a;
        a.ablation = options.ablation;
        a.batch_prompts = options.eval_batch;
        absl::StatusOr<torch::Tensor> s = AttributionScores(model, index, units, means, task.train, a);
        if (s.ok()) second = *s; else second_status = s.status();
        stats.tie_break_seconds += SecondsSince(t0);
        return second;
      };
    }
    for (size_t i = 0; i < settings.size(); ++i) {
      const std::string prefix =
          settings.size() > 1 ? absl::StrCat("search ", i + 1, "/", settings.size(), " ") : "";
      ProgressFn sub = nullptr;
      if (progress) sub = [&](const std::string& stage, double f) { progress(prefix + stage, f); };
      t = Clock::now();
      CIRCUIT_ASSIGN_OR_RETURN(MaskTrainResult r,
                               TrainMasks(model, index, units, means, task.train, settings[i],
                                          options.seed + i, sub));
      stats.score_seconds += SecondsSince(t);
      stats.mask_steps += r.steps;
      stats.forward_seconds += r.forward_seconds;
      stats.backward_seconds += r.backward_seconds;
      t = Clock::now();
      const double tie_before = stats.tie_break_seconds;
      if (sub) sub("discretize", 0.0);
      const int64_t active = (r.tau >= 0).sum().item<int64_t>();
      Candidate c = DiscretizeScores(model, index, units, val, r.tau, active, options, second_fn);
      CIRCUIT_RETURN_IF_ERROR(second_status);
      c.active = active;
      c.setting = static_cast<int>(i);
      c.setting_text = DescribeSetting(settings[i]);
      stats.evaluations += c.disc.evaluations;
      stats.discretize_seconds += SecondsSince(t) - (stats.tie_break_seconds - tie_before);
      candidates.push_back(std::move(c));
    }
  } else {
    t = Clock::now();
    AttributionOptions a;
    a.ablation = options.ablation;
    a.batch_prompts = options.eval_batch;
    a.absolute = options.attribution_absolute;
    CIRCUIT_ASSIGN_OR_RETURN(torch::Tensor score, AttributionScores(model, index, units, means,
                                                                     task.train, a, progress));
    stats.score_seconds = SecondsSince(t);
    t = Clock::now();
    if (progress) progress("discretize", 0.0);
    Candidate c = DiscretizeScores(model, index, units, val, score, units.n_units, options);
    c.active = units.n_units;
    c.setting_text = a.absolute ? "attribution |score|" : "attribution signed score";
    stats.evaluations = c.disc.evaluations;
    stats.discretize_seconds = SecondsSince(t);
    candidates.push_back(std::move(c));
  }
  size_t best = 0;
  for (size_t i = 1; i < candidates.size(); ++i) {
    if (Better(candidates[i], candidates[best])) best = i;
  }
  Candidate& c = candidates[best];
  const double minimality =
      RefineCandidate(model, index, units, means, task, val, options, progress, &c, &stats);
  stats.settings_tried = static_cast<int>(candidates.size());
  stats.best_setting = c.setting;
  stats.best_setting_text = c.setting_text;
  stats.active_after_training = c.active;
  stats.met_target = c.disc.met_target;
  stats.validation_loss = c.disc.loss;
  stats.validation_loss_bound = c.disc.loss_bound;
  stats.calibration = c.calibration;
  stats.total_edges = TotalEdges(model);

  t = Clock::now();
  if (options.nodes_only) {
    Circuit circuit = NodesOnlyCircuit(model, index, means, task, options, c, units);
    circuit.model_file = model_file;
    circuit.model_digest = model_digest;
    stats.verify_seconds = SecondsSince(t);
    stats.seconds = SecondsSince(start);
    if (stats_out != nullptr) *stats_out = stats;
    return circuit;
  }
  VerifyOptions v;
  v.ablation = options.ablation;
  v.batch_prompts = options.eval_batch;
  v.seed = options.seed;
  v.random_draws = options.random_draws;
  v.node_importance = options.node_importance;
  v.location_importance = options.location_importance;
  if (v.node_importance && options.importance_limit > 0 &&
      static_cast<int64_t>(c.flat.size()) > options.importance_limit) {
    v.node_importance = false;
    const std::string skipped = absl::StrCat(
        "per-node importance skipped: ", c.flat.size(), " nodes exceed --importance-limit ",
        options.importance_limit, " (one pass each; `circuit ablate` computes it)");
    AddNote(&stats, skipped);
  }
  v.calibration = options.calibrate ? &c.calibration : nullptr;
  CIRCUIT_ASSIGN_OR_RETURN(Verification ver,
                           VerifyCircuit(model, index, means, task.test, c.flat, v, progress));
  stats.verify_seconds = SecondsSince(t);

  // BDH's weights are dense: its edges are chosen by attribution
  // (edge_selection.h) when the node circuit met the target.
  std::optional<EdgeSelection> selected;
  if (const auto* bdh = dynamic_cast<const BdhModel*>(&model); bdh != nullptr && !c.flat.empty()) {
    if (options.ablation == Ablation::kResample || !stats.met_target) {
      AddNote(&stats, "edges: every weight between kept nodes (edges by attribution need a "
                      "circuit that meets the target, with mean or zero ablation)");
    } else {
      t = Clock::now();
      EdgeSelectionOptions eo;
      eo.ablation = options.ablation;
      eo.target_loss = options.target_loss;
      eo.z = ConfidenceZ(options.confidence);
      eo.batch_prompts = options.eval_batch;
      eo.calibration = options.calibrate ? &c.calibration : nullptr;
      if (progress) progress("edges", 0.0);
      CIRCUIT_ASSIGN_OR_RETURN(selected, SelectBdhEdges(*bdh, index, means, c.flat, task, eo));
      if (progress) progress("edges", 1.0);
      stats.edges_seconds = SecondsSince(t);
    }
  }

  Circuit circuit;
  circuit.task = task.name;
  circuit.model_file = model_file;
  circuit.model_digest = model_digest;
  circuit.ablation = AblationName(options.ablation);
  circuit.method = MethodName(options.method);
  circuit.penalty = PenaltyName(options.masks.penalty);
  circuit.seed = options.seed;
  circuit.n_layer = model.layout().n_layer();
  circuit.arch = model.arch();
  circuit.edge_definition =
      selected.has_value() ? AttributionEdgeDefinition() : EdgeDefinition(circuit.arch);
  if (selected.has_value()) {
    circuit.edge_candidates = selected->candidates;
    circuit.edge_loss = selected->test_loss;
  }
  circuit.target_loss = options.target_loss;
  circuit.full_model_loss = ver.full.loss;
  circuit.circuit_loss = ver.circuit.loss;
  circuit.necessity_loss = ver.necessity.loss;
  // NaN, not 0, for what was not computed (docs/formats.md).
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  circuit.random_baseline_loss = options.random_draws > 0 ? ver.random.loss : kNaN;
  circuit.accuracy = ver.circuit.accuracy;
  circuit.total_nodes = index.total();
  const torch::Tensor score = c.unit_score.to(torch::kCPU, torch::kFloat32).contiguous();
  for (size_t r = 0; r < c.flat.size(); ++r) {
    CircuitNode n;
    n.node = index.At(c.flat[r]);
    n.mask_logit = score[units.node_unit[c.flat[r]]].item<float>();
    n.importance = r < ver.node_importance.size() ? static_cast<float>(ver.node_importance[r])
                                                  : std::numeric_limits<float>::quiet_NaN();
    circuit.nodes.push_back(n);
  }
  circuit.edges = selected.has_value() ? std::move(selected->edges) : c.edges;
  circuit.loss_vs_k_k = c.curve_nodes;
  circuit.loss_vs_k_loss = c.disc.curve_loss;
  circuit.location_importance = ver.location_importance;
  // The whole ranking, so that an audit can rebuild circuits of any size.
  const float* unit_score = score.data_ptr<float>();  // (U), contiguous CPU
  circuit.node_scores.resize(index.total());
  for (int64_t i = 0; i < index.total(); ++i) circuit.node_scores[i] = unit_score[units.node_unit[i]];
  RecordExtractOptions(options, c.calibration, &circuit.settings);
  // What the task was built from is the caller's (RecordTaskOptions); the
  // sizes it produced are the fallback.
  circuit.settings.n_train = static_cast<int64_t>(task.train.size() / 2);
  circuit.settings.n_validation = static_cast<int64_t>(task.validation.size() / 2);
  circuit.settings.n_test = static_cast<int64_t>(task.test.size() / 2);
  circuit.minimality = minimality;
  circuit.refined = stats.refined;
  circuit.refine_removed = stats.refine_removed_nodes;
  circuit.tied_nodes = c.tied_nodes;
  circuit.tie_note = c.tie_note;
  stats.tie_note = c.tie_note;

  stats.seconds = SecondsSince(start);
  if (stats_out != nullptr) *stats_out = stats;
  return circuit;
}

}  // namespace circuit::prune
