// Fuzz target: a sweep's results file (results.h5) through ResultsFile::Read.
#include "circuit/sweep/results.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = circuit::fuzz::WriteInput(data, size, ".results.h5");
  (void)circuit::ResultsFile::Read(path);
  return 0;
}
