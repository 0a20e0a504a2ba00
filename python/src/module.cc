// The `circuit` Python module: models, tokenizer, tasks and evaluation over the
// C++ libraries, torch tensors in and out without copies (docs/python.md).
// Extraction and circuits are bound in circuit_bindings.cc.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bindings.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/model.h"
#include "circuit/core/runtime.h"
#include "circuit/core/task.h"
#include "circuit/core/task_eval.h"
#include "circuit/core/tokenizer.h"
#include "nlohmann/json.hpp"

namespace circuit::python {

[[noreturn]] void Raise(const absl::Status& status) {
  const std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
      throw py::value_error(message);
    default:
      throw std::runtime_error(message);
  }
}

std::string TapName(int site, int n_layer) {
  const TapSite s = TapSiteAt(site, n_layer);
  if (s.location == NodeLocation::kFinalResid) return std::string(LocationName(s.location));
  return absl::StrCat(s.layer, ".", std::string(LocationName(s.location)));
}

py::str Text(const std::string& bytes) {
  return py::reinterpret_steal<py::str>(
      PyUnicode_DecodeUTF8(bytes.data(), static_cast<Py_ssize_t>(bytes.size()), "replace"));
}

namespace {

// The bundled model: data/models/default.h5 of the source tree this module was
// built from, unless $CIRCUIT_MODEL names another (as for the CLI).
std::string DefaultModelPath() {
  if (const char* env = std::getenv("CIRCUIT_MODEL"); env != nullptr && *env != '\0') return env;
  return std::string(CIRCUIT_SOURCE_DIR) + "/data/models/default.h5";
}

// The site of a tap name, or ValueError listing the valid forms.
int SiteOfName(const std::string& name, int n_layer) {
  for (int site = 0; site < NumTapSites(n_layer); ++site) {
    if (TapName(site, n_layer) == name) return site;
  }
  throw py::value_error(absl::StrFormat(
      "unknown tap name '%s': expected LAYER.LOCATION (0..%d, e.g. '0.attn.q', '%d.mlp.post_act') "
      "or 'final_resid'", name, n_layer - 1, n_layer - 1));
}

// Tokens for a forward pass: a LongTensor (B, T) or (T), a list of ids, or a
// string (encoded with the model's tokenizer). *batched says whether the caller
// gave a batch dimension. Checks the ids and the length, which the forward pass
// would otherwise report as an index error deep inside torch.
torch::Tensor TokensFor(const PyModel& m, const py::handle& tokens, bool* batched) {
  torch::Tensor t;
  if (py::isinstance<py::str>(tokens)) {
    const std::vector<int32_t> ids = m.file->tokenizer.Encode(tokens.cast<std::string>());
    t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64);
  } else if (THPVariable_Check(tokens.ptr())) {
    t = tokens.cast<torch::Tensor>();
  } else {
    t = torch::tensor(tokens.cast<std::vector<int64_t>>(), torch::kInt64);
  }
  if (t.is_floating_point() || t.is_complex() || t.scalar_type() == torch::kBool) {
    throw py::value_error(absl::StrCat("tokens: expected an integer tensor, got ",
                                       c10::toString(t.scalar_type())));
  }
  if (t.dim() != 1 && t.dim() != 2) {
    throw py::value_error(absl::StrCat("tokens: expected shape (T) or (B, T), got ", t.dim(), " dimensions"));
  }
  *batched = t.dim() == 2;
  if (!*batched) t = t.unsqueeze(0);
  const ModelConfig& c = m.model().config();
  if (t.size(1) < 1 || t.size(1) > c.n_ctx) {
    throw py::value_error(absl::StrFormat("tokens: length %d, expected 1..%d (n_ctx)", t.size(1), c.n_ctx));
  }
  if (t.numel() > 0) {
    const auto [lo, hi] = torch::aminmax(t);
    if (lo.item<int64_t>() < 0 || hi.item<int64_t>() >= c.vocab_size) {
      throw py::value_error(absl::StrFormat("tokens: ids must be in [0, %d), got %d..%d", c.vocab_size,
                                            lo.item<int64_t>(), hi.item<int64_t>()));
    }
  }
  return t.to(m.model().device(), torch::kInt64);
}

torch::Tensor Unbatch(torch::Tensor t, bool batched) { return batched ? t : t.squeeze(0); }

// Python hooks as C++ taps: {name: fn} or [(name, fn), ...]; fn(activation)
// returns the replacement, or None to keep it. The GIL stays held while they run.
Taps HooksToTaps(const PyModel& m, const py::object& hooks) {
  const int n_layer = m.model().config().n_layer;
  Taps taps(n_layer);
  if (hooks.is_none()) return taps;
  py::iterable items = py::isinstance<py::dict>(hooks) ? py::iterable(hooks.attr("items")())
                                                        : py::iterable(hooks);
  for (py::handle item : items) {
    auto pair = item.cast<std::pair<std::string, py::function>>();
    const TapSite site = TapSiteAt(SiteOfName(pair.first, n_layer), n_layer);
    const std::string name = pair.first;
    py::function fn = pair.second;
    taps.AddAt(site.layer, site.location, [fn, name](const TapSite&, const torch::Tensor& x) {
      py::object out = fn(x);
      if (out.is_none()) return x;
      if (!THPVariable_Check(out.ptr())) {
        throw py::type_error(absl::StrCat("hook ", name, " returned ", py::str(py::type::of(out)).cast<std::string>(),
                                          ", expected a torch.Tensor or None"));
      }
      torch::Tensor y = out.cast<torch::Tensor>();
      if (y.sizes() != x.sizes()) {
        throw py::value_error(absl::StrCat("hook ", name, " returned shape ", c10::str(y.sizes()),
                                           ", expected ", c10::str(x.sizes())));
      }
      return y.to(x.options());
    });
  }
  return taps;
}

py::dict ConfigDict(const ModelConfig& c) {
  py::dict d;
  d["n_layer"] = c.n_layer;
  d["d_model"] = c.d_model;
  d["n_head"] = c.n_head;
  d["d_head"] = c.d_head;
  d["d_mlp"] = c.d_mlp;
  d["vocab_size"] = c.vocab_size;
  d["n_ctx"] = c.n_ctx;
  d["d_pos_emb"] = c.d_pos_emb;
  d["afrac"] = c.afrac;
  d["afrac_loctypes"] = c.afrac_loctypes;
  d["attn_sink"] = c.attn_sink;
  d["bigram_table"] = c.bigram_table;
  d["activation"] = c.activation;
  d["tokenizer"] = c.tokenizer;
  d["total_nodes"] = c.TotalNodes();
  return d;
}

void CheckId(const Tokenizer& tokenizer, int32_t id) {
  if (id < 0 || id >= tokenizer.vocab_size()) {
    throw py::value_error(absl::StrFormat("token id %d is not in [0, %d)", id, tokenizer.vocab_size()));
  }
}

// Token ids from a list or a tensor, checked against the vocabulary.
std::vector<int32_t> IdsOf(const Tokenizer& tokenizer, const py::handle& ids) {
  std::vector<int32_t> out;
  if (THPVariable_Check(ids.ptr())) {
    torch::Tensor t = ids.cast<torch::Tensor>().reshape(-1).to(torch::kCPU, torch::kInt32).contiguous();
    out.assign(t.data_ptr<int32_t>(), t.data_ptr<int32_t>() + t.numel());
  } else {
    out = ids.cast<std::vector<int32_t>>();
  }
  for (int32_t id : out) CheckId(tokenizer, id);
  return out;
}

const std::vector<TaskExample>& SplitOf(const PyTask& t, const std::string& split) {
  if (split == "train") return t.data.train;
  if (split == "validation") return t.data.validation;
  if (split == "test") return t.data.test;
  throw py::value_error("split must be train, validation or test, got '" + split + "'");
}

py::dict SplitDict(const PyTask& t, const Tokenizer& tokenizer, const std::string& split) {
  const std::vector<TaskExample>& ex = SplitOf(t, split);
  py::list tokens, prompts;
  std::vector<int64_t> correct, alternative;
  for (const TaskExample& e : ex) {
    tokens.append(torch::tensor(std::vector<int64_t>(e.tokens.begin(), e.tokens.end()), torch::kInt64));
    prompts.append(Text(tokenizer.Decode(e.tokens)));
    correct.push_back(e.correct);
    alternative.push_back(e.alternative);
  }
  py::dict d;
  d["tokens"] = tokens;
  d["prompts"] = prompts;
  d["correct"] = torch::tensor(correct, torch::kInt64);
  d["alternative"] = torch::tensor(alternative, torch::kInt64);
  return d;
}

// A user task from Python: datapoints written as JSON Lines to a temporary
// file and read by the same reader as `--task file:...`, so the same checks and
// messages apply.
PyTask UserTask(const std::string& name, const py::list& pairs, const PyModel& m,
                const TaskOptions& options) {
  std::string path = (std::filesystem::temp_directory_path() /
                      absl::StrFormat("circuit-task-%d-%p.jsonl", getpid(), static_cast<const void*>(&pairs)))
                         .string();
  {
    std::ofstream out(path);
    for (py::handle p : pairs) {
      nlohmann::json j;
      for (const char* key : {"prompt", "twin", "correct", "alternative"}) {
        py::object v = py::reinterpret_borrow<py::dict>(p).attr("get")(key);
        if (!v.is_none()) j[key] = v.cast<std::string>();
      }
      out << j.dump() << "\n";
    }
  }
  absl::StatusOr<TaskData> data = BuildTask(std::string(kTaskFilePrefix) + path, m.file->tokenizer, options);
  std::filesystem::remove(path);
  if (!data.ok()) {
    // Name the datapoint by its position in the list rather than the temporary file.
    std::string message(data.status().message());
    if (size_t at = message.find(path); at != std::string::npos) message.replace(at, path.size(), name);
    Raise(absl::Status(data.status().code(), message));
  }
  data->name = name;
  return PyTask{*std::move(data), options};
}

void BindModel(py::module_& m) {
  py::class_<PyModel>(m, "Model", "A weight-sparse transformer loaded from a checkpoint (circuit.load_model).")
      .def("__call__",
           [](const PyModel& self, const py::object& tokens) {
             bool batched = false;
             torch::Tensor t = TokensFor(self, tokens, &batched);
             py::gil_scoped_release release;
             torch::NoGradGuard no_grad;
             return Unbatch(self.model().Forward(t), batched);
           },
           py::arg("tokens"),
           "Logits (B, T, vocab) for tokens (B, T) int64; (T, vocab) for (T). Tokens may also be a "
           "list of ids or a string. No gradients; the GIL is released during the forward pass.")
      .def("forward_at",
           [](const PyModel& self, const py::object& tokens, const torch::Tensor& positions) {
             bool batched = false;
             torch::Tensor t = TokensFor(self, tokens, &batched);
             if (!batched) throw py::value_error("forward_at: tokens must be (B, T)");
             torch::Tensor p = positions.to(self.model().device(), torch::kInt64);
             if (p.dim() != 1 || p.size(0) != t.size(0)) {
               throw py::value_error(absl::StrFormat("positions: expected shape (%d), got %s", t.size(0),
                                                     c10::str(p.sizes())));
             }
             py::gil_scoped_release release;
             torch::NoGradGuard no_grad;
             return self.model().ForwardAt(t, p);
           },
           py::arg("tokens"), py::arg("positions"),
           "Logits (B, vocab) at one position per row (positions: (B) int64), as task scoring computes them.")
      .def("run_with_cache",
           [](const PyModel& self, const py::object& tokens, const py::object& names) {
             bool batched = false;
             torch::Tensor t = TokensFor(self, tokens, &batched);
             const int n_layer = self.model().config().n_layer;
             std::vector<int> sites;
             if (names.is_none()) {
               for (int s = 0; s < NumTapSites(n_layer); ++s) sites.push_back(s);
             } else {
               for (const std::string& name : names.cast<std::vector<std::string>>()) {
                 sites.push_back(SiteOfName(name, n_layer));
               }
             }
             std::vector<torch::Tensor> acts(NumTapSites(n_layer));
             Taps taps(n_layer);
             for (int s : sites) {
               const TapSite site = TapSiteAt(s, n_layer);
               taps.AddAt(site.layer, site.location, [&acts](const TapSite& at, const torch::Tensor& x) {
                 acts[at.site] = x;
                 return x;
               });
             }
             torch::Tensor logits;
             {
               py::gil_scoped_release release;
               torch::NoGradGuard no_grad;
               logits = self.model().Forward(t, &taps);
             }
             py::dict cache;
             for (int s : sites) cache[py::str(TapName(s, n_layer))] = Unbatch(acts[s], batched);
             return py::make_tuple(Unbatch(logits, batched), cache);
           },
           py::arg("tokens"), py::arg("names") = py::none(),
           "(logits, {tap name: activation}) with the activation (B, T, width) after AbsTopK at each "
           "named site ('0.attn.act_in' ... '0.mlp.resid_delta', ..., 'final_resid'; all when names is None).")
      .def("run_with_hooks",
           [](const PyModel& self, const py::object& tokens, const py::object& hooks) {
             bool batched = false;
             torch::Tensor t = TokensFor(self, tokens, &batched);
             const Taps taps = HooksToTaps(self, hooks);
             torch::NoGradGuard no_grad;
             return Unbatch(self.model().Forward(t, &taps), batched);
           },
           py::arg("tokens"), py::arg("hooks"),
           "Logits with hooks {tap name: fn} (or a list of (name, fn)): fn(activation (B, T, width)) "
           "returns its replacement, or None to leave it. The same taps as pruning and ablation use.")
      .def_property_readonly("config", [](const PyModel& self) { return ConfigDict(self.model().config()); },
                             "The model's shape as a dict (n_layer, d_model, n_head, ...).")
      .def_property_readonly("tokenizer", [](const PyModel& self) { return self.file->tokenizer; },
                             "The model's tokenizer (a copy).")
      .def_property_readonly("path", [](const PyModel& self) { return self.file->path; })
      .def_property_readonly("digest", [](const PyModel& self) { return self.file->digest; },
                             "Digest of the weights, as recorded in circuits and mean caches.")
      .def_property_readonly("device", [](const PyModel& self) { return self.model().device().str(); })
      .def_property_readonly("tap_names",
                             [](const PyModel& self) {
                               const int n = self.model().config().n_layer;
                               std::vector<std::string> names;
                               for (int s = 0; s < NumTapSites(n); ++s) names.push_back(TapName(s, n));
                               return names;
                             },
                             "The node locations in forward order: '0.attn.act_in', ..., 'final_resid'.")
      .def("state_dict",
           [](const PyModel& self) {
             py::dict d;
             for (const NamedTensor& p : self.model().parameters()) d[py::str(p.name)] = p.tensor;
             return d;
           },
           "The weights by the release's state-dict names; the tensors share the model's memory.")
      .def("__repr__", [](const PyModel& self) {
        const ModelConfig& c = self.model().config();
        return absl::StrFormat("<circuit.Model %s: %d layers, d_model %d, %d nodes>", self.file->path,
                               c.n_layer, c.d_model, c.TotalNodes());
      });

  m.def("load_model",
        [](const std::optional<std::string>& path, const std::string& device) {
          const torch::Device d = ValueOrThrow(ParseDevice(device));
          const std::string p = path.value_or(DefaultModelPath());
          py::gil_scoped_release release;
          return PyModel{std::make_shared<ModelFile>(ValueOrThrow(LoadModel(p, d)))};
        },
        py::arg("path") = py::none(), py::arg("device") = "cpu",
        "Loads a model checkpoint (.h5); None: the bundled model ($CIRCUIT_MODEL when set). "
        "ValueError with the loader's one-line message for a missing or bad file.");
  m.def("default_model_path", &DefaultModelPath, "The bundled model's path.");
  // For bench/python_forward.py: the same forward as Model.__call__, `repeats`
  // times in a C++ loop, without Python in between; returns seconds per call.
  m.def("_cpp_forward_seconds", [](const PyModel& self, const torch::Tensor& tokens, int repeats) {
    const torch::Tensor t = tokens.to(self.model().device(), torch::kInt64);
    py::gil_scoped_release release;
    torch::NoGradGuard no_grad;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repeats; ++i) self.model().Forward(t);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
           std::max(1, repeats);
  });
}

void BindTokenizer(py::module_& m) {
  py::class_<Tokenizer>(m, "Tokenizer", "Byte-level BPE tokenizer (GPT-2 file format).")
      .def_static("from_files",
                  [](const std::string& encoder, const std::string& vocab) {
                    return ValueOrThrow(Tokenizer::FromFiles(encoder, vocab));
                  },
                  py::arg("encoder_json"), py::arg("vocab_bpe"))
      .def("encode", [](const Tokenizer& t, const std::string& text) { return t.Encode(text); },
           py::arg("text"), "Token ids (list of int) of a string.")
      .def("decode", [](const Tokenizer& t, const py::object& ids) { return Text(t.Decode(IdsOf(t, ids))); },
           py::arg("ids"), "The text of token ids (list or tensor); invalid UTF-8 is replaced.")
      .def("token_bytes", [](const Tokenizer& t, int32_t id) {
        CheckId(t, id);
        return py::bytes(t.TokenBytes(id));
      }, py::arg("id"), "The bytes of one token.")
      .def("single_token", [](const Tokenizer& t, const std::string& text) {
        return ValueOrThrow(t.SingleToken(text));
      }, "The id of a text that is exactly one token, else ValueError showing how it splits.")
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def_property_readonly("eot_id", &Tokenizer::eot_id);
}

void BindTasks(py::module_& m) {
  py::class_<PyTask>(m, "Task", "A task's train, validation and test splits (circuit.build_task).")
      .def_property_readonly("name", [](const PyTask& t) { return t.data.name; })
      .def_property_readonly("description", [](const PyTask& t) { return t.data.description; })
      .def_property_readonly("candidates", [](const PyTask& t) { return t.data.candidates; })
      .def_property_readonly("paired", [](const PyTask& t) { return t.data.paired; })
      .def_property_readonly("seed", [](const PyTask& t) { return t.options.seed; })
      .def("split",
           [](const PyTask& t, const PyModel& model, const std::string& split) {
             return SplitDict(t, model.file->tokenizer, split);
           },
           py::arg("model"), py::arg("split") = "test",
           "{tokens: [LongTensor (T)], prompts: [str], correct: LongTensor (n), alternative: LongTensor (n)}; "
           "examples in twin order (prompt, twin, prompt, twin, ...).")
      .def("batch",
           [](const PyTask& t, const std::string& split, int64_t start, std::optional<int64_t> stop) {
             const std::vector<TaskExample>& ex = SplitOf(t, split);
             const int64_t n = static_cast<int64_t>(ex.size());
             const int64_t end = std::min(n, stop.value_or(n));
             if (start < 0 || start > end) throw py::value_error(absl::StrFormat("batch: bad range %d:%d of %d", start, end, n));
             const TaskBatch b = MakeTaskBatch({ex.begin() + start, ex.begin() + end}, torch::kCPU);
             py::dict d;
             d["tokens"] = b.tokens;
             d["last"] = b.last;
             d["correct"] = b.correct;
             d["alternative"] = b.alternative;
             return d;
           },
           py::arg("split") = "test", py::arg("start") = 0, py::arg("stop") = py::none(),
           "Examples [start, stop) of a split as one padded batch: {tokens (B, T) right-padded with 0, "
           "last (B) position of each prompt's last token, correct (B), alternative (B)}.")
      .def("__len__", [](const PyTask& t) { return t.data.test.size(); })
      .def("__repr__", [](const PyTask& t) {
        return absl::StrFormat("<circuit.Task %s: %d train, %d validation, %d test prompts>", t.data.name,
                               t.data.train.size(), t.data.validation.size(), t.data.test.size());
      });

  m.def("tasks",
        [] {
          py::list out;
          for (const TaskInfo& info : BuiltinTasks()) {
            py::dict d;
            d["name"] = info.name;
            d["description"] = info.description;
            d["candidates"] = info.candidate_variants;
            d["families"] = info.families;
            out.append(d);
          }
          return out;
        },
        "The built-in tasks: [{name, description, candidates, families}], sorted by name.");
  m.def("build_task",
        [](const py::object& task, const PyModel& model, uint64_t seed, int pairs, const std::string& name) {
          const TaskOptions options = PruningSplits(pairs, model.model().config().n_ctx, seed);
          if (py::isinstance<py::str>(task)) {
            const std::string n = task.cast<std::string>();
            py::gil_scoped_release release;
            return PyTask{ValueOrThrow(BuildTask(n, model.file->tokenizer, options)), options};
          }
          return UserTask(name, task.cast<py::list>(), model, options);
        },
        py::arg("task"), py::arg("model"), py::arg("seed") = 0, py::arg("pairs") = 512,
        py::arg("name") = "python",
        "Builds a task's splits as `circuit extract` does: `pairs` train datapoints, a quarter (at "
        "least 8) each for validation and test, drawn by `seed`. `task` is a built-in name "
        "(circuit.tasks()), 'file:path.jsonl', or a list of dicts with prompt, correct, "
        "alternative and optional twin (a user task called `name`).");
  m.def("evaluate",
        [](const PyModel& model, const PyTask& task, const std::string& split, const py::object& hooks,
           int batch, bool return_logits) {
          const std::vector<TaskExample>& ex = SplitOf(task, split);
          if (batch < 1) throw py::value_error(absl::StrCat("batch must be >= 1, got ", batch));
          const Taps taps = HooksToTaps(model, hooks);
          torch::Tensor logits;
          TaskMetrics metrics;
          if (taps.empty()) {
            py::gil_scoped_release release;
            metrics = EvaluateTask(model.model(), ex, nullptr, batch, return_logits ? &logits : nullptr);
          } else {
            metrics = EvaluateTask(model.model(), ex, &taps, batch, return_logits ? &logits : nullptr);
          }
          py::dict d;
          d["loss"] = metrics.loss;
          d["accuracy"] = metrics.accuracy;
          d["n"] = metrics.n;
          if (return_logits) d["logits"] = logits;
          return d;
        },
        py::arg("model"), py::arg("task"), py::arg("split") = "test", py::arg("hooks") = py::none(),
        py::arg("batch") = 64, py::arg("return_logits") = false,
        "{loss, accuracy, n}: mean per-prompt task loss (nats) and accuracy on a split, as `circuit "
        "eval`; with hooks ({tap name: fn}) under those interventions; with return_logits the "
        "(n, vocab) logits at each prompt's last position too.");
}

}  // namespace
}  // namespace circuit::python

PYBIND11_MODULE(circuit, m) {
  using namespace circuit::python;  // NOLINT: the module's one entry point
  py::module_::import("torch");  // the Tensor type and its converters come from torch
  m.doc() = "Weight-sparse transformers and their circuits (Gao et al., 2025): the C++ engine "
            "from Python. See docs/python.md.";
  m.def("set_threads", [](int threads) { circuit::ConfigureRuntime(threads); }, py::arg("threads") = 0,
        "Sets torch's intra-op threads (0: auto, the cores other processes leave idle), as the CLI's --threads.");
  BindModel(m);
  BindTokenizer(m);
  BindTasks(m);
  BindCircuits(m);
  BindAudit(m);
}
