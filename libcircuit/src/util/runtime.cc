#include "circuit/core/runtime.h"

#include "circuit/core/trainer.h"  // KeepFreedMemory

#include <ATen/ThreadLocalState.h>
#include <torch/torch.h>

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "util/parallel.h"

namespace circuit {
namespace {

bool auto_threads = false;

int AllowedCpus(cpu_set_t* set) {
  CPU_ZERO(set);
  if (sched_getaffinity(0, sizeof(*set), set) != 0) return 0;
  return CPU_COUNT(set);
}

}  // namespace

CpuSample SampleCpus() {
  CpuSample s;
  cpu_set_t allowed;
  if (AllowedCpus(&allowed) == 0) return s;
  std::ifstream stat("/proc/stat");
  std::string line;
  int cpus = 0;
  while (std::getline(stat, line)) {
    // "cpuN user nice system idle iowait irq softirq steal ..."; the summed
    // "cpu " line is skipped, and so is every CPU outside the affinity set.
    if (line.rfind("cpu", 0) != 0 || line.size() < 4 || line[3] == ' ') continue;
    std::istringstream fields(line.substr(3));
    int id = -1;
    unsigned long long v[8] = {};  // user nice system idle iowait irq softirq steal
    if (!(fields >> id) || id < 0 || id >= CPU_SETSIZE || !CPU_ISSET(id, &allowed)) continue;
    for (unsigned long long& x : v) fields >> x;
    s.busy += v[0] + v[2] + v[5] + v[6] + v[7];
    for (unsigned long long x : v) s.total += x;
    ++cpus;
  }
  if (cpus == 0) return s;
  s.cpus = cpus;
  // /proc/self/stat: "pid (comm) state ..."; utime and stime are the 12th and
  // 13th fields after the closing parenthesis (comm may hold spaces).
  std::ifstream self("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(self)), std::istreambuf_iterator<char>());
  if (size_t paren = text.rfind(')'); paren != std::string::npos) {
    std::istringstream fields(text.substr(paren + 1));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 1; i <= 13 && fields >> field; ++i) {
      if (i == 12) (void)absl::SimpleAtoi(field, &utime);
      if (i == 13) (void)absl::SimpleAtoi(field, &stime);
    }
    // A process at a positive nice value is counted under nice, not busy.
    if (getpriority(PRIO_PROCESS, 0) <= 0) s.self = utime + stime;
  }
  return s;
}

double OtherBusyCores(const CpuSample& before, const CpuSample& after) {
  if (after.cpus == 0 || after.cpus != before.cpus || after.total <= before.total) return 0.0;
  const double busy = static_cast<double>(after.busy - std::min(after.busy, before.busy));
  const double self = static_cast<double>(after.self - std::min(after.self, before.self));
  const double total = static_cast<double>(after.total - before.total);
  return std::clamp((busy - self) / total, 0.0, 1.0) * after.cpus;
}

int IdleCores(double window) {
  const CpuSample before = SampleCpus();
  if (before.cpus == 0) return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::this_thread::sleep_for(std::chrono::duration<double>(window));
  const CpuSample after = SampleCpus();
  const long busy = std::lround(OtherBusyCores(before, after));
  return static_cast<int>(std::clamp<long>(before.cpus - busy, 1, before.cpus));
}

std::string LoadedBlasPath() {
  // /proc/self/maps lists every mapped library; Debian's alternatives put the
  // reference BLAS under .../blas/ and OpenBLAS under .../openblas-*/.
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const size_t slash = line.find('/');
    if (slash != std::string::npos && line.find("libblas.so.3", slash) != std::string::npos) {
      return line.substr(slash);
    }
  }
  return "";
}

void ConfigureRuntime(int threads) {
  auto_threads = false;
  if (threads <= 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    if (env == nullptr || !absl::SimpleAtoi(env, &threads) || threads <= 0) {
      auto_threads = true;
      threads = IdleCores();
    }
  }
  torch::set_num_threads(threads);
  KeepFreedMemory();  // large activations are reused, not faulted in again every pass
  static bool warned = false;
  const std::string blas = LoadedBlasPath();
  if (!warned && blas.find("/blas/") != std::string::npos) {
    warned = true;
    std::cerr << "circuit: warning: the reference BLAS (" << blas
              << ") is in use, about 30x slower; run scripts/bootstrap or "
                 "`apt-get install libopenblas0-openmp`\n";
  }
}

int ItemThreads() {
  const int threads = torch::get_num_threads();
  // Inside a team (an item of an outer call) a ParallelFor joins that team.
  if (!auto_threads || internal::InParallelTeam()) return threads;
  cpu_set_t allowed;
  const int cpus = AllowedCpus(&allowed);
  // One more thread than CPUs when other work keeps some busy: two of ours and
  // one busy process on two cores leave one of ours sharing a core, and which
  // one the scheduler picks it keeps (a third thread gets us 1.5 cores however
  // they are placed, instead of 1 to 1.5).
  return std::max(threads, cpus + (threads < cpus ? 1 : 0));
}

void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn) {
  const at::ThreadLocalState state;  // grad mode and the rest, for the team's threads
  internal::RunOnThreads(n, ItemThreads(), [&](int64_t i) {
    const at::ThreadLocalStateGuard guard(state);
    fn(i);
  });
}

int AdaptThreads(double window) {
  if (auto_threads && !internal::InParallelTeam()) {
    const int idle = IdleCores(window);
    if (idle != torch::get_num_threads()) torch::set_num_threads(idle);
  }
  return torch::get_num_threads();
}

bool AutoThreads() { return auto_threads; }

}  // namespace circuit
