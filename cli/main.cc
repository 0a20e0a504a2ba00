// circuit: one program, git-style subcommands (`circuit <command> --help`).
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
  return it->second.run(argc - 1, argv + 1);
}
