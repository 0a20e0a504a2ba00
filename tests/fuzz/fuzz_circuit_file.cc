// Fuzz target: a circuit file (circuit.h5) through ReadCircuitFile and, when it
// reads, through the JSON description that `circuit inspect --json` prints.
#include "circuit/export/circuit_file.h"
#include "circuit/export/json.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = circuit::fuzz::WriteInput(data, size, ".circuit.h5");
  absl::StatusOr<circuit::Circuit> c = circuit::ReadCircuitFile(path);
  if (c.ok()) (void)circuit::CircuitToJson(*c, /*graph=*/nullptr);
  return 0;
}
