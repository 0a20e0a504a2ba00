// Run a sweep spec through the library — `circuit sweep` without its command
// line (no MPI launcher needed: without mpirun the units run in turn here).
// Build it against an installed circuit (see examples/CMakeLists.txt).
//
//   run_sweep data/sweeps/example.json out/study
#include <mpi.h>

#include <iostream>

#include "circuit/core/runtime.h"
#include "circuit/sweep/pruning_runner.h"
#include "circuit/sweep/spec.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: run_sweep SPEC.json OUT_DIR\n";
    return 2;
  }
  circuit::MpiSession mpi(&argc, &argv);  // MPI only under mpirun/srun
  circuit::ConfigureRuntime(/*threads=*/0);
  absl::StatusOr<circuit::SweepSpec> spec = circuit::LoadSweepSpec(argv[1]);
  if (!spec.ok()) return std::cerr << spec.status().message() << "\n", 2;
  circuit::SweepOptions options;
  options.out_dir = argv[2];
  absl::StatusOr<circuit::SweepSummary> s =
      circuit::RunPruningSweep(*std::move(spec), options, c10::Device(c10::kCPU));
  if (!s.ok()) return std::cerr << s.status().message() << "\n", 1;
  if (mpi.rank() == 0) {
    std::cout << s->ran << " units ran (" << s->failed << " failed), " << s->skipped
              << " finished before; rows in " << options.out_dir << "/results.h5\n";
  }
  return 0;
}
