// circuit.audit and circuit.explain: `circuit audit` and `circuit explain` from
// Python, through the same library calls (prune/audit_run.h, explain_run.h).
// audit returns the audit.json object as a dict; explain the explanations as
// lists and dicts.
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "bindings.h"
#include "circuit/core/file_util.h"
#include "circuit/core/model.h"
#include "circuit/core/runtime.h"
#include "circuit/core/status.h"
#include "circuit/export/circuit_file.h"
#include "circuit/prune/audit_json.h"
#include "circuit/prune/audit_run.h"
#include "circuit/prune/circuit_context.h"
#include "circuit/prune/explain_run.h"

namespace circuit::python {
namespace {

// A circuit given as a Circuit or as a path (str or os.PathLike): the circuit
// and the path that names it ("" for a circuit never read or written).
PyCircuit CircuitOf(const py::object& circuit_or_path) {
  if (py::isinstance<PyCircuit>(circuit_or_path)) return circuit_or_path.cast<PyCircuit>();
  const std::string path = py::str(py::module_::import("os").attr("fspath")(circuit_or_path));
  return PyCircuit{ValueOrThrow(ReadCircuitFile(path)), 0, {}, path};
}

// The model keyword: a path, a Model (its path), or None (the bundled model).
std::string ModelPathOf(const py::object& model) {
  if (model.is_none()) return py::module_::import("circuit").attr("default_model_path")().cast<std::string>();
  if (py::isinstance<PyModel>(model)) return model.cast<const PyModel&>().file->path;
  return py::str(py::module_::import("os").attr("fspath")(model));
}

void SetThreads(const std::optional<int>& threads) {
  if (threads.has_value()) ConfigureRuntime(*threads);
}

// AuditOptions from the keywords beyond seeds (the engine's defaults otherwise).
void AuditKeywords(const py::kwargs& kw, prune::AuditOptions* o) {
  for (auto [key_handle, value] : kw) {
    const std::string key = key_handle.cast<std::string>();
    if (value.is_none()) continue;
    if (key == "separate_stability") {
      o->joint_stability = !value.cast<bool>();
    } else if (key == "random_rankings") {
      o->random_rankings = value.cast<int>();
    } else if (key == "completeness_subsets") {
      o->completeness_subsets = value.cast<int>();
    } else if (key == "stack") {
      o->stack = value.cast<int>();
    } else if (key == "other_method") {
      o->other_method = value.cast<bool>();
    } else if (key == "controls") {
      o->controls = value.cast<bool>();
    } else if (key == "transfer") {
      o->transfer = value.cast<bool>();
    } else {
      throw py::type_error(absl::StrCat("audit() got an unexpected keyword argument '", key, "'"));
    }
  }
  if (o->random_rankings < 0 || o->completeness_subsets < 0 || o->stack < 1) {
    throw py::value_error(absl::StrCat("random_rankings and completeness_subsets must be >= 0 and stack >= 1, got ",
                                       o->random_rankings, ", ", o->completeness_subsets, " and ", o->stack));
  }
}

py::dict Audit(const py::object& circuit_or_path, int seeds, const std::optional<std::string>& task,
               const std::optional<int>& threads, const py::object& progress, const py::object& model,
               const std::string& device, const std::optional<std::string>& out, const py::kwargs& kw) {
  PyCircuit c = CircuitOf(circuit_or_path);
  prune::AuditRequest request;
  request.model_path = ModelPathOf(model);
  request.device = ValueOrThrow(ParseDevice(device));
  request.other_task = task.value_or("");
  request.options.seeds = seeds;
  AuditKeywords(kw, &request.options);
  SetThreads(threads);
  const prune::ProgressFn report = PythonProgress(progress);
  absl::StatusOr<std::string> json = WithoutGil([&]() -> absl::StatusOr<std::string> {
    CIRCUIT_ASSIGN_OR_RETURN(prune::PreparedAudit prepared, prune::PrepareAudit(std::move(c.circuit), c.path, request));
    CIRCUIT_ASSIGN_OR_RETURN(prune::AuditResult a, prune::RunPreparedAudit(prepared, report));
    return prune::AuditJson(prepared.circuit_path, prepared.circuit, a, prepared.options);
  });
  ThrowIfError(json.status());
  if (out.has_value()) ThrowIfError(WriteFileAtomically(*out, *json + "\n"));
  return py::module_::import("json").attr("loads")(*json);
}

py::object Explain(const py::object& circuit_or_path, const std::optional<std::string>& corpus, int top, int windows,
                   const std::optional<std::string>& task, int pairs, const std::optional<int>& threads,
                   const py::object& model, const std::string& device, bool write) {
  if (top < 1) throw py::value_error(absl::StrCat("top must be >= 1, got ", top));
  if (windows < 1) throw py::value_error(absl::StrCat("windows must be >= 1, got ", windows));
  const bool in_place = py::isinstance<PyCircuit>(circuit_or_path);
  PyCircuit c = CircuitOf(circuit_or_path);
  if (write && c.path.empty()) throw py::value_error("write=True needs a circuit read from or written to a file");
  prune::ExplainRun run;
  if (corpus.has_value()) run.corpus_dir = *corpus;
  run.top = top;
  run.windows = windows;
  const std::string model_path = ModelPathOf(model);
  const torch::Device on = ValueOrThrow(ParseDevice(device));
  SetThreads(threads);
  ThrowIfError(WithoutGil([&]() -> absl::Status {
    CIRCUIT_ASSIGN_OR_RETURN(prune::CircuitContext context,
                             prune::LoadCircuitContext(c.circuit, c.path, model_path, on, pairs, task.value_or("")));
    double seconds = 0.0;
    CIRCUIT_ASSIGN_OR_RETURN(ModelFile gpt, GptFileOf(context.file, "explain()"));
    CIRCUIT_RETURN_IF_ERROR(prune::ExplainCircuit(gpt, context.task, run, &c.circuit, &seconds));
    return write ? WriteCircuitFile(c.path, c.circuit) : absl::OkStatus();
  }));
  if (in_place) circuit_or_path.cast<PyCircuit&>().circuit.explanations = c.circuit.explanations;
  return ExplanationsObject(c.circuit);
}

py::list Contexts(const std::vector<ActivatingContext>& contexts) {
  py::list out;
  for (const ActivatingContext& x : contexts) {
    py::list tokens;
    for (const std::string& t : x.tokens) tokens.append(Text(t));
    out.append(py::dict(py::arg("tokens") = tokens, py::arg("marked") = x.marked, py::arg("value") = x.value));
  }
  return out;
}

py::list Scores(const std::vector<TokenScore>& scores) {
  py::list out;
  for (const TokenScore& t : scores) {
    out.append(py::dict(py::arg("id") = t.id, py::arg("text") = Text(t.text), py::arg("score") = t.score));
  }
  return out;
}

py::dict NodeDict(const NodeExplanation& e) {
  py::dict d;
  d["top_contexts"] = Contexts(e.top_contexts);
  d["bottom_contexts"] = Contexts(e.bottom_contexts);
  d["histogram"] = py::dict(py::arg("edges") = e.histogram_edges, py::arg("counts") = e.histogram_counts);
  d["class_means"] = e.class_means;
  d["promoted"] = Scores(e.promoted);
  d["suppressed"] = Scores(e.suppressed);
  d["input_tokens"] = Scores(e.input_tokens);
  py::list attention;
  for (const AttentionExample& a : e.attention) {
    attention.append(py::dict(py::arg("prompt") = a.prompt, py::arg("weights") = a.weights));
  }
  d["attention"] = attention;
  d["prompt_activations"] = e.prompt_activations;
  return d;
}

}  // namespace

py::object ExplanationsObject(const Circuit& circuit) {
  const CircuitExplanations& e = circuit.explanations;
  if (!e.present()) return py::none();
  py::list prompts, class_names, nodes;
  for (const std::vector<std::string>& p : e.prompts) {
    py::list tokens;
    for (const std::string& t : p) tokens.append(Text(t));
    prompts.append(tokens);
  }
  for (const std::string& name : e.class_names) class_names.append(Text(name));
  for (size_t i = 0; i < e.nodes.size(); ++i) {
    py::dict d = NodeDict(e.nodes[i]);
    // The file checks that explanations and nodes align; label them when they do.
    if (i < circuit.nodes.size()) d["label"] = NodeLabel(circuit.nodes[i].node);
    nodes.append(d);
  }
  py::dict d;
  d["corpus"] = Text(e.corpus);
  d["top"] = e.top;
  d["class_names"] = class_names;
  d["prompts"] = prompts;
  d["nodes"] = nodes;
  return d;
}

void BindAudit(py::module_& m) {
  m.def("audit", &Audit, py::arg("circuit"), py::kw_only(), py::arg("seeds") = 5, py::arg("task") = py::none(),
        py::arg("threads") = py::none(), py::arg("progress") = py::none(), py::arg("model") = py::none(),
        py::arg("device") = "cpu", py::arg("out") = py::none(),
        R"doc(Audits a circuit as `circuit audit` does; returns the audit.json object as a dict.

circuit: a Circuit, or the path of a circuit file. The audit rebuilds the circuit's task and
splits and re-runs its extraction from the settings the circuit records (docs/faithfulness.md):
faithfulness curves (CPR, CMD) for its ranking, the other method's and random ones;
completeness; controls (shuffled answers, random-init model, constant target); stability over
`seeds` runs (0: skip; as --seeds); transfer to a held-out template family; a verdict.
task: also score the circuit on this task's test split (as --task; same candidate tokens).
model: the model the circuit came from (path or Model; default: the bundled model); its
weights digest must be the circuit's. device: 'cpu' or 'cuda'. threads: as set_threads
(None: unchanged). out: also write the object there (as audit.json, atomically).
Keywords: separate_stability (as --separate-stability), random_rankings,
completeness_subsets, stack, other_method, controls, transfer (AuditOptions).
progress(stage, fraction) is called as the audit advances. The GIL is released while it runs;
Ctrl-C (or an exception from progress) stops it. Non-finite figures are None (JSON null).
Errors: ValueError with `circuit audit`'s one-line message (a bad file, another model, a task
whose candidates differ), RuntimeError when the audit itself fails.)doc");
  m.def("explain", &Explain, py::arg("circuit"), py::kw_only(), py::arg("corpus") = py::none(),
        py::arg("top") = 8, py::arg("windows") = 128, py::arg("task") = py::none(), py::arg("pairs") = -1,
        py::arg("threads") = py::none(), py::arg("model") = py::none(), py::arg("device") = "cpu",
        py::arg("write") = false,
        R"doc(Explains every node of a circuit as `circuit explain` does (docs/explanations.md).

circuit: a Circuit (its explanations are set, so Circuit.write stores them) or the path of a
circuit file (rewritten in place only with write=True, as the CLI does). corpus: the corpus
folder (default $CIRCUIT_CORPUS, else ./corpus); top: contexts per side and tokens per list;
windows: windows of n_ctx tokens from the corpus validation split; task: the task whose test
prompts give the class means (default: the circuit's); pairs: its train datapoints (default:
as the circuit records). model, device, threads: as for audit.
Returns {corpus, top, class_names, prompts, nodes}: nodes[i] explains row i of Circuit.nodes,
a dict with label, top_contexts and bottom_contexts ([{tokens, marked, value}]), histogram
({edges, counts}), class_means, promoted, suppressed and input_tokens ([{id, text, score}]),
attention ([{prompt, weights}]) and prompt_activations. The GIL is released while it runs.
Errors: ValueError with `circuit explain`'s one-line message (no corpus, another model, ...).)doc");
}

}  // namespace circuit::python
