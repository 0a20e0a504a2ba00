// RunOnThreads: OpenMP tasks over independent items, exceptions carried out.
#include "util/parallel.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>

namespace circuit::internal {

bool InParallelTeam() { return omp_in_parallel() != 0; }

void RunOnThreads(int64_t n, int threads, const std::function<void(int64_t)>& fn) {
  const bool nested = InParallelTeam();
  if (n <= 1 || (threads <= 1 && !nested)) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mu;
  std::atomic<bool> failed{false};
  std::atomic<int64_t> next{0};
  // Each task runs the next item not yet started: items start in index order,
  // whichever task the runtime picks first (callers put long items first).
  auto item = [&](int64_t) {
    const int64_t i = next.fetch_add(1);
    if (failed.load()) return;
    try {
      fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      failed.store(true);
    }
  };
  // One task per item. Inside a team (an item of an outer call) the tasks join
  // the team's pool: a thread that finished its own items, or waits for them,
  // takes them, so one long outer item does not leave the other threads idle.
  if (nested) {
#pragma omp taskloop grainsize(1) default(shared)
    for (int64_t i = 0; i < n; ++i) item(i);
  } else {
    const int team = static_cast<int>(std::min<int64_t>(n, threads));
#pragma omp parallel num_threads(team) default(shared)
#pragma omp single
#pragma omp taskloop grainsize(1) default(shared)
    for (int64_t i = 0; i < n; ++i) item(i);
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace circuit::internal
