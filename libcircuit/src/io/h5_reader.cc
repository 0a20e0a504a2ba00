// H5Reader: every call is made by the reader's child process (h5_child.cc),
// which runs LocalReader (h5_local_reader.cc) on the file and sends the result
// back; this process never calls libhdf5 on the file it reads.
#include <hdf5.h>

#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "circuit/core/h5.h"
#include "circuit/core/status.h"
#include "io/h5_internal.h"
#include "io/h5_wire.h"

namespace circuit {

using h5_internal::Op;

struct H5Reader::State {
  std::unique_ptr<h5_internal::ReaderChild> child;

  // The child's result of `op` on (object, name).
  template <typename T>
  absl::StatusOr<T> Ask(Op op, const std::string& object, const std::string& name = "",
                        const H5Shape& shape = {}) const {
    h5_internal::Request q;
    q.op = op;
    q.object = object;
    q.name = name;
    q.shape = shape;
    CIRCUIT_ASSIGN_OR_RETURN(std::string answer, child->Call(q));
    absl::StatusOr<T> result;
    if (!h5_internal::GetResult(answer, &result)) return child->Malformed();
    return result;
  }
};

H5Reader::H5Reader(std::string path, std::unique_ptr<State> state)
    : path_(std::move(path)), state_(std::move(state)) {}
H5Reader::H5Reader(H5Reader&&) noexcept = default;
H5Reader& H5Reader::operator=(H5Reader&&) noexcept = default;
H5Reader::~H5Reader() = default;

absl::StatusOr<H5Reader> H5Reader::Open(const std::string& path) {
  h5_internal::SilenceHdf5();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  // Only the signature is looked for here; the child opens the file.
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not an HDF5 file"));
  }
  auto state = std::make_unique<State>();
  CIRCUIT_ASSIGN_OR_RETURN(state->child, h5_internal::ReaderChild::Start(path));
  return H5Reader(path, std::move(state));
}

absl::Status H5Reader::CheckFormat(const std::string& format, int64_t max_version) const {
  CIRCUIT_ASSIGN_OR_RETURN(std::string got, ReadStringAttribute("/", "format"));
  if (got != format) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": format is '", got, "', expected '", format, "'"));
  }
  CIRCUIT_ASSIGN_OR_RETURN(int64_t version, ReadIntAttribute("/", "format_version"));
  if (version < 1 || version > max_version) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": format_version ", version,
                                                   " is not supported (1..", max_version, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> H5Reader::Exists(const std::string& object) const {
  return state_->Ask<bool>(Op::kExists, object);
}
absl::StatusOr<bool> H5Reader::HasAttribute(const std::string& object,
                                            const std::string& name) const {
  return state_->Ask<bool>(Op::kHasAttribute, object, name);
}
absl::StatusOr<int64_t> H5Reader::ReadIntAttribute(const std::string& object,
                                                   const std::string& name) const {
  return state_->Ask<int64_t>(Op::kReadIntAttribute, object, name);
}
absl::StatusOr<double> H5Reader::ReadDoubleAttribute(const std::string& object,
                                                     const std::string& name) const {
  return state_->Ask<double>(Op::kReadDoubleAttribute, object, name);
}
absl::StatusOr<std::string> H5Reader::ReadStringAttribute(const std::string& object,
                                                          const std::string& name) const {
  return state_->Ask<std::string>(Op::kReadStringAttribute, object, name);
}
absl::StatusOr<std::vector<std::string>> H5Reader::ListGroup(const std::string& group) const {
  return state_->Ask<std::vector<std::string>>(Op::kListGroup, group);
}
absl::StatusOr<H5Shape> H5Reader::DatasetShape(const std::string& dataset) const {
  return state_->Ask<H5Shape>(Op::kDatasetShape, dataset);
}
absl::StatusOr<std::vector<float>> H5Reader::ReadFloats(const std::string& dataset,
                                                        const H5Shape& expected_shape) const {
  return state_->Ask<std::vector<float>>(Op::kReadFloats, dataset, "", expected_shape);
}
absl::StatusOr<std::vector<double>> H5Reader::ReadDoubles(const std::string& dataset) const {
  return state_->Ask<std::vector<double>>(Op::kReadDoubles, dataset);
}
absl::StatusOr<std::vector<int32_t>> H5Reader::ReadInt32s(const std::string& dataset) const {
  return state_->Ask<std::vector<int32_t>>(Op::kReadInt32s, dataset);
}
absl::StatusOr<std::vector<int64_t>> H5Reader::ReadInt64s(const std::string& dataset) const {
  return state_->Ask<std::vector<int64_t>>(Op::kReadInt64s, dataset);
}
absl::StatusOr<std::vector<std::string>> H5Reader::ReadStrings(const std::string& dataset) const {
  return state_->Ask<std::vector<std::string>>(Op::kReadStrings, dataset);
}
absl::StatusOr<std::string> H5Reader::ReadString(const std::string& dataset) const {
  return state_->Ask<std::string>(Op::kReadString, dataset);
}

}  // namespace circuit
