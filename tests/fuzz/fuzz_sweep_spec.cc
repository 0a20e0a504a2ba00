// Fuzz target: a sweep spec (JSON) through ParseSweepSpec and, when it parses
// into a small sweep, the enumeration of its work units. (Specs up to the
// 10^6-unit limit are valid but take seconds to enumerate; the fuzzer skips
// those to keep its inputs fast.)
#include "circuit/sweep/spec.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<circuit::SweepSpec> spec =
      circuit::ParseSweepSpec(circuit::fuzz::AsString(data, size), "spec.json");
  if (!spec.ok()) return 0;
  size_t units = 1;
  for (size_t n : {spec->models.size(), spec->tasks.size(), spec->studies.size(),
                   spec->target_losses.size(), spec->ablations.size(), spec->penalties.size(),
                   spec->penalty_coefs.size(), spec->methods.size(), spec->seeds.size()}) {
    units *= n;  // at most 10^6: ParseSweepSpec bounds the product
  }
  if (units <= 4096) (void)circuit::EnumerateUnits(*spec);
  return 0;
}
