// Fuzz target: a means cache (model.means.h5) through LoadMeans, for the
// bundled model's shape (the default ModelConfig).
#include "circuit/core/config.h"
#include "circuit/prune/mean_cache.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = circuit::fuzz::WriteInput(data, size, ".means.h5");
  (void)circuit::prune::LoadMeans(path, circuit::ModelConfig{}.Layout(), torch::kCPU);
  return 0;
}
