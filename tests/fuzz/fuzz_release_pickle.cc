// Fuzz target: the data.pkl of a release final_model.pt (a torch.save()d state
// dict) through the project's own strict unpickler.
#include "fuzz_input.h"
#include "io/torch_pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)circuit::internal::ParseStateDictPickle(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
