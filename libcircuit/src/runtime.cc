#include "circuit/core/runtime.h"

#include "circuit/core/trainer.h"  // KeepFreedMemory

#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <thread>

namespace circuit {

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
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
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

}  // namespace circuit
