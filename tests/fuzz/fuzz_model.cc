// Fuzz target: a model checkpoint (model.h5) through LoadModel: config, every
// weight, the stored tokenizer and the training provenance.
#include "circuit/core/checkpoint.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = circuit::fuzz::WriteInput(data, size, ".model.h5");
  (void)circuit::LoadModel(path, torch::kCPU);
  return 0;
}
