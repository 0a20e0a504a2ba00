// beeg_config.json mapping and the state-dict pickle reader/writer (torch-free).
#include "circuit/core/release_config.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_matchers.h"
#include "io/torch_pickle.h"

namespace circuit {
namespace {

using ::absl::StatusCode;
using ::circuit::internal::ParseStateDictPickle;
using ::circuit::internal::PickledTensor;
using ::circuit::internal::WriteStateDictPickle;
using ::circuit::testing::IsOk;
using ::circuit::testing::StatusIs;
using ::testing::Contains;
using ::testing::HasSubstr;

// csp_yolo2's shape with the training-only keys real configs carry.
constexpr char kYolo2Like[] = R"({
  "block_size": 1024, "vocab_size": 2048, "n_layer": 8, "n_head": 128, "d_head": 16,
  "d_model": 2048, "dropout": 0.0, "bias": true, "ln_bias": true, "rms_norm": true,
  "residual_activation_type": "identity", "activation_type": "gelu", "afrac": 0.25,
  "afrac_loctypes": "attn_in,attn_out,mlp_in,mlp_out,mlp_neuron,attn_v,attn_k,attn_q",
  "debug_nans": false, "tied_unembed": false, "tokenizer_name": "tinypython_2k",
  "grad_checkpointing": true, "n_mlp": 8192, "enable_bigram_table": true,
  "learnable_bigram_table": true, "d_pos_emb": 32, "dropout_cat_pos_emb": false,
  "sinusoidal_cat_pos_emb": false, "enable_sparse_kernels": false, "flash": true, "sink": true,
  "bigram_table_rank": null, "pfrac": 0.0625, "expansion_factor": 8, "afrac_approx": false,
  "rtopk": false, "debug_exact_topk": false, "sparse_matmul_impl": "dense"})";

TEST(ReleaseConfigTest, MapsAReleasedConfig) {
  absl::StatusOr<ReleaseConfig> rc = ParseReleaseConfig(kYolo2Like);
  ASSERT_THAT(rc, IsOk());
  const ModelConfig& c = rc->config;
  EXPECT_EQ(c.n_layer, 8);
  EXPECT_EQ(c.d_model, 2048);
  EXPECT_EQ(c.n_head, 128);
  EXPECT_EQ(c.d_head, 16);
  EXPECT_EQ(c.d_mlp, 8192);  // from the legacy n_mlp
  EXPECT_EQ(c.n_ctx, 1024);
  EXPECT_EQ(c.d_pos_emb, 32);
  EXPECT_EQ(c.afrac, 0.25);
  EXPECT_TRUE(c.attn_sink);
  EXPECT_TRUE(c.bigram_table);
  EXPECT_TRUE(c.HasActivationSparsity(NodeLocation::kAttnQ));
  EXPECT_THAT(rc->notes, Contains(HasSubstr("pfrac")));
  EXPECT_THAT(rc->notes, Contains(HasSubstr("sparse_matmul_impl")));
  EXPECT_EQ(c.TotalNodes(), 8 * (2 * 2080 + 3 * 2048 + 2 * 2048 + 8192) + 2048);
}

TEST(ReleaseConfigTest, TakesGptConfigDefaults) {
  absl::StatusOr<ReleaseConfig> rc = ParseReleaseConfig(
      R"({"n_layer": 2, "n_head": 4, "d_model": 64, "vocab_size": 300, "block_size": 32,
          "rms_norm": true, "afrac": null, "d_head": null, "d_mlp": null, "d_pos_emb": null})");
  ASSERT_THAT(rc, IsOk());
  EXPECT_EQ(rc->config.d_head, 16);
  EXPECT_EQ(rc->config.d_mlp, 256);
  EXPECT_EQ(rc->config.d_pos_emb, 0);
  EXPECT_EQ(rc->config.afrac, 0.0);
  EXPECT_FALSE(rc->config.attn_sink);     // sink defaults to false
  EXPECT_FALSE(rc->config.bigram_table);  // enable_bigram_table defaults to false
  EXPECT_TRUE(rc->tied_unembed);          // GPTConfig's default, converted on import
  EXPECT_TRUE(rc->bias);
  EXPECT_EQ(rc->config.afrac_loctypes, "attn_in,attn_out,mlp_in,mlp_out");
}

TEST(ReleaseConfigTest, RejectsWhatTheModelCannotRun) {
  const std::string base = R"("n_layer": 1, "n_head": 2, "d_model": 8, "vocab_size": 300)";
  EXPECT_THAT(ParseReleaseConfig("{" + base + "}"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("rms_norm: false (LayerNorm)")));
  EXPECT_THAT(
      ParseReleaseConfig("{" + base + R"(, "rms_norm": true, "residual_activation_type": "relu"})"),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("residual_activation_type: \"relu\"")));
  EXPECT_THAT(
      ParseReleaseConfig(
          "{" + base +
          R"(, "rms_norm": true, "afrac": 0.5, "afrac_loctypes": "attn_in,resid_post_mlp"})"),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("'resid_post_mlp'")));
  EXPECT_THAT(ParseReleaseConfig("{" + base + R"(, "rms_norm": true, "activation_type": "silu"})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("activation_type")));
  EXPECT_THAT(
      ParseReleaseConfig("{" + base + R"(, "rms_norm": true, "use_tied_aux_matrix": true})"),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("use_tied_aux_matrix")));
}

TEST(ReleaseConfigTest, RejectsMalformedJson) {
  EXPECT_THAT(ParseReleaseConfig("{\"n_layer\": 2,"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not valid JSON")));
  EXPECT_THAT(ParseReleaseConfig("[1, 2]"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a JSON object")));
  EXPECT_THAT(ParseReleaseConfig(R"({"rms_norm": true, "n_layer": "8"})"),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("n_layer: \"8\" is not a positive integer")));
  EXPECT_THAT(ParseReleaseConfig(R"({"rms_norm": true, "n_head": -2})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("n_head: -2")));
  EXPECT_THAT(
      ParseReleaseConfig(R"({"rms_norm": 1})"),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("rms_norm: 1 is not true or false")));
  EXPECT_THAT(ParseReleaseConfig(R"({"rms_norm": true, "afrac": 2.0})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("afrac: 2.0")));
}

TEST(ReleaseConfigTest, ExportedJsonMapsBack) {
  ModelConfig c;
  c.n_layer = 3;
  c.d_model = 48;
  c.n_head = 6;
  c.d_head = 4;  // A = 24 != d_model
  c.d_mlp = 100;
  c.n_ctx = 64;
  c.d_pos_emb = 16;
  c.afrac = 0.125;
  c.activation = "relu";
  absl::StatusOr<std::string> json = ReleaseConfigJson(c);
  ASSERT_THAT(json, IsOk());
  absl::StatusOr<ReleaseConfig> back = ParseReleaseConfig(*json);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->config.n_layer, 3);
  EXPECT_EQ(back->config.d_head, 4);
  EXPECT_EQ(back->config.d_mlp, 100);
  EXPECT_EQ(back->config.n_ctx, 64);
  EXPECT_EQ(back->config.d_pos_emb, 16);
  EXPECT_EQ(back->config.afrac, 0.125);
  EXPECT_EQ(back->config.afrac_loctypes, c.afrac_loctypes);
  EXPECT_EQ(back->config.activation, "relu");
  EXPECT_EQ(back->config.attn_sink, c.attn_sink);
  EXPECT_EQ(back->config.bigram_table, c.bigram_table);
  EXPECT_FALSE(back->tied_unembed);
  // The release's current load_model() hands every key to GPTConfig(**config),
  // which has no bigram_table_rank field: the key must not be written at all.
  EXPECT_THAT(*json, ::testing::Not(HasSubstr("bigram_table_rank")));

  c.n_head = 5;  // 48 % 5 != 0: the release's GPTConfig asserts on it
  EXPECT_THAT(ReleaseConfigJson(c),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("d_model % n_head")));
}

std::vector<PickledTensor> SampleEntries() {
  PickledTensor a;
  a.name = "transformer.wte.weight";
  a.storage_key = "0";
  a.storage_type = "FloatStorage";
  a.location = "cpu";
  a.storage_numel = 6;
  a.sizes = {2, 3};
  a.strides = {3, 1};
  PickledTensor b = a;
  b.name = "big";
  b.storage_key = "1";
  b.storage_numel = int64_t{5} << 32;  // needs LONG1
  b.offset = 7;
  b.sizes = {};
  b.strides = {};
  return {a, b};
}

TEST(TorchPickleTest, WriterOutputParsesBack) {
  const std::vector<PickledTensor> entries = SampleEntries();
  absl::StatusOr<std::vector<PickledTensor>> back =
      ParseStateDictPickle(WriteStateDictPickle(entries));
  ASSERT_THAT(back, IsOk());
  ASSERT_EQ(back->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*back)[i].name, entries[i].name);
    EXPECT_EQ((*back)[i].storage_key, entries[i].storage_key);
    EXPECT_EQ((*back)[i].storage_type, entries[i].storage_type);
    EXPECT_EQ((*back)[i].storage_numel, entries[i].storage_numel);
    EXPECT_EQ((*back)[i].offset, entries[i].offset);
    EXPECT_EQ((*back)[i].sizes, entries[i].sizes);
    EXPECT_EQ((*back)[i].strides, entries[i].strides);
  }
}

TEST(TorchPickleTest, TruncatedAndCorruptedPicklesFailCleanly) {
  const std::string good = WriteStateDictPickle(SampleEntries());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(ParseStateDictPickle(good.substr(0, n)).ok()) << "prefix " << n;
  }
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bad = good;
    for (int flips = 0; flips < 3; ++flips) bad[rng() % bad.size()] = static_cast<char>(rng());
    (void)ParseStateDictPickle(bad);  // must return, never crash or hang
  }
  EXPECT_THAT(ParseStateDictPickle("PK\x03\x04"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a pickle")));
  // A global outside the allow-list, as a pickled nn.Module would have.
  static const char kEvil[] =
      "\x80\x02"
      "cos\nsystem\n"
      "X\x02\x00\x00\x00ls"
      "\x85R.";
  const std::string evil(kEvil, sizeof(kEvil) - 1);
  EXPECT_THAT(ParseStateDictPickle(evil),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'os.system' is not allowed")));
}

TEST(ReleaseConfigTest, AbsurdSizesAndNumbersAreRefusedUpFront) {
  // n_layer 2^30 once took 79 s and 4.6 GB before bad_alloc; now the config says no.
  EXPECT_THAT(ParseReleaseConfig(R"({"n_layer": 1073741824, "rms_norm": true})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("n_layer must be <= 1024")));
  EXPECT_THAT(ParseReleaseConfig(R"({"n_head": 65536, "d_head": 65536, "rms_norm": true})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("n_head * d_head")));
  EXPECT_THAT(ParseReleaseConfig(R"({"afrac": 1e400, "rms_norm": true})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not valid JSON")));
}

// 2M nested tuples once overflowed the stack when the parse tree was freed.
TEST(TorchPickleTest, DeepNestingIsCappedAndFreedWithoutRecursion) {
  std::string deep = "\x80\x02)";
  deep += std::string(2000000, '\x85');  // TUPLE1, two million times
  deep += ".";
  EXPECT_THAT(ParseStateDictPickle(deep),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("nested too deeply")));
  std::string marks = "\x80\x02";
  for (int i = 0; i < 200000; ++i) marks += "(";
  marks += "N";
  for (int i = 0; i < 200000; ++i) marks += "t";  // MARK ... TUPLE, nested
  marks += ".";
  EXPECT_THAT(ParseStateDictPickle(marks),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("nested too deeply")));
}

TEST(TorchPickleTest, SelfContainingListAndObjectFloodFailCleanly) {
  // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND: a list that contains itself.
  static const char kCycle[] = "\x80\x02]q\x00" "h\x00" "a.";
  EXPECT_THAT(ParseStateDictPickle(std::string(kCycle, sizeof(kCycle) - 1)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("holds a list")));
  std::string flood = "\x80\x02" + std::string((1 << 20) + 1, 'N') + ".";
  EXPECT_THAT(ParseStateDictPickle(flood),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("more than 1048576 objects")));
}

}  // namespace
}  // namespace circuit
