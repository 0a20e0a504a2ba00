#include "progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <set>

#include "circuit/core/runtime.h"

namespace circuit::cli {

prune::ProgressFn StageProgress(const std::string& command) {
  const auto start = std::chrono::steady_clock::now();
  const bool terminal = isatty(fileno(stderr));
  // Stages already announced: parallel jobs (the audit's re-extractions)
  // report in turn, and each stage gets its one line.
  auto seen = std::make_shared<std::set<std::string>>();
  return [command, start, seen, terminal](const std::string& stage, double fraction) {
    const bool new_stage = seen->insert(stage).second;
    int threads = 0;
    if (new_stage) threads = AdaptThreads();  // auto threads: other work may have started or ended
    if (terminal) {
      const int width = 30, filled = static_cast<int>(fraction * width + 0.5);
      std::fprintf(stderr, "\r  %-24s [%s%s] %3.0f%%", stage.c_str(),
                   std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                   100.0 * fraction);
    } else if (new_stage) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "circuit %s: [%7.1f s] %s", command.c_str(), seconds, stage.c_str());
      if (AutoThreads()) {
        std::fprintf(stderr, " (%d thread%s", threads, threads == 1 ? "" : "s");
        const int items = ItemThreads();
        if (items > threads) std::fprintf(stderr, ", %d for batches", items);
        std::fputc(')', stderr);
      }
      std::fputc('\n', stderr);
    }
    std::fflush(stderr);
  };
}

void ClearProgress() {
  if (isatty(fileno(stderr))) std::fprintf(stderr, "\r%70s\r", "");
}

}  // namespace circuit::cli
