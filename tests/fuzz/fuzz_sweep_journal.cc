// Fuzz target: a sweep's results journal (results.h5.journal, one JSON row per
// line) through ResultsFile::Read, with no results.h5 beside it.
#include <cstdio>

#include "circuit/sweep/results.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string journal = circuit::fuzz::WriteInput(data, size, ".results.h5.journal");
  const std::string results = journal.substr(0, journal.size() - std::string(".journal").size());
  std::remove(results.c_str());
  (void)circuit::ResultsFile::Read(results);
  return 0;
}
