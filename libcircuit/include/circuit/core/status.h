// Status helpers: the macros upstream Abseil has and Debian's 20220623 lacks.
//
//   absl::StatusOr<Model> LoadModel(const std::string& path) {
//     CIRCUIT_ASSIGN_OR_RETURN(H5Reader reader, H5Reader::Open(path));
//     CIRCUIT_RETURN_IF_ERROR(reader.CheckFormat("circuit.model", 1));
//     ...
//   }
#ifndef CIRCUIT_CORE_STATUS_H_
#define CIRCUIT_CORE_STATUS_H_

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define CIRCUIT_STATUS_CONCAT_INNER_(a, b) a##b
#define CIRCUIT_STATUS_CONCAT_(a, b) CIRCUIT_STATUS_CONCAT_INNER_(a, b)

// Returns `expr` from the current function when it is not OK.
#define CIRCUIT_RETURN_IF_ERROR(expr)                   \
  do {                                                  \
    ::absl::Status circuit_status_ = (expr);            \
    if (!circuit_status_.ok()) return circuit_status_;  \
  } while (false)

// `lhs` = the value of the StatusOr `rexpr`, or returns its error.
#define CIRCUIT_ASSIGN_OR_RETURN(lhs, rexpr)                                          \
  CIRCUIT_ASSIGN_OR_RETURN_IMPL_(CIRCUIT_STATUS_CONCAT_(circuit_statusor_, __LINE__), \
                                 lhs, rexpr)
#define CIRCUIT_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()

// Broken invariants (programming errors, never user input) abort with a message.
// User-caused problems return absl::Status instead.
#define CIRCUIT_CHECK(cond)                                                      \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "%s:%d: CIRCUIT_CHECK failed: %s\n", __FILE__,       \
                   __LINE__, #cond);                                             \
      std::abort();                                                              \
    }                                                                            \
  } while (false)

namespace circuit {

// Prefixes the message of `status` with `context` ("model.h5: ...").
inline absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace circuit

#endif  // CIRCUIT_CORE_STATUS_H_
