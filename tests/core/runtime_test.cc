// Auto threads (circuit/core/runtime.h): which cores other processes keep busy.
#include "circuit/core/runtime.h"

#include <sched.h>
#include <sys/resource.h>

#include <chrono>

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

}  // namespace
}  // namespace circuit
