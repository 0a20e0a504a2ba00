// Runs a command line through the shell and captures what it printed — for
// end-to-end tests of build/bin/circuit.
//
//   RunResult r = RunCommand(CircuitBinary() + " inspect model.h5");
//   EXPECT_EQ(r.exit_code, 0);
//   EXPECT_THAT(r.out, HasSubstr("layers"));
#ifndef CIRCUIT_TESTING_RUN_H_
#define CIRCUIT_TESTING_RUN_H_

#include <string>

namespace circuit::testing {

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

RunResult RunCommand(const std::string& command);

// Absolute path of build/bin/circuit.
std::string CircuitBinary();

// `circuit init` of a tiny random model (2 layers, d_model 32, 2 heads x 16,
// d_mlp 64, n_ctx 64) at `path`: fast fixtures for end-to-end tests.
RunResult InitTinyModel(const std::string& path, int seed = 1);

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTING_RUN_H_
