// circuit generate: sample a completion — a newcomer's sanity check of a model.
#include <iostream>

#include "args.h"
#include "circuit/core/checkpoint.h"
#include "circuit/core/runtime.h"
#include "command.h"

namespace circuit::cli {
namespace {

int RunGenerate(int argc, char** argv) {
  ArgParser parser("circuit generate [options]",
                   "Sample a continuation of a prompt from a model (top-k sampling; "
                   "--temperature 0 for greedy).");
  CommonOptions common;
  std::string prompt = "def main():\n";
  int tokens = 64, top_k = 20;
  double temperature = 0.8;
  AddCommonOptions(parser, &common);
  parser.Option("prompt", "text to continue", &prompt);
  parser.Option("tokens", "tokens to generate", &tokens);
  parser.Option("temperature", "sampling temperature (0: greedy)", &temperature);
  parser.Option("top-k", "sample among the k most likely tokens", &top_k);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  if (tokens < 0 || top_k < 1 || temperature < 0) {
    return Fail("generate", "--tokens, --top-k and --temperature must be positive", kExitUsage);
  }
  ConfigureRuntime(common.threads);
  absl::StatusOr<torch::Device> device = ParseDevice(common.device);
  if (!device.ok()) return Fail("generate", std::string(device.status().message()), kExitUsage);
  absl::StatusOr<ModelFile> file = LoadModel(common.model, *device);
  if (!file.ok()) return Fail("generate", std::string(file.status().message()), kExitUsage);

  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(common.seed);
  std::vector<int32_t> ids = file->tokenizer.Encode(prompt);
  if (ids.empty()) ids.push_back(file->tokenizer.eot_id());
  std::cout << prompt << std::flush;
  const int n_ctx = file->model.config().n_ctx;
  for (int i = 0; i < tokens; ++i) {
    const size_t start = ids.size() > size_t(n_ctx) ? ids.size() - n_ctx : 0;
    std::vector<int64_t> window(ids.begin() + start, ids.end());
    torch::Tensor input = torch::tensor(window, torch::kInt64).view({1, -1}).to(*device);
    torch::Tensor logits =
        file->model.ForwardAt(input, torch::tensor({int64_t(window.size() - 1)}, torch::kInt64).to(*device))[0]
            .to(torch::kCPU);  // (V)
    int32_t next;
    if (temperature == 0) {
      next = logits.argmax().item<int32_t>();
    } else {
      auto [values, indices] = (logits / temperature).topk(std::min<int64_t>(top_k, logits.size(0)));
      torch::Tensor choice = torch::multinomial(torch::softmax(values, 0), 1, false, gen);
      next = indices[choice.item<int64_t>()].item<int32_t>();
    }
    if (next == file->tokenizer.eot_id()) break;
    ids.push_back(next);
    std::cout << file->tokenizer.Decode({next}) << std::flush;
  }
  std::cout << "\n";
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(generate, "generate", "sample a completion from a model", RunGenerate);

}  // namespace circuit::cli
