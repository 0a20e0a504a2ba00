// One OpenMP team over independent items (no torch here; ParallelFor in
// runtime.h adds torch's thread-local state).
#ifndef CIRCUIT_UTIL_PARALLEL_H_
#define CIRCUIT_UTIL_PARALLEL_H_

#include <cstdint>
#include <functional>

namespace circuit::internal {

// fn(i) for every i in [0, n) as OpenMP tasks of a team of `threads` threads;
// called inside a team (from an item of an outer call), as tasks of that team
// (`threads` is then not read); in order on the calling thread when n <= 1 or,
// outside a team, threads <= 1. The first exception thrown is rethrown once
// every started call has returned; items not yet started are then skipped.
void RunOnThreads(int64_t n, int threads, const std::function<void(int64_t)>& fn);

// Whether the calling thread runs inside an OpenMP team (a RunOnThreads item,
// or a torch operation's own parallel region).
bool InParallelTeam();

}  // namespace circuit::internal

#endif  // CIRCUIT_UTIL_PARALLEL_H_
