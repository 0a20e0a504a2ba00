// circuit extract: the circuit of one task in one model (PAPER.md §4), written
// as DIR/circuit.h5 and DIR/summary.json, with a short report.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "args.h"
#include "circuit/core/any_model.h"
#include "circuit/core/arch.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/file_util.h"
#include "circuit/core/runtime.h"
#include "circuit/core/task.h"
#include "circuit/core/trainer.h"
#include "circuit/core/status.h"
#include "circuit/export/circuit_file.h"
#include "circuit/export/describe.h"
#include "circuit/export/dot.h"
#include "circuit/export/json.h"
#include "circuit/graph/circuit_graph.h"
#include "circuit/prune/discretizer.h"
#include "circuit/prune/explain_run.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/pruner.h"
#include "circuit/prune/search.h"
#include "circuit/prune/settings.h"
#include "command.h"
#include "progress.h"
#include "nlohmann/json.hpp"

namespace circuit::cli {
namespace {

// Circuits up to this size come explained (seconds); larger ones (the full model
// when the target is missed) are left to `circuit explain`.
constexpr size_t kExplainLimit = 2000;

// summary.json: the circuit as CircuitToJson writes it (docs/formats.md), plus an
// "extract" block with what only this run knows: settings, validation figures,
// the means used and where the time went.
absl::Status WriteSummary(const std::string& path, const Circuit& c, const graph::CircuitGraph& graph,
                          const prune::ExtractStats& s, const prune::ExtractOptions& o,
                          const std::string& preset) {
  nlohmann::json j = nlohmann::json::parse(CircuitToJson(c, &graph));
  j["extract"] = {
      {"met_target", s.met_target},
      {"total_edges", s.total_edges},
      {"validation_loss", {{"at_k", s.validation_loss}, {"bound_at_k", s.validation_loss_bound},
                           {"confidence", o.confidence}, {"full_model", s.full_validation_loss}}},
      {"calibration", {{"enabled", o.calibrate}, {"scale", s.calibration.scale},
                       {"shift", s.calibration.shift}}},
      {"preset", preset},
      {"runtime", {{"threads", torch::get_num_threads()}, {"threads_auto", AutoThreads()},
                   {"omp_wait_policy", std::getenv("OMP_WAIT_POLICY") != nullptr
                                           ? std::getenv("OMP_WAIT_POLICY") : "libgomp default"}}},
      {"tie_qk", o.tie_qk},
      {"search", {{"settings", s.settings_tried}, {"best", s.best_setting},
                  {"best_setting", s.best_setting_text}}},
      {"means", {{"source", s.means_source}, {"reused_cache", s.means_reused}}},
      {"mask_steps", s.mask_steps},
      {"note", s.note},
      {"tie_note", s.tie_note},
      {"refine", {{"enabled", o.refine}, {"ran", s.refined}, {"limit", o.refine_limit},
                  {"removed_nodes", s.refine_removed_nodes},
                  {"nodes_before", s.nodes_before_refine}, {"edges_before", s.edges_before_refine},
                  {"validation_loss_before", s.validation_loss_before_refine},
                  {"test_loss_before", s.test_loss_before_refine},
                  {"selection", {{"split", "train"}, {"pairs", s.refine_selection_pairs},
                                 {"loss", s.refine_selection_loss}}},
                  {"readded_nodes", s.refine_readded_nodes},
                  {"confirm_evaluations", s.refine_confirm_evaluations},
                  {"passes", s.refine_passes}, {"evaluations", s.refine_evaluations},
                  {"seconds", s.refine_seconds}}},
      {"time_seconds", {{"total", s.seconds}, {"means", s.means_seconds},
                        {"scores", s.score_seconds}, {"discretize", s.discretize_seconds},
                        {"verify", s.verify_seconds}, {"refine", s.refine_seconds},
                        {"edges", s.edges_seconds},
                        {"tie_break", s.tie_break_seconds}, {"mask_forward", s.forward_seconds},
                        {"mask_backward", s.backward_seconds}}}};
  return WriteFileAtomically(path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

// Beyond this many edges circuit.dot is not written either: no layout can draw
// it, and a dense model kept whole (a BDH model that misses the target: 3.2M
// edges) would give half a gigabyte of DOT. `circuit draw --force` still can.
constexpr int64_t kMaxDotEdges = 100000;

// DIR/circuit.h5, DIR/summary.json, and the diagram as DIR/circuit.dot and (when
// small enough to lay out) DIR/circuit.svg; returns the names of the files written.
absl::StatusOr<std::string> WriteCircuitOutputs(const std::string& dir, const Circuit& c, int d_head,
                                                const prune::ExtractStats& stats,
                                                const prune::ExtractOptions& o,
                                                const std::string& preset) {
  CIRCUIT_RETURN_IF_ERROR(WriteCircuitFile(dir + "/circuit.h5", c));
  CIRCUIT_ASSIGN_OR_RETURN(graph::CircuitGraph graph, graph::CircuitGraph::Build(c, {d_head}));
  CIRCUIT_RETURN_IF_ERROR(WriteSummary(dir + "/summary.json", c, graph, stats, o, preset));
  std::error_code ec;
  if (graph.num_weight_edges() + graph.num_residual_edges() > kMaxDotEdges) {
    for (const char* stale : {"/circuit.dot", "/circuit.svg"}) std::filesystem::remove(dir + stale, ec);
    return absl::StrFormat("circuit.h5, summary.json (no circuit.dot or .svg: %d edges)",
                           graph.num_weight_edges() + graph.num_residual_edges());
  }
  DotOptions options;
  options.d_head = d_head;
  options.title = CircuitTitle(c, graph);
  options.embedding_label = EmbeddingLabel(c);
  CIRCUIT_ASSIGN_OR_RETURN(std::string dot, CircuitToDot(graph, options));
  CIRCUIT_RETURN_IF_ERROR(RenderCircuit(dot, "dot", dir + "/circuit.dot"));
  if (TooLargeToLayOut(graph)) {
    std::filesystem::remove(dir + "/circuit.svg", ec);  // not a stale picture of another run
    return absl::StrFormat("circuit.h5, circuit.dot (no circuit.svg: %d nodes are too many to lay out), "
                           "summary.json", graph.num_nodes());
  }
  CIRCUIT_RETURN_IF_ERROR(RenderCircuit(dot, "svg", dir + "/circuit.svg"));
  return std::string("circuit.h5, circuit.dot, circuit.svg, summary.json");
}

void PrintReport(const Circuit& c, const prune::ExtractStats& s, const prune::ExtractOptions& o,
                 const std::string& preset, const std::string& out_dir, const std::string& written) {
  std::cout << absl::StrFormat("circuit of %s in %s (digest %s)\n", c.task, c.model_file, c.model_digest);
  std::cout << absl::StrFormat("  nodes     %d of %d (%.3f%%), edges %d of %d %s\n",
                               c.nodes.size(), c.total_nodes,
                               100.0 * c.nodes.size() / std::max<int64_t>(1, c.total_nodes),
                               c.edges.size(), s.total_edges,
                               c.arch == kArchBdh ? "weights and links (BDH: dense)"
                                                  : "nonzero weights");
  if (c.edge_candidates >= 0) {
    std::cout << absl::StrFormat(
        "  edges     by attribution: %d of the %d weights between kept nodes, in %.1f s; "
        "circuit loss with only them %.4f (test)\n",
        WeightEdges(c), c.edge_candidates, s.edges_seconds, c.edge_loss);
  }
  std::cout << absl::StrFormat(
      "  loss      circuit %.4f (target %.3g%s), full model %.4f, necessity %.4f, random %.4f "
      "(test, nats/prompt)\n",
      c.circuit_loss, c.target_loss, s.met_target ? "" : ", NOT MET on validation",
      c.full_model_loss, c.necessity_loss, c.random_baseline_loss);
  std::cout << absl::StrFormat(
      "  chosen by validation loss %.4f, upper bound %.4f at confidence %.2f (full model %.4f)\n",
      s.validation_loss, s.validation_loss_bound, o.confidence, s.full_validation_loss);
  std::cout << absl::StrFormat("  accuracy  %.3f on the test split\n", c.accuracy);
  std::cout << "  minimal   " << MinimalityText(c) << "\n";
  if (s.refined) {
    std::cout << absl::StrFormat(
        "  refined   %d -> %d nodes%s in %.1f s (selected on %d train pairs: %d "
        "sweeps, %d sets; confirmed on validation: %d sets, %d nodes put back; validation loss "
        "%.4f -> %.4f, test %.4f -> %.4f)\n",
        s.nodes_before_refine, c.nodes.size(),
        // Edges chosen by attribution are not comparable with the ones before.
        c.edge_candidates >= 0
            ? ""
            : absl::StrFormat(", %d -> %d edges", s.edges_before_refine, c.edges.size()),
        s.refine_seconds, s.refine_selection_pairs, s.refine_passes, s.refine_evaluations,
        s.refine_confirm_evaluations, s.refine_readded_nodes, s.validation_loss_before_refine,
        s.validation_loss,
        std::isnan(s.test_loss_before_refine) ? c.circuit_loss : s.test_loss_before_refine,
        c.circuit_loss);
  }
  if (!s.tie_note.empty()) std::cout << "  ranking   " << s.tie_note << "\n";
  std::cout << absl::StrFormat("  method    %s, %s ablation, %s penalty; preset %s; %s\n", c.method,
                               c.ablation, c.penalty, preset, s.best_setting_text);
  std::cout << absl::StrFormat(
      "  time      %.1f s: means %.1f, %s %.1f (%d steps, forward %.1f, backward %.1f), "
      "discretize %.1f, refine %.1f, verify %.1f%s\n",
      s.seconds, s.means_seconds, c.method, s.score_seconds, s.mask_steps, s.forward_seconds,
      s.backward_seconds, s.discretize_seconds, s.refine_seconds, s.verify_seconds,
      c.edge_candidates >= 0 ? absl::StrFormat(", edges %.1f", s.edges_seconds) : "");
  std::cout << absl::StrFormat("  means     %s%s\n", s.means_source,
                               s.means_reused ? " (cached)" : "");
  if (!s.note.empty()) std::cout << "  note      " << s.note << "\n";
  std::cout << "  wrote     " << out_dir << "/{" << written << "}\n";
}

int RunExtract(int argc, char** argv) {
  ArgParser parser(
      "circuit extract --task NAME --out DIR [options]",
      "Extract the smallest circuit of a task whose loss stays under the target: train node "
      "masks (or score nodes by attribution), discretize on the validation split, verify on the "
      "test split. Writes DIR/circuit.h5 and DIR/summary.json. See docs/pruning.md.");
  CommonOptions common;
  AddCommonOptions(parser, &common);
  prune::ExtractOptions o;
  std::string task_name, out_dir, ablation = "mean", penalty, method = "masks";
  std::string preset = "auto";
  prune::MaskTrainOptions given;  // the mask flags; each one given overrides the preset
  bool no_importance = false;
  TaskOptions task_options;
  parser.Option("task", "task name (circuit tasks) or file:path.jsonl", &task_name);
  parser.Option("out", "output directory", &out_dir);
  parser.Option("target-loss", "validation task loss to reach, nats/prompt", &o.target_loss);
  parser.Option("confidence", "one-sided confidence with which the validation split must meet the "
                "target (loss + z standard errors); 0.5: the mean alone, as the paper", &o.confidence);
  parser.Option("ablation", "mean | zero | resample", &ablation);
  parser.Option("method", "masks | attribution", &method);
  parser.Option("preset", "mask settings: auto (small for models under 32,768 nodes, else paper), "
                "small (linear 1e-3, lr 0.02, batch 16, 4 epochs) or paper (the paper's; log "
                "penalty); the flags below override single settings", &preset);
  parser.Option("penalty", "log | linear (c·log(1+k) or c·k)", &penalty);
  parser.Option("penalty-coef", "c; < 0: 0.0048 for log, 1e-4 for linear", &given.penalty_coef);
  parser.Option("search", "try this many hyperparameter settings, keep the smallest circuit", &o.search);
  parser.Flag("tie-qk", "one mask per (query, key) channel pair", &o.tie_qk);
  parser.Flag("calibrate", "fit a logit scale and shift (16 L-BFGS steps) at each k", &o.calibrate);
  parser.Option("epochs", "mask-training epochs over the train split", &given.epochs);
  parser.Option("lr", "mask learning rate", &given.lr);
  parser.Option("batch", "task datapoints (prompt pairs) per mask step", &given.batch);
  parser.Option("temperature", "Heaviside surrogate temperature", &given.heaviside_temp);
  parser.Option("warmup", "linear LR warmup share of the steps", &given.warmup_frac);
  parser.Option("pairs", "train datapoints (validation and test get a quarter each)", &task_options.n_train);
  parser.Flag("no-importance", "skip the per-node importance pass", &no_importance);
  parser.Option("importance-limit", "compute per-node importance only for circuits of at most "
                "this many nodes (one pass per node; 0: always)", &o.importance_limit);
  for (const char* name : {"penalty", "penalty-coef", "epochs", "lr", "batch", "temperature", "warmup"}) {
    parser.SetDefaultText(name, "the preset's");
  }
  parser.Flag("refine", "after discretization, drop every kept node whose removal keeps the "
              "bound under the target on --refine-pairs train pairs, then confirm on the validation "
              "split (--no-refine: only measure minimality)",
              &o.refine);
  parser.Option("refine-limit", "refine (and measure minimality) only for circuits of at most "
                "this many nodes (one pass over the selection pairs per node and sweep; 0: always)",
                &o.refine_limit);
  parser.Option("refine-pairs", "train pairs refinement selects removals on (0: as many as the "
                "validation split has)", &o.refine_pairs);
  parser.Option("eval-batch", "prompts per scoring pass (evaluations, the tie-break and attribution "
                "passes); fewer need less memory, e.g. at paper size (docs/performance.md)",
                &o.eval_batch);
  std::string corpus;
  parser.Option("corpus", "take the means from this corpus's val split (default: the means cached "
                "next to the model by `circuit train`)", &corpus);
  bool explain = true;
  parser.Flag("explain", "explain the circuit's nodes (circuit explain) when a corpus is found: --corpus, "
              "else $CIRCUIT_CORPUS or ./corpus; --no-explain skips it", &explain);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (task_name.empty()) return Fail("extract", "--task is required", kExitUsage);
  if (out_dir.empty()) return Fail("extract", "--out is required", kExitUsage);
  auto usage_error = [](const absl::Status& s) { return Fail("extract", std::string(s.message()), kExitUsage); };
  absl::StatusOr<prune::Ablation> ab = prune::ParseAblation(ablation);
  if (!ab.ok()) return usage_error(ab.status());
  if (parser.Given("penalty")) {
    absl::StatusOr<prune::Penalty> pe = prune::ParsePenalty(penalty);
    if (!pe.ok()) return usage_error(pe.status());
    given.penalty = *pe;
  }
  absl::StatusOr<prune::Method> me = prune::ParseMethod(method);
  if (!me.ok()) return usage_error(me.status());
  absl::StatusOr<prune::MaskPreset> pr = prune::ParseMaskPreset(preset);
  if (!pr.ok()) return usage_error(pr.status());
  o.ablation = *ab;
  o.method = *me;
  o.seed = common.seed;
  o.node_importance = !no_importance;
  if (o.importance_limit < 0) return Fail("extract", "--importance-limit must be >= 0", kExitUsage);
  if (o.refine_pairs < 0) {
    return Fail("extract", absl::StrCat("--refine-pairs must be >= 0, got ", o.refine_pairs),
                kExitUsage);
  }
  if (o.eval_batch < 1) {
    return Fail("extract", absl::StrCat("--eval-batch must be >= 1, got ", o.eval_batch),
                kExitUsage);
  }
  if (o.refine_limit < 0) {
    return Fail("extract", absl::StrCat("--refine-limit must be >= 0, got ", o.refine_limit),
                kExitUsage);
  }
  if (absl::Status s = prune::ValidateConfidence(o.confidence); !s.ok()) {
    return Fail("extract", absl::StrCat("--", s.message()), kExitUsage);
  }

  ConfigureRuntime(common.threads);
  KeepFreedMemory();
  torch::manual_seed(common.seed);
  absl::StatusOr<torch::Device> device = ParseDevice(common.device);
  if (!device.ok()) return usage_error(device.status());
  absl::StatusOr<AnyModelFile> file = LoadAnyModel(common.model, *device);
  if (!file.ok()) return usage_error(file.status());
  if (o.tie_qk && file->gpt() == nullptr) {
    return Fail("extract", absl::StrCat("--tie-qk: ", common.model, " is a ", file->arch,
                                        " model, which has no query and key channels"),
                kExitUsage);
  }
  const int64_t total_nodes = prune::NodeIndex(file->model->layout()).total();
  const prune::MaskPreset resolved = prune::ResolveMaskPreset(*pr, total_nodes);
  o.masks = prune::MaskPresetOptions(resolved, total_nodes);
  if (parser.Given("penalty")) {
    o.masks.penalty = given.penalty;
    if (!parser.Given("penalty-coef")) o.masks.penalty_coef = -1.0;  // that penalty's default
  }
  if (parser.Given("penalty-coef")) o.masks.penalty_coef = given.penalty_coef;
  if (parser.Given("epochs")) o.masks.epochs = given.epochs;
  if (parser.Given("lr")) o.masks.lr = given.lr;
  if (parser.Given("batch")) o.masks.batch = given.batch;
  if (parser.Given("temperature")) o.masks.heaviside_temp = given.heaviside_temp;
  if (parser.Given("warmup")) o.masks.warmup_frac = given.warmup_frac;
  if (absl::Status s = prune::ValidateMaskTrainOptions(o.masks); !s.ok()) return usage_error(s);
  const std::string preset_text =
      *pr == prune::MaskPreset::kAuto
          ? absl::StrFormat("%s (auto: %d nodes)", prune::MaskPresetName(resolved), total_nodes)
          : prune::MaskPresetName(resolved);
  if (!corpus.empty()) {
    absl::StatusOr<torch::Tensor> windows =
        prune::CorpusMeanWindows(corpus, file->model->vocab_size(), file->model->n_ctx(), 64,
                                  &o.mean_source);
    if (!windows.ok()) return usage_error(windows.status());
    o.mean_windows = *windows;
  }
  task_options = PruningSplits(task_options.n_train, file->model->n_ctx(), common.seed);
  absl::StatusOr<TaskData> task = BuildTask(task_name, file->tokenizer, task_options);
  if (!task.ok()) return usage_error(task.status());
  if (absl::Status s = RequireTwins(*task); !s.ok()) return usage_error(s);

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return Fail("extract", out_dir + ": " + ec.message(), kExitUsage);
  prune::ExtractStats stats;
  absl::StatusOr<Circuit> circuit = prune::ExtractCircuit(*file, *task, o, StageProgress("extract"), &stats);
  ClearProgress();
  if (!circuit.ok()) return Fail("extract", std::string(circuit.status().message()), kExitFailure);
  prune::RecordTaskOptions(task_options, &*circuit);
  // Explanations are a bonus: without a corpus, or when they fail, the circuit is still written.
  std::string explained;
  if (explain && circuit->nodes.size() > kExplainLimit) {
    explained = absl::StrFormat("skipped: %d nodes, more than %d (circuit explain does it)",
                                circuit->nodes.size(), kExplainLimit);
  } else if (explain) {
    prune::ExplainRun run;
    if (!corpus.empty()) run.corpus_dir = corpus;
    double seconds = 0.0;
    absl::StatusOr<ModelFile> gpt = GptFileOf(*file, "circuit explain");
    const absl::Status s = gpt.ok() ? prune::ExplainCircuit(*gpt, *task, run, &*circuit, &seconds)
                                    : gpt.status();
    explained = s.ok() ? absl::StrFormat("%d nodes in %.1f s (circuit inspect %s/circuit.h5 lists them)",
                                         circuit->nodes.size(), seconds, out_dir)
                       : absl::StrCat("skipped: ", s.message());
  }
  // The folder's files as a unit: a concurrent run into the same folder writes
  // its set before or after this one, never interleaved with it.
  absl::StatusOr<FolderLock> lock = FolderLock::Acquire(out_dir);
  if (!lock.ok()) return Fail("extract", std::string(lock.status().message()), kExitFailure);
  // q/k/v head grouping in the diagram: the GPT's d_head; BDH has no such channels.
  const int d_head = file->gpt() != nullptr ? file->gpt()->config().d_head : 0;
  absl::StatusOr<std::string> written =
      WriteCircuitOutputs(out_dir, *circuit, d_head, stats, o, preset_text);
  if (!written.ok()) return Fail("extract", std::string(written.status().message()), kExitFailure);
  PrintReport(*circuit, stats, o, preset_text, out_dir, *written);
  if (explain) std::cout << "  explained " << explained << "\n";
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(extract, "extract", "extract a task's circuit from a model (prune)", RunExtract);

}  // namespace circuit::cli
