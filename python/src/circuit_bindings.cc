// circuit.extract, circuit.Circuit and circuit.means: the pruning engine and
// its result from Python. Options are ExtractOptions' fields, defaults and all,
// set by keyword; the mask preset resolves as in `circuit extract`.
#include <pybind11/numpy.h>

#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bindings.h"
#include "circuit/export/circuit_file.h"
#include "circuit/export/describe.h"
#include "circuit/export/dot.h"
#include "circuit/graph/circuit_graph.h"
#include "circuit/prune/discretizer.h"
#include "circuit/prune/mean_cache.h"
#include "circuit/prune/node_index.h"
#include "circuit/prune/pruner.h"
#include "circuit/prune/settings.h"

namespace circuit::python {
namespace {

template <typename T, typename F>
py::array_t<T> Column(const std::vector<CircuitNode>& nodes, F field) {
  py::array_t<T> a(static_cast<py::ssize_t>(nodes.size()));
  auto v = a.template mutable_unchecked<1>();
  for (size_t i = 0; i < nodes.size(); ++i) v(static_cast<py::ssize_t>(i)) = field(nodes[i]);
  return a;
}

py::dict Nodes(const Circuit& c) {
  py::dict d;
  d["layer"] = Column<int32_t>(c.nodes, [](const CircuitNode& n) { return n.node.layer; });
  py::list locations, labels;
  for (const CircuitNode& n : c.nodes) {
    locations.append(std::string(LocationName(n.node.location)));
    labels.append(NodeLabel(n.node));
  }
  d["location"] = py::array(locations);
  d["index"] = Column<int32_t>(c.nodes, [](const CircuitNode& n) { return n.node.index; });
  d["mask_logit"] = Column<float>(c.nodes, [](const CircuitNode& n) { return n.mask_logit; });
  d["importance"] = Column<float>(c.nodes, [](const CircuitNode& n) { return n.importance; });
  d["label"] = py::array(labels);
  return d;
}

py::dict Edges(const Circuit& c) {
  const py::ssize_t n = static_cast<py::ssize_t>(c.edges.size());
  py::array_t<int64_t> src(n), dst(n);
  py::array_t<float> weight(n);
  for (py::ssize_t i = 0; i < n; ++i) {
    src.mutable_at(i) = c.edges[i].src;
    dst.mutable_at(i) = c.edges[i].dst;
    weight.mutable_at(i) = c.edges[i].weight;
  }
  py::dict d;
  d["src"] = src;
  d["dst"] = dst;
  d["weight"] = weight;
  return d;
}

py::dict StatsDict(const prune::ExtractStats& s) {
  py::dict d;
  d["seconds"] = s.seconds;
  d["met_target"] = s.met_target;
  d["validation_loss"] = s.validation_loss;
  d["validation_loss_bound"] = s.validation_loss_bound;
  d["full_validation_loss"] = s.full_validation_loss;
  d["mask_steps"] = s.mask_steps;
  d["means_source"] = s.means_source;
  d["means_reused"] = s.means_reused;
  d["total_edges"] = s.total_edges;
  d["refined"] = s.refined;
  d["nodes_before_refine"] = s.nodes_before_refine;
  d["note"] = s.note;
  d["tie_note"] = s.tie_note;
  return d;
}

// The SVG diagram, as `circuit draw` lays it out; Graphviz errors raise.
std::string Svg(const PyCircuit& c, int d_head) {
  graph::CircuitGraph g = ValueOrThrow(graph::CircuitGraph::Build(c.circuit, {d_head}));
  if (TooLargeToLayOut(g)) {
    throw py::value_error(absl::StrFormat("%d nodes and %d edges are too many to lay out (at most %d and %d)",
                                          g.num_nodes(), c.circuit.edges.size(), kMaxLayoutNodes, kMaxLayoutEdges));
  }
  DotOptions options;
  options.d_head = d_head;
  options.title = CircuitTitle(c.circuit, g);
  const std::string dot = ValueOrThrow(CircuitToDot(g, options));
  return ValueOrThrow(RenderCircuitData(dot, "svg"));
}

// The mask settings of `circuit extract`: the preset's, then single settings given.
void ApplyMaskKeywords(const PyModel& model, const std::string& preset, const py::dict& given,
                       prune::ExtractOptions* o) {
  const int64_t total = prune::NodeIndex(model.model().config()).total();
  const prune::MaskPreset p = ValueOrThrow(prune::ParseMaskPreset(preset));
  o->masks = prune::MaskPresetOptions(prune::ResolveMaskPreset(p, total), total);
  if (given.contains("penalty")) {
    o->masks.penalty = ValueOrThrow(prune::ParsePenalty(given["penalty"].cast<std::string>()));
    if (!given.contains("penalty_coef")) o->masks.penalty_coef = -1.0;  // that penalty's default
  }
  if (given.contains("penalty_coef")) o->masks.penalty_coef = given["penalty_coef"].cast<double>();
  if (given.contains("epochs")) o->masks.epochs = given["epochs"].cast<int>();
  if (given.contains("lr")) o->masks.lr = given["lr"].cast<double>();
  if (given.contains("batch")) o->masks.batch = given["batch"].cast<int>();
  if (given.contains("temperature")) o->masks.heaviside_temp = given["temperature"].cast<double>();
  if (given.contains("warmup")) o->masks.warmup_frac = given["warmup"].cast<double>();
  ThrowIfError(prune::ValidateMaskTrainOptions(o->masks));
}

// ExtractOptions from keywords named as the CLI's flags (dashes as underscores).
prune::ExtractOptions OptionsFromKeywords(const PyModel& model, const PyTask& task, const py::kwargs& kw) {
  static const std::set<std::string> kMask = {"penalty", "penalty_coef", "epochs", "lr",
                                              "batch",   "temperature",  "warmup"};
  prune::ExtractOptions o;
  o.seed = task.options.seed;
  std::string preset = "auto";
  py::dict mask;
  for (auto [key_handle, value] : kw) {
    const std::string key = key_handle.cast<std::string>();
    if (value.is_none()) continue;  // None: the default
    if (kMask.count(key)) {
      mask[key_handle] = value;
    } else if (key == "preset") {
      preset = value.cast<std::string>();
    } else if (key == "target_loss") {
      o.target_loss = value.cast<double>();
    } else if (key == "confidence") {
      o.confidence = value.cast<double>();
    } else if (key == "ablation") {
      o.ablation = ValueOrThrow(prune::ParseAblation(value.cast<std::string>()));
    } else if (key == "method") {
      o.method = ValueOrThrow(prune::ParseMethod(value.cast<std::string>()));
    } else if (key == "search") {
      o.search = value.cast<int>();
    } else if (key == "tie_qk") {
      o.tie_qk = value.cast<bool>();
    } else if (key == "calibrate") {
      o.calibrate = value.cast<bool>();
    } else if (key == "importance") {
      o.node_importance = value.cast<bool>();
    } else if (key == "importance_limit") {
      o.importance_limit = value.cast<int64_t>();
    } else if (key == "refine") {
      o.refine = value.cast<bool>();
    } else if (key == "refine_limit") {
      o.refine_limit = value.cast<int64_t>();
    } else if (key == "seed") {
      o.seed = value.cast<uint64_t>();
    } else if (key == "corpus") {
      o.mean_windows = ValueOrThrow(prune::CorpusMeanWindows(
          value.cast<std::string>(), model.model().vocab_size(), model.model().n_ctx(), 64,
          &o.mean_source));
    } else {
      throw py::type_error(absl::StrCat("extract() got an unexpected keyword argument '", key, "'"));
    }
  }
  ApplyMaskKeywords(model, preset, mask, &o);
  if (o.importance_limit < 0) throw py::value_error("importance_limit must be >= 0");
  if (o.refine_limit < 0) throw py::value_error(absl::StrCat("refine_limit must be >= 0, got ", o.refine_limit));
  ThrowIfError(prune::ValidateConfidence(o.confidence));
  return o;
}

PyCircuit Extract(const PyModel& model, const PyTask& task, const py::object& progress,
                  const py::kwargs& kw) {
  prune::ExtractOptions o = OptionsFromKeywords(model, task, kw);
  ThrowIfError(RequireTwins(task.data));
  prune::ExtractStats stats;
  absl::StatusOr<Circuit> circuit;
  const prune::ProgressFn report = PythonProgress(progress);
  WithoutGil([&] {
    torch::manual_seed(o.seed);  // as `circuit extract`, so the same seed gives the same circuit
    circuit = prune::ExtractCircuit(*model.file, task.data, o, report, &stats);
  });
  Circuit c = ValueOrThrow(std::move(circuit));
  prune::RecordTaskOptions(task.options, &c);
  return PyCircuit{std::move(c), model.model().config().d_head, StatsDict(stats)};
}

}  // namespace

prune::ProgressFn PythonProgress(const py::object& callback) {
  return [callback](const std::string& stage, double fraction) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw Interrupted{};
    if (callback.is_none()) return;
    try {
      callback(stage, fraction);
    } catch (py::error_already_set& e) {
      e.restore();
      throw Interrupted{};
    }
  };
}

void BindCircuits(py::module_& m) {
  py::class_<PyCircuit>(m, "Circuit", "An extracted circuit: nodes, edges and figures (circuit.extract, Circuit.read).")
      .def_static("read",
                  [](const std::string& path) { return PyCircuit{ValueOrThrow(ReadCircuitFile(path)), 0, {}, path}; },
                  py::arg("path"), "Reads a circuit file (circuit.h5); ValueError naming the problem.")
      .def("write",
           [](PyCircuit& c, const std::string& path) {
             ThrowIfError(WriteCircuitFile(path, c.circuit));
             c.path = path;
           },
           py::arg("path"), "Writes the circuit file (atomically), as `circuit extract` does.")
      .def_property_readonly("path", [](const PyCircuit& c) { return c.path; },
                             "The file the circuit was read from or last written to; '' for a fresh extraction.")
      .def_property_readonly("nodes", [](const PyCircuit& c) { return Nodes(c.circuit); },
                             "{layer, location, index, mask_logit, importance, label} as numpy arrays, "
                             "one row per node, sorted by (layer, location, index); pandas.DataFrame(c.nodes) "
                             "makes a table.")
      .def_property_readonly("edges", [](const PyCircuit& c) { return Edges(c.circuit); },
                             "{src, dst, weight}: nonzero weights between kept nodes; src and dst are rows of nodes.")
      .def_property_readonly("tap_nodes",
                             [](const PyCircuit& c) {
                               py::dict d;
                               for (const CircuitNode& n : c.circuit.nodes) {
                                 const std::string name = TapName(TapSiteIndex(n.node.layer, n.node.location),
                                                                  c.circuit.n_layer);
                                 if (!d.contains(name)) d[py::str(name)] = py::list();
                                 d[py::str(name)].cast<py::list>().append(n.node.index);
                               }
                               return d;
                             },
                             "{tap name: [channel, ...]}: the kept channels at each location, in the tap "
                             "names of Model.run_with_hooks.")
      .def_property_readonly("task", [](const PyCircuit& c) { return c.circuit.task; })
      .def_property_readonly("model_file", [](const PyCircuit& c) { return c.circuit.model_file; })
      .def_property_readonly("model_digest", [](const PyCircuit& c) { return c.circuit.model_digest; })
      .def_property_readonly("ablation", [](const PyCircuit& c) { return c.circuit.ablation; })
      .def_property_readonly("method", [](const PyCircuit& c) { return c.circuit.method; })
      .def_property_readonly("seed", [](const PyCircuit& c) { return c.circuit.seed; })
      .def_property_readonly("n_layer", [](const PyCircuit& c) { return c.circuit.n_layer; })
      .def_property_readonly("total_nodes", [](const PyCircuit& c) { return c.circuit.total_nodes; })
      .def_property_readonly("target_loss", [](const PyCircuit& c) { return c.circuit.target_loss; })
      .def_property_readonly("full_model_loss", [](const PyCircuit& c) { return c.circuit.full_model_loss; })
      .def_property_readonly("circuit_loss", [](const PyCircuit& c) { return c.circuit.circuit_loss; },
                             "Test-split loss with everything outside the circuit ablated (nats/prompt).")
      .def_property_readonly("necessity_loss", [](const PyCircuit& c) { return c.circuit.necessity_loss; })
      .def_property_readonly("random_baseline_loss", [](const PyCircuit& c) { return c.circuit.random_baseline_loss; })
      .def_property_readonly("accuracy", [](const PyCircuit& c) { return c.circuit.accuracy; })
      .def_property_readonly("minimality", [](const PyCircuit& c) { return c.circuit.minimality; })
      .def_property_readonly("refined", [](const PyCircuit& c) { return c.circuit.refined; })
      .def_property_readonly("loss_vs_k",
                             [](const PyCircuit& c) {
                               py::dict d;
                               d["k"] = py::array(py::cast(c.circuit.loss_vs_k_k));
                               d["loss"] = py::array(py::cast(c.circuit.loss_vs_k_loss));
                               return d;
                             },
                             "The discretization curve: validation loss at each k tried.")
      .def_property_readonly("location_importance", [](const PyCircuit& c) { return c.circuit.location_importance; })
      .def_property_readonly("stats", [](const PyCircuit& c) { return c.stats; },
                             "What the extraction run reported (time, validation losses, means); empty when read.")
      .def("summary", [](const PyCircuit& c) { return DescribeCircuit(c.circuit); },
           "The text `circuit inspect` prints: provenance, losses, size, locations, top nodes.")
      .def_property_readonly("explanations", [](const PyCircuit& c) { return ExplanationsObject(c.circuit); },
                             "What circuit.explain computed for the nodes (stored in the file's /explanations/), "
                             "None when not explained; the layout is circuit.explain's.")
      .def("describe_explanations", [](const PyCircuit& c) { return DescribeExplanations(c.circuit); },
           "The lines `circuit explain` prints: a heading and one line per node ('' when not explained).")
      .def("svg", [](const PyCircuit& c, std::optional<int> d_head) { return Svg(c, d_head.value_or(c.d_head)); },
           py::arg("d_head") = py::none(),
           "The diagram as SVG text (Graphviz, as `circuit draw`). d_head groups q/k/v channels by head "
           "(default: the model's when extracted here, else one group per layer).")
      .def("_repr_svg_",
           [](const PyCircuit& c) -> py::object {
             try {
               return py::str(Svg(c, c.d_head));
             } catch (const py::value_error&) {
               return py::none();  // too large to lay out: the notebook shows the repr
             }
           })
      .def("to_networkx",
           [](const PyCircuit& c) {
             py::object g = py::module_::import("networkx").attr("DiGraph")();
             for (size_t i = 0; i < c.circuit.nodes.size(); ++i) {
               const CircuitNode& n = c.circuit.nodes[i];
               g.attr("add_node")(i, py::arg("label") = NodeLabel(n.node), py::arg("layer") = n.node.layer,
                                  py::arg("location") = std::string(LocationName(n.node.location)),
                                  py::arg("index") = n.node.index, py::arg("importance") = n.importance,
                                  py::arg("mask_logit") = n.mask_logit);
             }
             for (const CircuitEdge& e : c.circuit.edges) {
               g.attr("add_edge")(e.src, e.dst, py::arg("weight") = e.weight);
             }
             return g;
           },
           "A networkx.DiGraph: node i is row i of nodes (attributes label, layer, location, index, "
           "importance, mask_logit), edges carry weight. Needs networkx (Debian python3-networkx).")
      .def("__len__", [](const PyCircuit& c) { return c.circuit.nodes.size(); })
      .def("__repr__", [](const PyCircuit& c) {
        return absl::StrFormat("<circuit.Circuit %s: %d of %d nodes, %d edges, circuit loss %.4f>", c.circuit.task,
                               c.circuit.nodes.size(), c.circuit.total_nodes, c.circuit.edges.size(),
                               c.circuit.circuit_loss);
      });

  m.def("extract", &Extract, py::arg("model"), py::arg("task"), py::kw_only(), py::arg("progress") = py::none(),
        R"doc(Extracts the circuit of `task` from `model`, as `circuit extract` (without explanations).

Keywords, named as the CLI's flags (None or absent: the CLI's default):
target_loss, confidence, ablation ('mean'|'zero'|'resample'), method ('masks'|'attribution'),
preset ('auto'|'small'|'paper'), penalty ('log'|'linear'), penalty_coef, search, tie_qk,
calibrate, epochs, lr, batch, temperature, warmup, importance (False = --no-importance),
importance_limit, refine, refine_limit, corpus (take the means from a corpus), seed
(default: the task's seed, as the CLI uses one --seed for both).
progress(stage, fraction) is called as the stages advance. The GIL is released while the
engine runs; Ctrl-C (or an exception from progress) stops it. Seeds torch's global RNG with
the seed, as the CLI does. Errors: ValueError with the CLI's one-line message.)doc");
  m.def("means",
        [](const PyModel& model, const PyTask& task) {
          prune::ExtractOptions o;
          o.means_cache = prune::MeansPathFor(model.file->path);
          prune::MeanCache cache;
          {
            py::gil_scoped_release release;
            cache = ValueOrThrow(prune::ResolveMeans(model.model(), model.file->digest, task.data, o));
          }
          const int n_layer = model.model().config().n_layer;
          py::dict d;
          for (int s = 0; s < static_cast<int>(cache.means.size()); ++s) {
            d[py::str(TapName(s, n_layer))] = cache.means[s];
          }
          return d;
        },
        py::arg("model"), py::arg("task"),
        "{tap name: mean (width)}: the values mean ablation substitutes, as `circuit ablate` and "
        "`extract` resolve them (the cache beside the model, else computed from the task's train "
        "prompts and cached).");
}

}  // namespace circuit::python
