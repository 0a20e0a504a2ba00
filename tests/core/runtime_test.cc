// Auto threads (circuit/core/runtime.h): which cores other processes keep busy.
#include "circuit/core/runtime.h"

#include <sched.h>
#include <sys/resource.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "gtest/gtest.h"

namespace circuit {
namespace {

CpuSample Sample(int cpus, unsigned long long busy, unsigned long long total,
                 unsigned long long self) {
  CpuSample s;
  s.cpus = cpus;
  s.busy = busy;
  s.total = total;
  s.self = self;
  return s;
}

TEST(RuntimeTest, OtherBusyCoresCountsOthersNotThisProcess) {
  // Two CPUs over 500 ticks each: half of all time busy is one core.
  EXPECT_DOUBLE_EQ(OtherBusyCores(Sample(2, 100, 1000, 0), Sample(2, 600, 2000, 0)), 1.0);
  // 400 of the 500 busy ticks were this process's own.
  EXPECT_DOUBLE_EQ(OtherBusyCores(Sample(2, 100, 1000, 50), Sample(2, 600, 2000, 450)), 0.2);
  // Own time above the machine's busy time (sampling skew) is no negative load.
  EXPECT_DOUBLE_EQ(OtherBusyCores(Sample(2, 100, 1000, 0), Sample(2, 200, 2000, 300)), 0.0);
  // No time passed, the CPU set changed, or /proc was unreadable: nothing known.
  EXPECT_EQ(OtherBusyCores(Sample(2, 100, 1000, 0), Sample(2, 100, 1000, 0)), 0.0);
  EXPECT_EQ(OtherBusyCores(Sample(2, 100, 1000, 0), Sample(4, 600, 2000, 0)), 0.0);
  EXPECT_EQ(OtherBusyCores(Sample(0, 0, 0, 0), Sample(0, 0, 0, 0)), 0.0);
}

TEST(RuntimeTest, SamplesTheAffinitySetAndThisProcess) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const CpuSample before = SampleCpus();
  EXPECT_EQ(before.cpus, CPU_COUNT(&set));
  const auto start = std::chrono::steady_clock::now();
  volatile double x = 0;
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(50)) x = x + 1;
  const CpuSample after = SampleCpus();
  EXPECT_GT(after.total, before.total);
  EXPECT_GE(after.busy, before.busy);
  // 50 ms of spinning is several 10 ms ticks, counted as busy unless niced.
  if (getpriority(PRIO_PROCESS, 0) <= 0) EXPECT_GT(after.self, 0u);
  const int idle = IdleCores(0.05);
  EXPECT_GE(idle, 1);
  EXPECT_LE(idle, before.cpus);
}

// Fixed threads: ParallelFor's team is torch's threads. Auto threads: every
// CPU of the affinity set, and one more when torch's operations leave busy
// cores to other processes.
TEST(RuntimeTest, ItemThreadsAreEveryCpuInAutoMode) {
  const int saved = torch::get_num_threads();
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  ConfigureRuntime(1);
  EXPECT_FALSE(AutoThreads());
  EXPECT_EQ(ItemThreads(), 1);
  ConfigureRuntime(0);
  if (AutoThreads()) {  // OMP_NUM_THREADS in the environment fixes the count
    const int threads = torch::get_num_threads(), cpus = CPU_COUNT(&set);
    EXPECT_EQ(ItemThreads(), threads < cpus ? cpus + 1 : threads);
  }
  ConfigureRuntime(saved);
}

// Every item once, on more than one thread when two are set, each item's torch
// operations single-threaded; the caller's grad mode inside; nested calls join
// the same team; the first exception comes back to the caller.
TEST(ParallelForTest, RunsEveryItemOnceWithTheCallersTorchState) {
  const int saved = torch::get_num_threads();
  torch::set_num_threads(2);
  std::vector<std::atomic<int>> seen(64);
  std::atomic<int> in_region{0}, grad_on{0};
  {
    torch::NoGradGuard no_grad;
    ParallelFor(64, [&](int64_t i) {
      ++seen[i];
      if (at::in_parallel_region()) ++in_region;
      if (torch::GradMode::is_enabled()) ++grad_on;
      // A product big enough that torch would split it: here it must not.
      const torch::Tensor a = torch::full({96, 96}, 1.0f);
      EXPECT_EQ(torch::mm(a, a)[0][0].item<float>(), 96.0f);
    });
  }
  for (int i = 0; i < 64; ++i) EXPECT_EQ(seen[i].load(), 1) << i;
  EXPECT_EQ(in_region.load(), 64);  // inside the team: torch's own loops run in order
  EXPECT_EQ(grad_on.load(), 0);

  std::vector<std::atomic<int>> nested(6 * 5);
  ParallelFor(6, [&](int64_t i) { ParallelFor(5, [&](int64_t j) { ++nested[i * 5 + j]; }); });
  for (int k = 0; k < 30; ++k) EXPECT_EQ(nested[k].load(), 1) << k;

  EXPECT_THROW(ParallelFor(8,
                           [](int64_t i) {
                             if (i == 3) throw std::runtime_error("item 3");
                           }),
               std::runtime_error);
  // One thread: in order, on the caller's thread.
  torch::set_num_threads(1);
  std::vector<int64_t> order;
  ParallelFor(4, [&](int64_t i) { order.push_back(i); });
  EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 2, 3}));
  torch::set_num_threads(saved);
}

}  // namespace
}  // namespace circuit
