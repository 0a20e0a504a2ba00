// KeepFreedMemory (declared in trainer.h) lives apart from the trainer so that
// benchmarks can use it without linking checkpoint I/O.
#include <malloc.h>

#include <limits>

#include "circuit/core/trainer.h"

namespace circuit {

void KeepFreedMemory() {
  mallopt(M_MMAP_MAX, 0);  // large blocks come from the heap, so they can be reused
  // One arena for every thread: a ParallelFor item's activations otherwise go to
  // its thread's own arena, whose heaps glibc gives back to the system when they
  // empty, and the next item faults them in again (an extraction with prompt
  // batches on two threads: 9x the page faults, 2.6x the time).
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace circuit
