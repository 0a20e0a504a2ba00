// Fuzz target: a release beeg_config.json through ParseReleaseConfig and, when
// it parses, back out through ReleaseConfigJson (what export-torch writes).
#include "circuit/core/release_config.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<circuit::ReleaseConfig> rc =
      circuit::ParseReleaseConfig(circuit::fuzz::AsString(data, size));
  if (rc.ok()) (void)circuit::ReleaseConfigJson(rc->config);
  return 0;
}
