#include "testing/run.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "testing/temp_dir.h"

namespace circuit::testing {

RunResult RunCommand(const std::string& command) {
  TempDir dir;
  const std::string out = dir.File("stdout"), err = dir.File("stderr");
  const int status = std::system((command + " >" + out + " 2>" + err + " </dev/null").c_str());
  RunResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  result.out = slurp(out);
  result.err = slurp(err);
  return result;
}

std::string CircuitBinary() { return BinaryDir() + "/bin/circuit"; }

RunResult InitTinyModel(const std::string& path, int seed) {
  return RunCommand(CircuitBinary() + " init --layers 2 --d-model 32 --heads 2 --d-head 16 --d-mlp 64 " +
                    "--n-ctx 64 --seed " + std::to_string(seed) + " --out " + path);
}

}  // namespace circuit::testing
