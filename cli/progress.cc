#include "progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

namespace circuit::cli {

prune::ProgressFn StageProgress(const std::string& command) {
  const auto start = std::chrono::steady_clock::now();
  if (isatty(fileno(stderr))) {
    return [](const std::string& stage, double fraction) {
      const int width = 30, filled = static_cast<int>(fraction * width + 0.5);
      std::fprintf(stderr, "\r  %-24s [%s%s] %3.0f%%", stage.c_str(),
                   std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                   100.0 * fraction);
      std::fflush(stderr);
    };
  }
  auto last = std::make_shared<std::string>();
  return [command, start, last](const std::string& stage, double) {
    if (stage == *last) return;
    *last = stage;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "circuit %s: [%7.1f s] %s\n", command.c_str(), seconds, stage.c_str());
    std::fflush(stderr);
  };
}

void ClearProgress() {
  if (isatty(fileno(stderr))) std::fprintf(stderr, "\r%70s\r", "");
}

}  // namespace circuit::cli
