// A small git-style argument parser shared by every subcommand.
//
//   ArgParser p("circuit inspect FILE", "Print a model's or circuit's summary.");
//   std::string file; bool json = false;
//   p.Positional("FILE", "model.h5 or circuit.h5", &file);
//   p.Flag("json", "print JSON", &json);
//   if (int rc = p.Parse(argc, argv); rc >= 0) return rc;   // --help or bad usage
#ifndef CIRCUIT_CLI_ARGS_H_
#define CIRCUIT_CLI_ARGS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace circuit {
struct ModelConfig;
}

namespace circuit::cli {

// Exit codes of every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // a run that failed (I/O, NaN loss, ...)
inline constexpr int kExitUsage = 2;    // bad usage or bad input

// --device's help, shared by the commands that take it.
inline constexpr char kDeviceHelp[] =
    "cpu, cuda or cuda:N (cuda needs circuit built against a CUDA build of libtorch 1.13, "
    "-DTorch_DIR=...; Debian's is CPU-only: docs/performance.md)";

class ArgParser {
 public:
  ArgParser(std::string usage, std::string description);

  void Option(const std::string& name, const std::string& help, std::string* value);
  void Option(const std::string& name, const std::string& help, int64_t* value);
  void Option(const std::string& name, const std::string& help, int* value);
  void Option(const std::string& name, const std::string& help, double* value);
  void Option(const std::string& name, const std::string& help, uint64_t* value);
  void Flag(const std::string& name, const std::string& help, bool* value);  // --x / --no-x
  // Repeatable option: each occurrence appends.
  void List(const std::string& name, const std::string& help, std::vector<std::string>* values);
  // Required positional argument (in order of declaration).
  void Positional(const std::string& name, const std::string& help, std::string* value);
  // Optional trailing positional.
  void OptionalPositional(const std::string& name, const std::string& help, std::string* value);

  // Parses argv[1..] (argv[0] is the subcommand). Returns -1 to go on, kExitOk after
  // --help, or kExitUsage after printing one line to stderr.
  int Parse(int argc, char** argv);
  std::string Help() const;
  // Replaces the "(default: ...)" text of option `name` in the help.
  void SetDefaultText(const std::string& name, const std::string& text);
  // Whether the option `name` was on the command line (after Parse).
  bool Given(const std::string& name) const;

 private:
  struct Spec {
    std::string name, help, default_text;
    bool is_flag = false, is_list = false;
    std::function<bool(const std::string&)> set;
    bool given = false;
  };
  Spec* Find(const std::string& name);
  std::string usage_, description_;
  std::vector<Spec> options_;
  struct Pos {
    std::string name, help;
    std::string* value;
    bool required;
  };
  std::vector<Pos> positionals_;
};

// Options every computing subcommand shares; defaults may come from the
// environment (CIRCUIT_MODEL, CIRCUIT_DEVICE, CIRCUIT_THREADS), handy in cluster jobs.
struct CommonOptions {
  std::string model;   // default: the bundled model
  std::string device = "cpu";
  int threads = 0;     // 0: all cores
  uint64_t seed = 0;
};
void AddCommonOptions(ArgParser& parser, CommonOptions* options, bool with_model = true);

// The model-shape options (--layers, --d-model, --heads, --d-head, --d-mlp,
// --n-ctx, --vocab, --d-pos-emb, --afrac, --afrac-locations, --sink, --bigram,
// --activation), shared by `init` and `train`. Defaults: the bundled model's shape.
void AddModelConfigOptions(ArgParser& parser, circuit::ModelConfig* config);

// A path under the project's data/ folder ("tokenizer", "models/default.h5"),
// found in the working directory or the source tree the binary was built from.
std::string DataPath(const std::string& relative);
// The bundled default model: $CIRCUIT_MODEL, else DataPath("models/default.h5").
std::string DefaultModelPath();

// Prints "circuit <command>: <message>" to stderr and returns `code`.
int Fail(const std::string& command, const std::string& message, int code);

}  // namespace circuit::cli

#endif  // CIRCUIT_CLI_ARGS_H_
