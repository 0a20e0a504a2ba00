#include "circuit/export/circuit_file.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "circuit/core/h5.h"
#include "gmock/gmock.h"
#include "graph/small_circuit.h"
#include "gtest/gtest.h"
#include "testing/require.h"
#include "testing/run.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"

namespace circuit {
namespace {

using ::circuit::testing::IsOk;
using ::circuit::testing::SmallCircuit;
using ::circuit::testing::StatusIs;
using ::circuit::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Bit-exact comparison of every field.
void ExpectSameCircuit(const Circuit& a, const Circuit& b) {
  EXPECT_EQ(a.task, b.task);
  EXPECT_EQ(a.model_file, b.model_file);
  EXPECT_EQ(a.model_digest, b.model_digest);
  EXPECT_EQ(a.ablation, b.ablation);
  EXPECT_EQ(a.method, b.method);
  EXPECT_EQ(a.penalty, b.penalty);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.n_layer, b.n_layer);
  for (auto field :
       {&Circuit::target_loss, &Circuit::full_model_loss, &Circuit::circuit_loss,
        &Circuit::necessity_loss, &Circuit::random_baseline_loss, &Circuit::accuracy}) {
    EXPECT_EQ(std::memcmp(&(a.*field), &(b.*field), sizeof(double)), 0);
  }
  EXPECT_EQ(a.total_nodes, b.total_nodes);
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    EXPECT_EQ(a.nodes[i].node, b.nodes[i].node) << i;
    EXPECT_EQ(std::memcmp(&a.nodes[i].mask_logit, &b.nodes[i].mask_logit, 4), 0) << i;
    EXPECT_EQ(std::memcmp(&a.nodes[i].importance, &b.nodes[i].importance, 4), 0) << i;
  }
  ASSERT_EQ(a.edges.size(), b.edges.size());
  for (size_t i = 0; i < a.edges.size(); ++i) {
    EXPECT_EQ(a.edges[i].src, b.edges[i].src);
    EXPECT_EQ(a.edges[i].dst, b.edges[i].dst);
    EXPECT_EQ(std::memcmp(&a.edges[i].weight, &b.edges[i].weight, 4), 0) << i;
  }
  EXPECT_EQ(a.loss_vs_k_k, b.loss_vs_k_k);
  EXPECT_EQ(a.loss_vs_k_loss, b.loss_vs_k_loss);
  EXPECT_EQ(a.location_importance, b.location_importance);
  EXPECT_EQ(std::memcmp(&a.minimality, &b.minimality, sizeof(double)), 0);  // NaN too
  EXPECT_EQ(a.refined, b.refined);
  EXPECT_EQ(a.refine_removed, b.refine_removed);
  EXPECT_EQ(a.tied_nodes, b.tied_nodes);
  EXPECT_EQ(a.tie_note, b.tie_note);
  EXPECT_EQ(a.edge_definition, b.edge_definition);
  EXPECT_EQ(a.edge_candidates, b.edge_candidates);
  EXPECT_EQ(std::memcmp(&a.edge_loss, &b.edge_loss, sizeof(double)), 0);  // NaN too
}

TEST(CircuitFileTest, RoundTripIsExact) {
  TempDir dir;
  Circuit c = SmallCircuit();
  c.nodes[3].importance = 1.0f / 3.0f;  // not exactly representable in decimal
  c.edges[1].weight = -std::numeric_limits<float>::denorm_min();
  c.circuit_loss = 0.1 + 0.2;
  c.seed = std::numeric_limits<uint64_t>::max();
  const std::string path = dir.File("circuit.h5");
  ASSERT_THAT(WriteCircuitFile(path, c), IsOk());
  absl::StatusOr<Circuit> back = ReadCircuitFile(path);
  ASSERT_THAT(back, IsOk());
  ExpectSameCircuit(c, *back);
  // No temporary file is left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(CircuitFileTest, RefinementAndRankingRoundTrip) {
  TempDir dir;
  Circuit c = SmallCircuit();
  c.minimality = 0.75;
  c.refined = true;
  c.refine_removed = 9;
  c.tied_nodes = 4;
  c.tie_note = "4 of the 6 kept nodes are tied";
  c.edge_definition = "chosen by attribution";
  c.edge_candidates = 12;
  c.edge_loss = 0.125;
  ASSERT_THAT(WriteCircuitFile(dir.File("r.h5"), c), IsOk());
  absl::StatusOr<Circuit> back = ReadCircuitFile(dir.File("r.h5"));
  ASSERT_THAT(back, IsOk());
  ExpectSameCircuit(c, *back);
}

TEST(CircuitFileTest, EmptyCircuitRoundTrips) {
  TempDir dir;
  Circuit c;
  c.task = "empty";
  c.n_layer = 4;
  ASSERT_THAT(WriteCircuitFile(dir.File("e.h5"), c), IsOk());
  absl::StatusOr<Circuit> back = ReadCircuitFile(dir.File("e.h5"));
  ASSERT_THAT(back, IsOk());
  ExpectSameCircuit(c, *back);
}

TEST(CircuitFileTest, MissingFileAndUnwritableDirectory) {
  TempDir dir;
  EXPECT_THAT(ReadCircuitFile(dir.File("nope.h5")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope.h5")));
  EXPECT_THAT(WriteCircuitFile(dir.File("no/such/dir/c.h5"), SmallCircuit()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("c.h5")));
}

TEST(CircuitFileTest, TruncatedFile) {
  TempDir dir;
  ASSERT_THAT(WriteCircuitFile(dir.File("full.h5"), SmallCircuit()), IsOk());
  std::ifstream in(dir.File("full.h5"), std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string all = bytes.str();
  for (size_t keep : {size_t{0}, size_t{100}, all.size() / 2, all.size() - 16}) {
    const std::string path = dir.File("cut.h5");
    std::ofstream(path, std::ios::binary).write(all.data(), static_cast<std::streamsize>(keep));
    EXPECT_THAT(ReadCircuitFile(path),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cut.h5")))
        << "kept " << keep << " of " << all.size() << " bytes";
  }
}

// Writes a circuit file field by field like WriteCircuitFile, letting a test
// skip a dataset or change one before it is written.
using Edit = std::function<void(const std::string& name, std::vector<std::string>* strings,
                                std::vector<int64_t>* ints)>;
void WriteRaw(const std::string& path, const std::string& format, const std::string& skip,
              const Edit& edit, const std::function<void(H5Writer&)>& extra = nullptr) {
  const Circuit c = SmallCircuit();
  absl::StatusOr<H5Writer> w = H5Writer::Create(path);
  ASSERT_THAT(w, IsOk());
  auto strings = [&](const std::string& name, std::vector<std::string> v) {
    if (name == skip) return;
    edit(name, &v, nullptr);
    ASSERT_THAT(w->WriteStrings(name, v), IsOk());
  };
  auto ints = [&](const std::string& name, std::vector<int64_t> v) {
    if (name == skip) return;
    edit(name, nullptr, &v);
    ASSERT_THAT(w->WriteInt64s(name, v), IsOk());
  };
  auto floats = [&](const std::string& name, std::vector<float> v) {
    if (name == skip) return;
    ASSERT_THAT(w->WriteFloats(name, {v.size()}, v), IsOk());
  };
  ASSERT_THAT(w->WriteAttribute("/", "format", format), IsOk());
  for (const char* name : {"task", "model", "model_digest", "ablation", "method", "penalty"}) {
    ASSERT_THAT(w->WriteAttribute("/", name, std::string("x")), IsOk());
  }
  std::vector<int64_t> n_nodes = {static_cast<int64_t>(c.nodes.size())};
  edit("n_nodes", nullptr, &n_nodes);
  ASSERT_THAT(w->WriteAttribute("/", "n_nodes", n_nodes[0]), IsOk());
  for (const auto& [name, v] : std::vector<std::pair<const char*, int64_t>>{
           {"format_version", 1},
           {"seed", 1},
           {"n_layer", c.n_layer},
           {"n_edges", static_cast<int64_t>(c.edges.size())},
           {"total_nodes", 100}}) {
    ASSERT_THAT(w->WriteAttribute("/", name, v), IsOk());
  }
  for (const char* name : {"target_loss", "full_model_loss", "circuit_loss", "necessity_loss",
                           "random_baseline_loss", "accuracy"}) {
    ASSERT_THAT(w->WriteAttribute("/", name, 0.5), IsOk());
  }
  std::vector<int64_t> layer, index;
  std::vector<std::string> location;
  std::vector<float> zeros(c.nodes.size(), 0.0f), weights;
  for (const CircuitNode& n : c.nodes) {
    layer.push_back(n.node.layer);
    index.push_back(n.node.index);
    location.emplace_back(LocationName(n.node.location));
  }
  std::vector<int64_t> src, dst;
  for (const CircuitEdge& e : c.edges) {
    src.push_back(e.src);
    dst.push_back(e.dst);
    weights.push_back(e.weight);
  }
  ints("/nodes/layer", layer);
  strings("/nodes/location", location);
  ints("/nodes/index", index);
  floats("/nodes/mask_logit", zeros);
  floats("/nodes/importance", zeros);
  ints("/edges/src", src);
  ints("/edges/dst", dst);
  floats("/edges/weight", weights);
  ints("/loss_vs_k/k", {1, 2});
  if (skip != "/loss_vs_k/loss")
    ASSERT_THAT(w->WriteDoubles("/loss_vs_k/loss", {0.5, 0.25}), IsOk());
  strings("/location_importance/name", {"L0 attn.q"});
  if (skip != "/location_importance/loss") {
    ASSERT_THAT(w->WriteDoubles("/location_importance/loss", {1.0}), IsOk());
  }
  if (extra) extra(*w);
  ASSERT_THAT(w->Commit(), IsOk());
}

const Edit kNoEdit = [](const std::string&, std::vector<std::string>*, std::vector<int64_t>*) {};

TEST(CircuitFileTest, RawWriterMatchesTheReader) {
  TempDir dir;
  WriteRaw(dir.File("raw.h5"), "circuit.circuit", "", kNoEdit);
  absl::StatusOr<Circuit> c = ReadCircuitFile(dir.File("raw.h5"));
  ASSERT_THAT(c, IsOk());
  // Files without the refinement attributes: minimality was not measured.
  EXPECT_TRUE(std::isnan(c->minimality));
  EXPECT_FALSE(c->refined);
  EXPECT_EQ(c->tie_note, "");
  // ... and edges were not chosen by attribution.
  EXPECT_EQ(c->edge_candidates, -1);
  EXPECT_TRUE(std::isnan(c->edge_loss));
}

// The extraction settings and the full ranking round-trip; NaN stays NaN.
TEST(CircuitFileTest, SettingsAndRankingRoundTrip) {
  TempDir dir;
  Circuit c = SmallCircuit();
  c.settings.n_train = 64;
  c.settings.n_validation = 16;
  c.settings.n_test = 20;
  c.settings.task_seed = 3;
  c.settings.penalty_coef = 1e-3;
  c.settings.lr = 0.02;
  c.settings.batch = 16;
  c.settings.epochs = 4;
  c.settings.confidence = 0.9;
  c.settings.calibrate = 0;
  c.random_baseline_loss = std::numeric_limits<double>::quiet_NaN();
  c.node_scores.assign(c.total_nodes, 0.5f);
  c.node_scores[1] = -2.0f;
  ASSERT_THAT(WriteCircuitFile(dir.File("s.h5"), c), IsOk());
  absl::StatusOr<Circuit> back = ReadCircuitFile(dir.File("s.h5"));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->settings.n_train, 64);
  EXPECT_EQ(back->settings.n_validation, 16);
  EXPECT_EQ(back->settings.n_test, 20);
  EXPECT_EQ(back->settings.task_seed, 3);
  EXPECT_EQ(back->settings.penalty_coef, 1e-3);
  EXPECT_EQ(back->settings.lr, 0.02);
  EXPECT_EQ(back->settings.batch, 16);
  EXPECT_EQ(back->settings.epochs, 4);
  EXPECT_EQ(back->settings.confidence, 0.9);
  EXPECT_EQ(back->settings.calibrate, 0);
  EXPECT_EQ(back->settings.search, -1);  // never set: still "not recorded"
  EXPECT_TRUE(std::isnan(back->settings.calibration_scale));
  EXPECT_TRUE(std::isnan(back->random_baseline_loss));
  EXPECT_EQ(back->node_scores, c.node_scores);
}

// A file written before /extract and /ranking existed reads, with every
// setting "not recorded" and no ranking.
TEST(CircuitFileTest, OlderFileWithoutSettingsReads) {
  TempDir dir;
  WriteRaw(dir.File("old.h5"), "circuit.circuit", "", kNoEdit);
  absl::StatusOr<Circuit> c = ReadCircuitFile(dir.File("old.h5"));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->settings.n_train, -1);
  EXPECT_EQ(c->settings.task_seed, -1);
  EXPECT_TRUE(std::isnan(c->settings.lr));
  EXPECT_TRUE(c->node_scores.empty());
}

// A ranking whose length is not the model's node count is refused, by name.
TEST(CircuitFileTest, RankingOfTheWrongLength) {
  TempDir dir;
  Circuit c = SmallCircuit();
  c.node_scores.assign(c.total_nodes + 1, 0.0f);
  ASSERT_THAT(WriteCircuitFile(dir.File("r.h5"), c), IsOk());
  EXPECT_THAT(ReadCircuitFile(dir.File("r.h5")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/ranking/node_score")));
}

TEST(CircuitFileTest, WrongFormatAttribute) {
  TempDir dir;
  WriteRaw(dir.File("model.h5"), "circuit.model", "", kNoEdit);
  EXPECT_THAT(ReadCircuitFile(dir.File("model.h5")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("model.h5"), HasSubstr("circuit.circuit"))));
}

TEST(CircuitFileTest, EveryMissingDatasetIsNamed) {
  TempDir dir;
  for (const char* dataset :
       {"/nodes/layer", "/nodes/location", "/nodes/index", "/nodes/mask_logit", "/nodes/importance",
        "/edges/src", "/edges/dst", "/edges/weight", "/loss_vs_k/k", "/loss_vs_k/loss",
        "/location_importance/name", "/location_importance/loss"}) {
    const std::string path = dir.File("missing.h5");
    WriteRaw(path, "circuit.circuit", dataset, kNoEdit);
    EXPECT_THAT(ReadCircuitFile(path),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("missing.h5"), HasSubstr(dataset))));
  }
}

TEST(CircuitFileTest, EdgeIndexOutOfRange) {
  TempDir dir;
  WriteRaw(dir.File("edge.h5"), "circuit.circuit", "",
           [](const std::string& name, std::vector<std::string>*, std::vector<int64_t>* v) {
             if (name == "/edges/dst") (*v)[2] = 17;
           });
  EXPECT_THAT(
      ReadCircuitFile(dir.File("edge.h5")),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("edge.h5"), HasSubstr("/edges/dst[2]"), HasSubstr("out of range"))));
  WriteRaw(dir.File("neg.h5"), "circuit.circuit", "",
           [](const std::string& name, std::vector<std::string>*, std::vector<int64_t>* v) {
             if (name == "/edges/src") (*v)[0] = -1;
           });
  EXPECT_THAT(ReadCircuitFile(dir.File("neg.h5")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/edges/src[0]")));
}

TEST(CircuitFileTest, LengthsMustAgreeWithCounts) {
  TempDir dir;
  WriteRaw(dir.File("count.h5"), "circuit.circuit", "",
           [](const std::string& name, std::vector<std::string>*, std::vector<int64_t>* v) {
             if (name == "n_nodes") (*v)[0] = 16;
           });
  EXPECT_THAT(ReadCircuitFile(dir.File("count.h5")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("/nodes/layer"), HasSubstr("17 rows, expected 16"))));
  WriteRaw(dir.File("short.h5"), "circuit.circuit", "",
           [](const std::string& name, std::vector<std::string>*, std::vector<int64_t>* v) {
             if (name == "/edges/src") v->pop_back();
           });
  EXPECT_THAT(ReadCircuitFile(dir.File("short.h5")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("/edges/src"), HasSubstr("n_edges"))));
}

TEST(CircuitFileTest, BadLocationsAndLayers) {
  TempDir dir;
  WriteRaw(dir.File("loc.h5"), "circuit.circuit", "",
           [](const std::string& name, std::vector<std::string>* v, std::vector<int64_t>*) {
             if (name == "/nodes/location") (*v)[4] = "attn.z";
           });
  EXPECT_THAT(ReadCircuitFile(dir.File("loc.h5")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("/nodes/location[4]"), HasSubstr("attn.z"))));
  WriteRaw(dir.File("layer.h5"), "circuit.circuit", "",
           [](const std::string& name, std::vector<std::string>*, std::vector<int64_t>* v) {
             if (name == "/nodes/layer") (*v)[10] = 2;  // L2 attn.act_in in a 2-layer model
           });
  EXPECT_THAT(ReadCircuitFile(dir.File("layer.h5")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("/nodes/layer[10]"), HasSubstr("out of range"))));
  WriteRaw(dir.File("order.h5"), "circuit.circuit", "",
           [](const std::string& name, std::vector<std::string>*, std::vector<int64_t>* v) {
             if (name == "/nodes/index") (*v)[2] = 0;  // repeats L0 attn.q 0
           });
  EXPECT_THAT(ReadCircuitFile(dir.File("order.h5")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/nodes[2]")));
}

TEST(CircuitFileTest, WrongDatasetType) {
  TempDir dir;
  WriteRaw(dir.File("type.h5"), "circuit.circuit", "/nodes/mask_logit", kNoEdit, [](H5Writer& w) {
    ASSERT_THAT(w.WriteDoubles("/nodes/mask_logit", std::vector<double>(17, 0.0)), IsOk());
  });
  EXPECT_THAT(ReadCircuitFile(dir.File("type.h5")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("type.h5"), HasSubstr("/nodes/mask_logit"))));
  WriteRaw(dir.File("strs.h5"), "circuit.circuit", "/nodes/location", kNoEdit, [](H5Writer& w) {
    ASSERT_THAT(w.WriteInt32s("/nodes/location", std::vector<int32_t>(17, 0)), IsOk());
  });
  EXPECT_THAT(ReadCircuitFile(dir.File("strs.h5")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/nodes/location")));
}

TEST(CircuitFileTest, BadExplanationsAreNamed) {
  TempDir dir;
  const int64_t n = static_cast<int64_t>(SmallCircuit().nodes.size());
  // The group's head: attributes, class names and prompts; `prompt_offsets` varies.
  auto head = [](int64_t n_nodes, std::vector<int64_t> prompt_offsets) {
    return [=](H5Writer& w) {
      ASSERT_THAT(w.WriteAttribute("/explanations", "n_nodes", n_nodes), IsOk());
      ASSERT_THAT(w.WriteAttribute("/explanations", "corpus", "c"), IsOk());
      ASSERT_THAT(w.WriteAttribute("/explanations", "top", int64_t{1}), IsOk());
      ASSERT_THAT(w.WriteStrings("/explanations/class_names", {"a"}), IsOk());
      ASSERT_THAT(w.WriteStrings("/explanations/prompts/tokens", {"x", "y"}), IsOk());
      ASSERT_THAT(w.WriteInt64s("/explanations/prompts/offsets", prompt_offsets), IsOk());
    };
  };
  const std::string path = dir.File("e.h5");
  WriteRaw(path, "circuit.circuit", "", kNoEdit, head(n - 1, {0, 2}));
  EXPECT_THAT(ReadCircuitFile(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                              AllOf(HasSubstr("e.h5"), HasSubstr("/explanations@n_nodes"))));
  WriteRaw(path, "circuit.circuit", "", kNoEdit, head(n, {0, 2, 1}));
  EXPECT_THAT(ReadCircuitFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/explanations/prompts/offsets")));
  WriteRaw(path, "circuit.circuit", "", kNoEdit, head(n, {0, 3}));
  EXPECT_THAT(ReadCircuitFile(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("offsets must run from 0 to 2, got 0 to 3")));
  WriteRaw(path, "circuit.circuit", "", kNoEdit, head(n, {0, 1, 2}));
  EXPECT_THAT(ReadCircuitFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/explanations/top_contexts/value")));
  // Contexts whose marked token lies outside their window.
  WriteRaw(path, "circuit.circuit", "", kNoEdit, [&](H5Writer& w) {
    head(n, {0, 2})(w);
    std::vector<int64_t> offsets(n + 1, 1);
    offsets[0] = 0;
    ASSERT_THAT(w.WriteInt64s("/explanations/top_contexts/offsets", offsets), IsOk());
    ASSERT_THAT(w.WriteFloats("/explanations/top_contexts/value", {1}, std::vector<float>{1.0f}), IsOk());
    ASSERT_THAT(w.WriteInt32s("/explanations/top_contexts/marked", std::vector<int32_t>{2}), IsOk());
    ASSERT_THAT(w.WriteInt64s("/explanations/top_contexts/token_offsets", {0, 2}), IsOk());
    ASSERT_THAT(w.WriteStrings("/explanations/top_contexts/tokens", {"a", "b"}), IsOk());
  });
  EXPECT_THAT(ReadCircuitFile(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("/explanations/top_contexts/marked[0]: 2 outside")));
}

TEST(CircuitFileTest, H5pyReadsEveryDataset) {
  const char* python = "/usr/bin/python3";
  if (!std::filesystem::exists(python) ||
      testing::RunCommand(std::string(python) + " -c 'import h5py'").exit_code != 0) {
    CIRCUIT_SKIP_UNLESS_CI() << "/usr/bin/python3 has no h5py";
  }
  TempDir dir;
  const std::string path = dir.File("circuit.h5");
  ASSERT_THAT(WriteCircuitFile(path, SmallCircuit()), IsOk());
  const std::string script = dir.File("check.py");
  std::ofstream(script) << R"(import sys, h5py
f = h5py.File(sys.argv[1], "r")
a = f.attrs
assert a["format"] == "circuit.circuit", a["format"]
assert int(a["format_version"]) == 1
for k in ["task", "model", "model_digest", "ablation", "method", "penalty"]:
    assert isinstance(a[k], str), k
for k in ["seed", "n_layer", "n_nodes", "n_edges", "total_nodes"]:
    int(a[k])
for k in ["target_loss", "full_model_loss", "circuit_loss", "necessity_loss",
          "random_baseline_loss", "accuracy"]:
    float(a[k])
n, e = int(a["n_nodes"]), int(a["n_edges"])
want = {"nodes/layer": ("int32", n), "nodes/index": ("int32", n),
        "nodes/mask_logit": ("float32", n), "nodes/importance": ("float32", n),
        "edges/src": ("int64", e), "edges/dst": ("int64", e), "edges/weight": ("float32", e),
        "loss_vs_k/k": ("int64", 4), "loss_vs_k/loss": ("float64", 4),
        "location_importance/loss": ("float64", 2)}
for name, (dtype, rows) in want.items():
    d = f[name][()]
    assert str(d.dtype) == dtype and d.shape == (rows,), (name, d.dtype, d.shape)
locs = [s.decode() for s in f["nodes/location"][()]]
names = [s.decode() for s in f["location_importance/name"][()]]
assert len(locs) == n and locs[0] == "attn.act_in" and locs[-1] == "final_resid", locs
assert names == ["L0 attn.q", "L0 mlp.post_act"], names
assert abs(float(f["edges/weight"][3]) - 2.0) < 1e-7
print("ok", n, e, a["task"])
)";
  const testing::RunResult r = testing::RunCommand(std::string(python) + " " + script + " " + path);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok 17 10 single_double_quote\n") << r.err;
}

}  // namespace
}  // namespace circuit
