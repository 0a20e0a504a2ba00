// Training throughput of the bundled configuration (4 layers, d_model 128,
// 8 heads x 16, d_mlp 512, n_ctx 256, vocab 2048, afrac 0.25, sink, bigram) and
// where a step's time goes: forward, backward, optimiser (gradient
// normalisation + Adam + weight decay) and the top-k projection.
//
//   build/bin/bench_train --benchmark_counters_tabular=true
//   CIRCUIT_THREADS=2 build/bin/bench_train --benchmark_filter=Step
//
// Counters: tokens/s = batch * n_ctx predicted tokens per iteration.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "circuit/core/model.h"
#include "circuit/core/optimizer.h"
#include "circuit/core/runtime.h"
#include "circuit/core/schedule.h"
#include "circuit/core/sparsity.h"
#include "circuit/core/trainer.h"

namespace circuit {
namespace {

// One model + optimiser set up as the trainer does, sparse at the final density
// (the steady state after annealing) unless dense.
struct Fixture {
  Fixture(int batch, bool dense) : model(*Model::Create(ModelConfig(), /*seed=*/1)) {
    for (NamedTensor& p : model.mutable_parameters()) {
      if (p.name == "final_logits_bias") continue;
      p.tensor.requires_grad_(true);
      params.push_back(p.tensor);
      if (p.tensor.dim() == 2 && p.name != "bigram_table") decayed.push_back(p.tensor);
    }
    adam = std::make_unique<Adam>(params);
    if (!dense) {
      for (const SparseParameter& sp : SparsityPlan(model.config(), SparsityOptions())) {
        sparse.push_back({sp, model.Parameter(sp.name)});
      }
      Project();
    }
    torch::manual_seed(0);
    tokens = torch::randint(0, model.config().vocab_size, {batch, model.config().n_ctx + 1},
                            torch::kInt64);
    // Warm up: the first steps grow the heap (page faults), later ones reuse it.
    for (int i = 0; i < 2; ++i) ForwardBackward();
  }

  void Project() {
    for (const auto& [sp, w] : sparse) {
      const double f = sp.group == SparsityGroup::kHidden ? schedule.density : schedule.embed_density;
      ProjectTopK(w, KeepCount(w.numel(), f), sp.axis, sp.min_per_channel);
    }
  }
  void ForwardBackward() {
    for (torch::Tensor& p : params) p.mutable_grad() = torch::Tensor();
    model.Loss(tokens).backward();
  }
  void Optimize() {
    NormalizeGradients(params);
    adam->Step(1e-3);
    DecayWeights(decayed, 1e-4);
  }

  Model model;
  TrainSchedule schedule;  // density 1/16, embed 1/4
  std::vector<torch::Tensor> params, decayed;
  std::vector<std::pair<SparseParameter, torch::Tensor>> sparse;
  std::unique_ptr<Adam> adam;
  torch::Tensor tokens;  // (batch, n_ctx + 1)
};

void SetUp() {
  const char* threads = std::getenv("CIRCUIT_THREADS");
  ConfigureRuntime(threads != nullptr ? std::atoi(threads) : 0);
  KeepFreedMemory();  // as Train() does
}

void Tokens(benchmark::State& state, int batch) {
  state.counters["tokens/s"] = benchmark::Counter(
      static_cast<double>(batch) * ModelConfig().n_ctx, benchmark::Counter::kIsIterationInvariantRate);
}

// A whole optimiser step: args (batch, dense).
void BM_TrainStep(benchmark::State& state) {
  SetUp();
  const int batch = static_cast<int>(state.range(0));
  const bool dense = state.range(1) != 0;
  Fixture f(batch, dense);
  for (auto _ : state) {
    f.ForwardBackward();
    f.Optimize();
    if (!dense) f.Project();
  }
  Tokens(state, batch);
}
BENCHMARK(BM_TrainStep)->ArgNames({"batch", "dense"})
    ->Args({8, 0})->Args({16, 0})->Args({32, 0})->Args({32, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

void BM_Forward(benchmark::State& state) {
  SetUp();
  const int batch = static_cast<int>(state.range(0));
  Fixture f(batch, /*dense=*/false);
  for (auto _ : state) benchmark::DoNotOptimize(f.model.Loss(f.tokens));
  Tokens(state, batch);
}
BENCHMARK(BM_Forward)->ArgName("batch")->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ForwardBackward(benchmark::State& state) {
  SetUp();
  const int batch = static_cast<int>(state.range(0));
  Fixture f(batch, /*dense=*/false);
  for (auto _ : state) f.ForwardBackward();
  Tokens(state, batch);
}
BENCHMARK(BM_ForwardBackward)->ArgName("batch")->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();

// Gradient normalisation + Adam + weight decay over all 5.3M parameters.
void BM_Optimizer(benchmark::State& state) {
  SetUp();
  Fixture f(/*batch=*/1, /*dense=*/false);
  f.ForwardBackward();
  for (auto _ : state) f.Optimize();
}
BENCHMARK(BM_Optimizer)->Unit(benchmark::kMillisecond)->UseRealTime();

// The top-k projection of all 19 sparse tensors (once per step).
void BM_Projection(benchmark::State& state) {
  SetUp();
  Fixture f(/*batch=*/1, /*dense=*/true);
  for (const SparseParameter& sp : SparsityPlan(f.model.config(), SparsityOptions())) {
    f.sparse.push_back({sp, f.model.Parameter(sp.name)});
  }
  std::vector<torch::Tensor> dense_copy;
  for (const auto& [sp, w] : f.sparse) dense_copy.push_back(w.detach().clone());
  for (auto _ : state) {
    state.PauseTiming();
    {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < f.sparse.size(); ++i) f.sparse[i].second.copy_(dense_copy[i]);
    }
    state.ResumeTiming();
    f.Project();
  }
}
BENCHMARK(BM_Projection)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace circuit

BENCHMARK_MAIN();
