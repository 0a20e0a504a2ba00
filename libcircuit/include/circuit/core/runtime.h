// Process-wide set-up for computing commands: torch threads, and a one-time
// warning when Debian's slow reference BLAS is the libblas.so.3 in use.
//
//   ConfigureRuntime(/*threads=*/0);   // 0: all cores
#ifndef CIRCUIT_CORE_RUNTIME_H_
#define CIRCUIT_CORE_RUNTIME_H_

#include <string>

namespace circuit {

// Sets torch's intra-op threads (0 = all cores), keeps freed memory in the
// process (KeepFreedMemory), and warns once on stderr when
// the reference BLAS is loaded (30x slower than OpenBLAS for these products).
void ConfigureRuntime(int threads);

// The path of the libblas.so.3 this process loaded, or "" when none is mapped.
std::string LoadedBlasPath();

}  // namespace circuit

#endif  // CIRCUIT_CORE_RUNTIME_H_
