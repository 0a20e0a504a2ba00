// Pruning throughput on the bundled model's shape (4 layers, d_model 128,
// 8 heads x 16, d_mlp 512, vocab 2048, afrac 0.25): mask-training steps (forward
// + backward of 2 * batch prompts through the gate taps, AdamW on tau), one
// ablated evaluation of a validation split, and edge enumeration.
// Random-init weights and random prompts: the cost does not depend on them.
//
//   CIRCUIT_THREADS=2 build/bin/bench_prune --benchmark_counters_tabular=true
//
// Counters: steps/s, fwd_share / bwd_share (of the mask loop), prompts/s.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <vector>

#include "circuit/core/checkpoint.h"
#include "circuit/core/model.h"
#include "circuit/core/task.h"
#include "circuit/core/runtime.h"
#include "circuit/core/trainer.h"
#include "circuit/prune/ablation.h"
#include "circuit/prune/edges.h"
#include "circuit/prune/mask_optimizer.h"
#include "circuit/prune/mean_cache.h"
#include "circuit/prune/node_index.h"

namespace circuit::prune {
namespace {

struct Fixture {
  explicit Fixture(int prompt_tokens)
      : model(*Model::Create(ModelConfig(), /*seed=*/1)), index(model.config()),
        units(BuildMaskUnits(index, /*tie_qk=*/false)) {
    auto gen = at::detail::createCPUGenerator(2);
    const int V = model.config().vocab_size;
    torch::Tensor windows = torch::randint(0, V, {16, model.config().n_ctx}, gen, torch::kInt64);
    means = ComputeMeans(model, windows)->means;
    // 256 pairs of prompts of `prompt_tokens` tokens that differ in one token.
    torch::Tensor t = torch::randint(0, V, {256, prompt_tokens}, gen, torch::kInt64);
    for (int p = 0; p < 256; ++p) {
      TaskExample a, b;
      for (int j = 0; j < prompt_tokens; ++j) a.tokens.push_back(static_cast<int32_t>(t[p][j].item<int64_t>()));
      b.tokens = a.tokens;
      b.tokens[prompt_tokens / 2] = (b.tokens[prompt_tokens / 2] + 1) % V;
      a.correct = b.alternative = 10;
      a.alternative = b.correct = 11;
      examples.push_back(a);
      examples.push_back(b);
    }
  }
  Model model;
  NodeIndex index;
  MaskUnits units;
  std::vector<torch::Tensor> means;
  std::vector<TaskExample> examples;
};

void SetThreads() {
  const char* env = std::getenv("CIRCUIT_THREADS");
  ConfigureRuntime(env != nullptr ? std::atoi(env) : 0);
  KeepFreedMemory();  // as `circuit extract` does: no page faults on every large activation
}

// Runs one epoch of mask training (`batch` pairs per step) per iteration and
// reports steps/s and the forward / backward shares of the loop.
void MaskEpochs(benchmark::State& state, const Model& model, const NodeIndex& index,
                const MaskUnits& units, const std::vector<torch::Tensor>& means,
                const std::vector<TaskExample>& examples, int batch = 64) {
  MaskTrainOptions o;
  o.epochs = 1;
  o.batch = batch;
  double seconds = 0, fwd = 0, bwd = 0;
  int64_t steps = 0;
  for (auto _ : state) {
    MaskTrainResult r = *TrainMasks(model, index, units, means, examples, o, /*seed=*/0);
    seconds += r.seconds;
    fwd += r.forward_seconds;
    bwd += r.backward_seconds;
    steps += r.steps;
  }
  state.counters["steps/s"] = steps / seconds;
  state.counters["fwd_share"] = fwd / seconds;
  state.counters["bwd_share"] = bwd / seconds;
}

// One epoch of 4 mask steps at batch 64 pairs (128 prompts) per iteration.
void BM_MaskSteps(benchmark::State& state) {
  SetThreads();
  Fixture f(static_cast<int>(state.range(0)));
  MaskEpochs(state, f.model, f.index, f.units, f.means, f.examples);
}
BENCHMARK(BM_MaskSteps)->Arg(32)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

// One discretization point: 512 prompts with half the nodes mean-ablated.
void BM_AblatedEvaluation(benchmark::State& state) {
  SetThreads();
  Fixture f(static_cast<int>(state.range(0)));
  AblationEvaluator eval(f.model, f.index, f.means, Ablation::kMean, f.examples);
  torch::Tensor keep = (torch::rand({f.index.total()}, at::detail::createCPUGenerator(3)) < 0.5)
                           .to(torch::kFloat32);
  for (auto _ : state) benchmark::DoNotOptimize(eval.Score(keep).loss);
  state.counters["prompts/s"] = benchmark::Counter(
      static_cast<double>(f.examples.size()) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AblatedEvaluation)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();

// The bare forward pass the loops above repeat: 128 prompts of 64 tokens, no taps;
// Arg: 1 with AbsTopK (afrac 0.25), 0 without.
void BM_Forward(benchmark::State& state) {
  SetThreads();
  ModelConfig c;
  if (state.range(0) == 0) c.afrac = 0.0;
  const Model model = *Model::Create(c, /*seed=*/1);
  torch::NoGradGuard no_grad;
  torch::Tensor tokens = torch::randint(0, c.vocab_size, {128, 64}, torch::kInt64);
  torch::Tensor last = torch::full({128}, 63, torch::kInt64);
  for (auto _ : state) benchmark::DoNotOptimize(model.ForwardAt(tokens, last));
  state.counters["tokens/s"] = benchmark::Counter(128.0 * 64 * state.iterations(),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Forward)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

// Dense against sparse (CSR) products (model/gpt/sparse_linear.h): the scoring
// forward (AnswerLogits) of 32 prompts of 64 tokens on random weights whose
// matrices keep 1/density of their entries. Args: density (inverse), sparse (1:
// the CSR product; 0: the dense one, forced by weights that take a gradient),
// d_model (d_mlp = 4 d_model, heads of 16). Where the lines cross sets
// CIRCUIT_SPARSE_DENSITY's default (docs/performance.md).
void BM_ForwardDensity(benchmark::State& state) {
  SetThreads();
  ModelConfig c;
  c.d_model = static_cast<int>(state.range(2));
  c.d_mlp = 4 * c.d_model;
  c.n_head = c.d_model / 16;
  std::vector<NamedTensor> weights = Model::Create(c, /*seed=*/1)->parameters();
  auto gen = at::detail::createCPUGenerator(2);
  for (NamedTensor& w : weights) {
    const bool matrix = w.tensor.dim() == 2 && w.name.find("transformer.h.") == 0;
    if (matrix) {
      w.tensor = torch::randn(w.tensor.sizes(), gen) *
                 (torch::rand(w.tensor.sizes(), gen) < 1.0 / state.range(0)).to(torch::kFloat32);
    }
  }
  Model model = *Model::FromTensors(c, weights);
  if (state.range(1) == 0) {
    for (NamedTensor& p : model.mutable_parameters()) p.tensor.set_requires_grad(true);
  }
  torch::NoGradGuard no_grad;
  torch::Tensor tokens = torch::randint(0, c.vocab_size, {32, 64}, gen, torch::kInt64);
  torch::Tensor last = torch::full({32}, 63, torch::kInt64);
  for (auto _ : state) benchmark::DoNotOptimize(model.AnswerLogits(tokens, last));
  state.counters["sparse_products"] = model.NumSparseProducts();
}
BENCHMARK(BM_ForwardDensity)
    ->ArgNames({"density", "sparse", "d_model"})
    ->ArgsProduct({{4, 8, 16, 32, 64, 128, 1024}, {0, 1}, {128, 512}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The same loops on the bundled model (data/models/default.h5, or
// CIRCUIT_MODEL) and its single_double_quote prompts (128 train pairs, as the
// quickstart's extraction): real lengths (~71 tokens, padded per batch) and
// real activations. Skipped when the model file is absent.
struct QuoteFixture {
  static QuoteFixture* Get() {
    static QuoteFixture* f = [] {
      const char* env = std::getenv("CIRCUIT_MODEL");
      absl::StatusOr<ModelFile> file = LoadModel(env != nullptr ? env : "data/models/default.h5");
      if (!file.ok()) return static_cast<QuoteFixture*>(nullptr);
      TaskOptions o;
      o.n_ctx = file->model.config().n_ctx;
      o.n_train = 128;
      o.n_validation = 128;  // what circuit extract uses: 256 prompts per evaluation
      o.n_test = 32;
      absl::StatusOr<TaskData> task = BuildTask("single_double_quote", file->tokenizer, o);
      absl::StatusOr<MeanCache> means = LoadMeans(MeansPathFor(file->path), file->model.layout());
      if (!task.ok() || !means.ok()) return static_cast<QuoteFixture*>(nullptr);
      return new QuoteFixture{std::move(*file), std::move(*task), std::move(means->means)};
    }();
    return f;
  }
  ModelFile file;
  TaskData task;
  std::vector<torch::Tensor> means;
};

void BM_QuoteMaskSteps(benchmark::State& state) {
  SetThreads();
  QuoteFixture* f = QuoteFixture::Get();
  if (f == nullptr) return state.SkipWithError("no bundled model (data/models/default.h5)");
  const NodeIndex index(f->file.model.config());
  const MaskUnits units = BuildMaskUnits(index, /*tie_qk=*/false);
  // The 128 train pairs in steps of state.range(0) pairs: 16 as the quickstart's
  // preset (8 steps), 64 (2 steps).
  MaskEpochs(state, f->file.model, index, units, f->means, f->task.train,
             static_cast<int>(state.range(0)));
}
BENCHMARK(BM_QuoteMaskSteps)->Arg(16)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(4);

// One discretization point on the validation prompts, half the nodes ablated,
// state.range(0) prompts per forward pass.
void BM_QuoteEvaluation(benchmark::State& state) {
  SetThreads();
  QuoteFixture* f = QuoteFixture::Get();
  if (f == nullptr) return state.SkipWithError("no bundled model (data/models/default.h5)");
  const NodeIndex index(f->file.model.config());
  AblationEvaluator eval(f->file.model, index, f->means, Ablation::kMean, f->task.validation,
                         static_cast<int>(state.range(0)));
  torch::Tensor keep = (torch::rand({index.total()}, at::detail::createCPUGenerator(3)) < 0.5)
                           .to(torch::kFloat32);
  for (auto _ : state) benchmark::DoNotOptimize(eval.Score(keep).loss);
  state.counters["prompts/s"] = benchmark::Counter(
      static_cast<double>(f->task.validation.size()) * state.iterations(),
      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_QuoteEvaluation)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5)
    ->Arg(8)->Arg(16)->Arg(32)->Arg(64)->Arg(256);

// AblationEvaluator::LogitDiffsMany on the validation prompts with M =
// state.range(0) stacked kept-node sets, per set (counter sets/s). range(1) = 0:
// independent random halves of the nodes (discretization-shaped: the sets
// differ at layer 0); 1: one-node removals from a fixed 60-node circuit, the
// removed nodes spread over the layers (refinement- and importance-shaped:
// each set shares the layers below its removed node with the others).
void BM_QuoteLogitDiffsMany(benchmark::State& state) {
  SetThreads();
  QuoteFixture* f = QuoteFixture::Get();
  if (f == nullptr) return state.SkipWithError("no bundled model (data/models/default.h5)");
  const NodeIndex index(f->file.model.config());
  AblationEvaluator eval(f->file.model, index, f->means, Ablation::kMean, f->task.validation);
  const int64_t M = state.range(0), N = index.total();
  auto gen = at::detail::createCPUGenerator(4);
  torch::Tensor keeps;
  if (state.range(1) == 0) {
    keeps = (torch::rand({M, N}, gen) < 0.5).to(torch::kFloat32);
  } else {
    const torch::Tensor circuit = torch::randperm(N, gen, torch::kInt64).slice(0, 0, 60);
    keeps = torch::zeros({M, N}, torch::kFloat32);
    keeps.index_fill_(1, circuit, 1.0);
    for (int64_t m = 0; m < M; ++m) keeps[m][circuit[m % 60]] = 0.0;
  }
  for (auto _ : state) benchmark::DoNotOptimize(eval.LogitDiffsMany(keeps));
  state.counters["sets/s"] = benchmark::Counter(static_cast<double>(M) * state.iterations(),
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_QuoteLogitDiffsMany)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2)
    ->ArgsProduct({{1, 8, 32}, {0, 1}});

// Edges of a 200-node circuit.
void BM_Edges(benchmark::State& state) {
  Fixture f(8);
  std::vector<Node> nodes;
  for (int64_t i = 0; i < f.index.total(); i += f.index.total() / 200) nodes.push_back(f.index.At(i));
  for (auto _ : state) benchmark::DoNotOptimize(CircuitEdges(f.model, nodes).size());
}
BENCHMARK(BM_Edges)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace circuit::prune

BENCHMARK_MAIN();
