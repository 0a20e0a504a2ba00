// The `arch` attribute of model files (docs/formats.md).
#include "circuit/core/arch.h"

#include "absl/strings/str_cat.h"
#include "circuit/core/h5.h"
#include "circuit/core/status.h"

namespace circuit {
namespace {

std::string ArchTitle(const std::string& arch) {
  if (arch == kArchGpt) return "a GPT model";
  if (arch == kArchBdh) return "a BDH model";
  return "a model";
}

}  // namespace

bool IsKnownArch(const std::string& arch) { return arch == kArchGpt || arch == kArchBdh; }

absl::StatusOr<std::string> ReadModelArch(const std::string& path) {
  CIRCUIT_ASSIGN_OR_RETURN(H5Reader r, H5Reader::Open(path));
  CIRCUIT_RETURN_IF_ERROR(r.CheckFormat(kModelFormat, kModelFormatVersion));
  return ReadModelArch(r);
}

absl::StatusOr<std::string> ReadModelArch(const H5Reader& r) {
  CIRCUIT_ASSIGN_OR_RETURN(const bool has, r.HasAttribute("/", "arch"));
  if (!has) return std::string(kArchGpt);
  CIRCUIT_ASSIGN_OR_RETURN(std::string arch, r.ReadStringAttribute("/", "arch"));
  if (!IsKnownArch(arch)) {
    return absl::InvalidArgumentError(
        absl::StrCat(r.path(), ": /@arch: unknown architecture '", arch, "' (known: gpt, bdh)"));
  }
  return arch;
}

absl::Status RequireArch(const H5Reader& r, const std::string& wanted) {
  CIRCUIT_ASSIGN_OR_RETURN(const std::string arch, ReadModelArch(r));
  if (arch != wanted) return ArchMismatch(r.path(), arch, wanted);
  return absl::OkStatus();
}

absl::Status ArchMismatch(const std::string& path, const std::string& found,
                          const std::string& wanted) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", ArchTitle(found), " (arch '", found,
                                                 "'); this needs ", ArchTitle(wanted), " (arch '",
                                                 wanted, "')"));
}

}  // namespace circuit
