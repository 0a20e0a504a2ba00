// Sweep results file: time to record N finished units one by one, as a sweep
// does (ResultsFile::Append after each unit, then Close), and to read them back.
//
//   build/bin/bench_sweep_results [N...]     # default: 1000 10000
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "circuit/sweep/results.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

circuit::UnitResult Row(int i) {
  circuit::UnitResult r;
  r.unit.id = absl::StrCat("single_double_quote-default-", 1000000000000000 + i);
  r.unit.study = "targets";
  r.unit.model = "data/models/default.h5";
  r.unit.task = "single_double_quote";
  r.unit.ablation = "mean";
  r.unit.penalty = "linear";
  r.unit.method = "masks";
  r.unit.seed = static_cast<uint64_t>(i);
  r.unit.model_digest = "558fe6ebbb7748ff";
  r.ok = true;
  r.circuit_file = absl::StrCat("units/", r.unit.id, ".h5");
  r.n_nodes = 27 + i % 50;
  r.n_edges = 30 + i % 70;
  r.total_nodes = 5760;
  r.full_model_loss = 0.08;
  r.circuit_loss = 0.14;
  r.seconds = 120.0;
  r.met_target = true;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atoi(argv[i]));
  if (sizes.empty()) sizes = {1000, 10000};
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("bench_sweep_results.", getpid());
  std::filesystem::create_directories(dir);
  std::printf("%8s %12s %14s %10s %12s\n", "units", "append s", "ms/unit (last)", "read s",
              "file bytes");
  for (int n : sizes) {
    const std::string path = (dir / absl::StrCat("results-", n, ".h5")).string();
    absl::StatusOr<circuit::ResultsFile> file = circuit::ResultsFile::Open(path, "bench", "{}");
    if (!file.ok()) {
      std::fprintf(stderr, "%s\n", file.status().ToString().c_str());
      return 1;
    }
    const auto start = std::chrono::steady_clock::now();
    double last = 0;
    for (int i = 0; i < n; ++i) {
      const auto t = std::chrono::steady_clock::now();
      if (absl::Status s = file->Append(Row(i)); !s.ok()) {
        std::fprintf(stderr, "%s\n", s.ToString().c_str());
        return 1;
      }
      if (i == n - 1) last = Seconds(t);
    }
    if (absl::Status s = file->Close(); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
    const double append = Seconds(start);
    const auto read_start = std::chrono::steady_clock::now();
    absl::StatusOr<std::vector<circuit::UnitResult>> rows = circuit::ResultsFile::Read(path);
    const double read = Seconds(read_start);
    if (!rows.ok() || rows->size() != static_cast<size_t>(n)) {
      std::fprintf(stderr, "read back %s\n", rows.ok() ? "a wrong row count" : rows.status().ToString().c_str());
      return 1;
    }
    uintmax_t bytes = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) bytes += e.file_size();
    std::printf("%8d %12.2f %14.3f %10.3f %12ju\n", n, append, last * 1e3, read, bytes);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
