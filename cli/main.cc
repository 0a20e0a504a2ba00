// circuit: one program, git-style subcommands (`circuit <command> --help`).
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "command.h"

namespace circuit::cli {

std::map<std::string, Command>& Commands() {
  static auto* commands = new std::map<std::string, Command>();
  return *commands;
}

namespace {

void PrintHelp(std::ostream& out) {
  out << "usage: circuit <command> [options]   (circuit <command> --help for details)\n\n"
         "Weight-sparse transformers and their circuits (Gao et al., 2025).\n\ncommands:\n";
  for (const auto& [name, command] : Commands()) {
    out << "  " << name << std::string(name.size() < 14 ? 14 - name.size() : 1, ' ')
        << command.summary << "\n";
  }
}

// libgomp (torch's and OpenBLAS's OpenMP) spins its idle threads for ~3 ms after
// every parallel region unless OMP_WAIT_POLICY says otherwise. On shared cores
// that spinning steals the other process's time and ours: one extraction ran 7x
// slower beside one other process (docs/performance.md). libgomp reads the
// variable once, when it is loaded, so it cannot be set from here for this
// process: the program runs itself again with the variable set, unless the user
// chose a policy (OMP_WAIT_POLICY or GOMP_SPINCOUNT). The exec costs one more
// start of the program (~0.5 s of CPU); `--help` is left alone.
void WaitPassivelyUnlessChosen(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/1);
  execv("/proc/self/exe", argv);
  // The exec failed (no /proc): go on with libgomp's default waiting.
}

}  // namespace
}  // namespace circuit::cli

int main(int argc, char** argv) {
  using circuit::cli::Commands;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    circuit::cli::PrintHelp(std::cout);
    return argc < 2 ? 2 : 0;
  }
  auto it = Commands().find(argv[1]);
  if (it == Commands().end()) {
    std::cerr << "circuit: unknown command '" << argv[1] << "' (see circuit --help)\n";
    return 2;
  }
  circuit::cli::WaitPassivelyUnlessChosen(argv);
  return it->second.run(argc - 1, argv + 1);
}
