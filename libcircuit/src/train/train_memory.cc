// KeepFreedMemory (declared in trainer.h) lives apart from the trainer so that
// benchmarks can use it without linking checkpoint I/O.
#include <malloc.h>

#include <limits>

#include "circuit/core/trainer.h"

namespace circuit {

void KeepFreedMemory() {
  mallopt(M_MMAP_MAX, 0);  // large blocks come from the heap, so they can be reused
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace circuit
