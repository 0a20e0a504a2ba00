// circuit: one program, git-style subcommands (`circuit <command> --help`).
#include <c10/util/Exception.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>
#include <stdexcept>
#include <string>

#include "command.h"
#include "nlohmann/json.hpp"

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

// The first line of an exception's message (libtorch appends a backtrace).
std::string FirstLine(const char* what) {
  std::string line = what == nullptr ? "" : what;
  line = line.substr(0, line.find('\n'));
  return line.empty() ? "unknown error" : line;
}

int Report(const char* command, const std::string& what, int code) {
  std::cerr << "circuit " << command << ": " << what << "\n";
  return code;
}

}  // namespace

// The last line of defence: whatever a subcommand lets escape (a libtorch
// error, out of memory, a JSON library error) becomes one line on stderr and an
// exit code, never std::terminate. Errors caused by the input (a bad index or
// value that reached libtorch, malformed JSON) exit 2; everything else exits 1.
int RunGuarded(const char* name, const Command& command, int argc, char** argv) {
  try {
    return command.run(argc, argv);
  } catch (const std::bad_alloc&) {
    return Report(name, "out of memory", 1);
  } catch (const c10::IndexError& e) {
    return Report(name, FirstLine(e.what_without_backtrace()), 2);
  } catch (const c10::ValueError& e) {
    return Report(name, FirstLine(e.what_without_backtrace()), 2);
  } catch (const c10::Error& e) {
    return Report(name, FirstLine(e.what_without_backtrace()), 1);
  } catch (const nlohmann::json::exception& e) {
    return Report(name, FirstLine(e.what()), 2);
  } catch (const std::exception& e) {
    return Report(name, FirstLine(e.what()), 1);
  } catch (...) {
    return Report(name, "unknown error", 1);
  }
}

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
  return circuit::cli::RunGuarded(argv[1], it->second, argc - 1, argv + 1);
}
