// Paper-size models (csp_yolo2's shape: 8 layers, d_model 2048, 128 heads x 16,
// d_mlp 8192, d_pos_emb 32, vocab 2048, sink, bigram, afrac 1/4; ~0.42B
// parameters, ~1.7 GB float32): time and peak memory of each step a user takes.
// One stage per process, so each peak RSS is that stage's own:
//
//   bench_paper_size create big.h5 --tokenizer data/tokenizer   # Model::Create + SaveModel
//   bench_paper_size load big.h5                                # LoadModel + forward (1, 64)
//   bench_paper_size export big.h5 big_release/                 # LoadModel + ExportReleaseModel
//   bench_paper_size import big_release/                        # ImportReleaseModel + forward
//
// bench/paper_size.sh runs all four. Weights are made weight-sparse at the
// paper's densities (1/1024 for matrices, 1/128 for embeddings) unless --dense.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "circuit/core/checkpoint.h"
#include "circuit/core/release_io.h"
#include "circuit/core/runtime.h"
#include "circuit/core/trainer.h"

namespace circuit {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double PeakRssGb() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1048576.0;  // ru_maxrss is in KiB on Linux
}

double CurrentRssGb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 30);
}

ModelConfig PaperConfig() {
  ModelConfig c;
  c.n_layer = 8;
  c.d_model = 2048;
  c.n_head = 128;
  c.d_head = 16;
  c.d_mlp = 8192;
  c.vocab_size = 2048;
  c.n_ctx = 1024;  // the release's block_size
  c.d_pos_emb = 32;
  c.afrac = 0.25;
  c.attn_sink = true;
  c.bigram_table = true;
  return c;
}

// Keeps each entry of the weight matrices with the paper's probability (§1.5).
void Sparsify(Model& model) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  for (NamedTensor& p : model.mutable_parameters()) {
    if (p.tensor.dim() != 2 || p.name == "bigram_table") continue;
    const bool embed = p.name == "transformer.wte.weight" || p.name == "lm_head.weight" ||
                       p.name == "transformer.wpe.weight";
    p.tensor.mul_(torch::rand(p.tensor.sizes()).lt(embed ? 1.0 / 128 : 1.0 / 1024));
  }
}

// Fastest and median of `reps` timed forward passes on (1, 64) tokens, after one
// warm-up. On a shared machine the fastest is the uncontended estimate.
std::pair<double, double> ForwardMs(const Model& model, int reps) {
  torch::NoGradGuard no_grad;
  torch::Tensor tokens = torch::randint(0, model.config().vocab_size, {1, 64}, torch::kInt64);
  model.Forward(tokens);
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    torch::Tensor logits = model.Forward(tokens);  // (1, 64, vocab)
    (void)logits.sum().item<float>();
    ms.push_back(1e3 * Seconds(t0));
  }
  std::sort(ms.begin(), ms.end());
  return {ms.front(), ms[ms.size() / 2]};
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "bench_paper_size: %s\n", std::string(s.message()).c_str());
  return 1;
}

double FileGb(const std::string& path) {
  return std::filesystem::file_size(path) / double(1 << 30);
}

int Run(int argc, char** argv) {
  const char* threads_env = std::getenv("CIRCUIT_THREADS");
  ConfigureRuntime(threads_env ? std::atoi(threads_env) : 0);
  KeepFreedMemory();  // as the trainer: no page faults on every large activation
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: bench_paper_size create|load|export|import PATH [DIR] "
                 "[--tokenizer DIR] [--dense]\n");
    return 2;
  }
  const std::string stage = argv[1], path = argv[2];
  std::string tokenizer_dir = "data/tokenizer";
  bool dense = false;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--tokenizer") == 0 && i + 1 < argc) tokenizer_dir = argv[++i];
    if (std::strcmp(argv[i], "--dense") == 0) dense = true;
  }
  auto t0 = Clock::now();
  if (stage == "create") {
    absl::StatusOr<Model> model = Model::Create(PaperConfig(), /*seed=*/0);
    if (!model.ok()) return Fail(model.status());
    if (!dense) Sparsify(*model);
    const double create_s = Seconds(t0);
    absl::StatusOr<Tokenizer> tok =
        Tokenizer::FromFiles(tokenizer_dir + "/encoder.json", tokenizer_dir + "/vocab.bpe");
    if (!tok.ok()) return Fail(tok.status());
    t0 = Clock::now();
    if (absl::Status s = SaveModel(path, *model, *tok, TrainingInfo()); !s.ok()) return Fail(s);
    std::printf(
        "create  %ld parameters, %ld nodes: Model::Create %.1f s; SaveModel %.1f s, "
        "%.2f GB file; peak RSS %.2f GB\n",
        static_cast<long>(model->NumParameters()), static_cast<long>(PaperConfig().TotalNodes()),
        create_s, Seconds(t0), FileGb(path), PeakRssGb());
  } else if (stage == "load" || stage == "export") {
    absl::StatusOr<ModelFile> file = LoadModel(path);
    if (!file.ok()) return Fail(file.status());
    std::printf("load    LoadModel %.1f s; RSS after %.2f GB, peak %.2f GB\n", Seconds(t0),
                CurrentRssGb(), PeakRssGb());
    if (stage == "load") {
      const auto [fastest, median] = ForwardMs(file->model, /*reps=*/7);
      std::printf(
          "forward (1, 64) tokens: %.0f ms fastest, %.0f ms median of 7 (%d threads); "
          "peak RSS %.2f GB\n",
          fastest, median, torch::get_num_threads(), PeakRssGb());
    } else {
      t0 = Clock::now();
      if (absl::Status s = ExportReleaseModel(file->model, file->tokenizer, argv[3]); !s.ok()) {
        return Fail(s);
      }
      std::printf("export  ExportReleaseModel %.1f s, %.2f GB final_model.pt; peak RSS %.2f GB\n",
                  Seconds(t0), FileGb(std::string(argv[3]) + "/final_model.pt"), PeakRssGb());
    }
  } else if (stage == "import") {
    absl::StatusOr<ReleaseModel> rm =
        ImportReleaseModel(path + "/beeg_config.json", path + "/final_model.pt", path);
    if (!rm.ok()) return Fail(rm.status());
    std::printf("import  ImportReleaseModel %.1f s; RSS after %.2f GB, peak %.2f GB\n", Seconds(t0),
                CurrentRssGb(), PeakRssGb());
    const auto [fastest, median] = ForwardMs(rm->model, /*reps=*/3);
    std::printf("forward (1, 64) tokens: %.0f ms fastest, %.0f ms median of 3\n", fastest, median);
  } else {
    std::fprintf(stderr, "bench_paper_size: unknown stage '%s'\n", stage.c_str());
    return 2;
  }
  return 0;
}

}  // namespace
}  // namespace circuit

int main(int argc, char** argv) { return circuit::Run(argc, argv); }
