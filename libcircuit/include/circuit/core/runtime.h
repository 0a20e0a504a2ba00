// Process-wide set-up for computing commands: torch threads, and a one-time
// warning when Debian's slow reference BLAS is the libblas.so.3 in use.
//
//   ConfigureRuntime(/*threads=*/0);   // 0: auto, the cores other work leaves idle
//   AdaptThreads();                    // at a stage boundary: measure again (auto only)
//
// Auto threads: on shared cores a parallel region waits for its slowest thread,
// so a thread that shares its core with another busy process slows every region
// (docs/performance.md, "Shared cores"). Auto mode counts the cores of this
// process's CPU set that other processes kept busy over a short window (time at
// a positive nice value does not count: such processes yield) and uses the rest,
// at least one. Results do not depend on the thread count (tests/core).
#ifndef CIRCUIT_CORE_RUNTIME_H_
#define CIRCUIT_CORE_RUNTIME_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace circuit {

// Seconds of steady-clock time since `start`, for stage timings.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Sets torch's intra-op threads (0 = auto: OMP_NUM_THREADS when set, otherwise
// IdleCores()), keeps freed memory in the process (KeepFreedMemory), and warns
// once on stderr when the reference BLAS is loaded (30x slower than OpenBLAS
// for these products).
void ConfigureRuntime(int threads);

// In auto mode, measures IdleCores() again and sets torch's threads to it;
// otherwise, or inside a ParallelFor call, nothing. Returns the threads in
// use. Takes `window` seconds.
int AdaptThreads(double window = 0.1);

// fn(i) for every i in [0, n), the calls spread over torch's threads with each
// call's own torch operations single-threaded (OpenMP tasks of one team). On
// two cores, independent items of similar size (prompt batches,
// re-extractions) run up to 1.6x faster this way than one after another with
// both threads inside every operation, whose small products and elementwise
// passes divide badly (docs/performance.md, "Items, not operations"). A
// ParallelFor inside an item adds its calls to the same team, so threads that
// finished their items help with a long one. Every call sees the caller's
// torch thread-local state (grad mode); fn must not depend on the order in
// which the calls end. They start in index order: put long items first. The
// first exception is rethrown after the started calls return.
// Results do not depend on the threads when each item's do not (tests/core).
// The team has ItemThreads() threads.
void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn);

// The threads of a ParallelFor team: torch's threads, except in auto mode,
// where it is every CPU of this process's CPU set, plus one when other
// processes keep some busy. Items are taken one at a time by whichever thread
// is free, so a thread that shares its core with another process takes fewer of
// them instead of holding the others up (docs/performance.md, "Shared cores");
// an operation split over threads would wait for that slow thread, so torch's
// own threads stay at the idle cores. Inside a ParallelFor item: torch's threads
// (a nested call joins the outer team).
int ItemThreads();

// Whether the last ConfigureRuntime chose the threads itself (auto mode).
bool AutoThreads();

// Time counters, in clock ticks, of the CPUs this process may run on
// (/proc/stat's per-CPU lines) and of this process (/proc/self/stat).
struct CpuSample {
  int cpus = 0;                 // CPUs in this process's affinity set
  unsigned long long busy = 0;  // user + system + irq + softirq + steal (not nice)
  unsigned long long total = 0; // busy + nice + idle + iowait
  unsigned long long self = 0;  // this process's user + system time, counted in busy
};

// Reads both; cpus == 0 when /proc cannot be read.
CpuSample SampleCpus();

// Cores that processes other than this one kept busy between two samples.
double OtherBusyCores(const CpuSample& before, const CpuSample& after);

// The CPUs of this process's affinity set minus OtherBusyCores over `window`
// seconds, rounded, at least 1 (all of them when /proc cannot be read).
int IdleCores(double window = 0.1);

// The path of the libblas.so.3 this process loaded, or "" when none is mapped.
std::string LoadedBlasPath();

}  // namespace circuit

#endif  // CIRCUIT_CORE_RUNTIME_H_
