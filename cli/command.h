// Subcommand registry: each cli/cmd_*.cc registers itself, so adding a
// subcommand touches only its own file and cli/CMakeLists.txt.
//
//   int RunInspect(int argc, char** argv);
//   CIRCUIT_COMMAND(inspect, "inspect", "print a model's or circuit's summary", RunInspect);
#ifndef CIRCUIT_CLI_COMMAND_H_
#define CIRCUIT_CLI_COMMAND_H_

#include <map>
#include <string>

namespace circuit::cli {

using CommandFn = int (*)(int argc, char** argv);

struct Command {
  std::string summary;
  CommandFn run;
};

// Name -> command, sorted by name.
std::map<std::string, Command>& Commands();

struct CommandRegistrar {
  CommandRegistrar(const char* name, const char* summary, CommandFn run) {
    Commands()[name] = Command{summary, run};
  }
};

}  // namespace circuit::cli

#define CIRCUIT_COMMAND(id, name, summary, fn) \
  static ::circuit::cli::CommandRegistrar circuit_command_##id(name, summary, fn)

#endif  // CIRCUIT_CLI_COMMAND_H_
