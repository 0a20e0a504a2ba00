// The audit.json object (docs/faithfulness.md): what `circuit audit` writes
// beside the circuit and prints with --json, and what circuit.audit() returns
// in Python. Numbers that are not finite become null.
//
//   std::string text = AuditJson("q/circuit.h5", circuit, result, options);
//   WriteFileAtomically("q/audit.json", text + "\n");
#ifndef CIRCUIT_PRUNE_AUDIT_JSON_H_
#define CIRCUIT_PRUNE_AUDIT_JSON_H_

#include <string>

#include "circuit/core/circuit.h"

namespace circuit::prune {

struct AuditResult;   // audit.h
struct AuditOptions;  // audit.h

// The audit of `circuit` (read from `circuit_path`, which the object names) as
// JSON text indented by 2, without a trailing newline. Invalid UTF-8 in names
// taken from files is replaced, not fatal.
std::string AuditJson(const std::string& circuit_path, const Circuit& circuit, const AuditResult& result,
                      const AuditOptions& options);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_AUDIT_JSON_H_
