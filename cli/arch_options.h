// --arch for the commands that make models (`init`, `train`): the GPT's shape
// options (--layers, --d-model, --heads, --n-ctx, --vocab) also shape a BDH
// model, which adds --neurons and --dropout; options of the other
// architecture are usage errors.
//
//   ArchOptions arch;
//   AddModelConfigOptions(parser, &config);
//   AddArchOptions(parser, &arch);
//   if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
//   if (std::string e = ResolveArch(parser, config, &arch); !e.empty()) return Fail(...);
#ifndef CIRCUIT_CLI_ARCH_OPTIONS_H_
#define CIRCUIT_CLI_ARCH_OPTIONS_H_

#include <initializer_list>
#include <string>

#include "args.h"
#include "circuit/core/arch.h"
#include "circuit/core/bdh_config.h"

namespace circuit::cli {

struct ArchOptions {
  std::string arch = kArchGpt;
  BdhConfig bdh;  // filled by ResolveArch when arch is "bdh"
};

// --arch, --neurons, --dropout.
void AddArchOptions(ArgParser& parser, ArchOptions* options);

// After Parse: "" when the options fit together, else a one-line message. For
// "bdh", copies the shared shape options that were given from `gpt` into
// options->bdh (the rest keep BdhConfig's defaults).
std::string ResolveArch(const ArgParser& parser, const ModelConfig& gpt, ArchOptions* options);

// "" when none of `names` (options of the other architecture or of GPT
// training) was given, else "--<name> does not apply to <what>".
std::string RejectGiven(const ArgParser& parser, std::initializer_list<const char*> names,
                        const std::string& what);

}  // namespace circuit::cli

#endif  // CIRCUIT_CLI_ARCH_OPTIONS_H_
