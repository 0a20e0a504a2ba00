// HDF5 files the way this project writes and reads them: typed, validated, and
// never half-written. Foreign errors (H5::Exception) stop here and become Status.
//
//   CIRCUIT_ASSIGN_OR_RETURN(H5Writer w, H5Writer::Create("model.h5"));
//   CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "format", std::string("circuit.model")));
//   CIRCUIT_RETURN_IF_ERROR(w.WriteFloats("/weights/lm_head.weight", {2048, 128}, data));
//   CIRCUIT_RETURN_IF_ERROR(w.Commit());   // renames the temporary file into place
//
//   CIRCUIT_ASSIGN_OR_RETURN(H5Reader r, H5Reader::Open("model.h5"));
//   CIRCUIT_RETURN_IF_ERROR(r.CheckFormat("circuit.model", /*max_version=*/1));
//   CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> w, r.ReadFloats("/weights/x", {2048, 128}));
#ifndef CIRCUIT_CORE_H5_H_
#define CIRCUIT_CORE_H5_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace circuit {

using H5Shape = std::vector<uint64_t>;

// Writes a new HDF5 file under a temporary name beside `path`; Commit() flushes,
// closes and renames it to `path`. Destroying an uncommitted writer deletes the
// temporary file, so readers only ever see complete files. Move-only.
class H5Writer {
 public:
  static absl::StatusOr<H5Writer> Create(const std::string& path);
  H5Writer(H5Writer&&) noexcept;
  H5Writer& operator=(H5Writer&&) noexcept;
  ~H5Writer();

  // Attributes on an object ("/" or a group path, created as needed).
  absl::Status WriteAttribute(const std::string& object, const std::string& name, int64_t value);
  absl::Status WriteAttribute(const std::string& object, const std::string& name, double value);
  absl::Status WriteAttribute(const std::string& object, const std::string& name,
                              const std::string& value);
  absl::Status WriteAttribute(const std::string& object, const std::string& name,
                              const char* value) {
    return WriteAttribute(object, name, std::string(value));
  }

  // Datasets; parent groups are created as needed. `compress` chunks and
  // deflates (worth it for sparse weights). data.size() must equal prod(shape).
  absl::Status WriteFloats(const std::string& dataset, const H5Shape& shape,
                           absl::Span<const float> data, bool compress = false);
  absl::Status WriteDoubles(const std::string& dataset, absl::Span<const double> data);
  absl::Status WriteInt32s(const std::string& dataset, absl::Span<const int32_t> data);
  absl::Status WriteInt64s(const std::string& dataset, absl::Span<const int64_t> data);
  absl::Status WriteStrings(const std::string& dataset, const std::vector<std::string>& data);
  // One (possibly large) variable-length string as a scalar dataset.
  absl::Status WriteString(const std::string& dataset, const std::string& value);

  absl::Status Commit();

  const std::string& path() const { return path_; }

 private:
  struct State;
  H5Writer(std::string path, std::unique_ptr<State> state);
  std::string path_;
  std::unique_ptr<State> state_;
};

// Reads an HDF5 file; every error message starts with the file name and names
// the object and the mismatch. The file is read by a child process that makes
// exactly these calls, in this order, and sends the values back, so a file on
// which libhdf5 crashes or hangs is an error here ("corrupt HDF5 file"), never
// a crash of this process (docs/reliability.md). Move-only.
class H5Reader {
 public:
  static absl::StatusOr<H5Reader> Open(const std::string& path);
  H5Reader(H5Reader&&) noexcept;
  H5Reader& operator=(H5Reader&&) noexcept;
  ~H5Reader();

  // Checks root attributes `format` == format and 1 <= `format_version` <= max_version.
  absl::Status CheckFormat(const std::string& format, int64_t max_version) const;

  // A group or dataset path. Like every read, a question the file's reading
  // process could not answer (libhdf5 crashed or hung on it) is an error.
  absl::StatusOr<bool> Exists(const std::string& object) const;
  absl::StatusOr<bool> HasAttribute(const std::string& object, const std::string& name) const;
  absl::StatusOr<int64_t> ReadIntAttribute(const std::string& object, const std::string& name) const;
  absl::StatusOr<double> ReadDoubleAttribute(const std::string& object,
                                             const std::string& name) const;
  absl::StatusOr<std::string> ReadStringAttribute(const std::string& object,
                                                  const std::string& name) const;
  // Names of the members of a group, sorted.
  absl::StatusOr<std::vector<std::string>> ListGroup(const std::string& group) const;

  absl::StatusOr<H5Shape> DatasetShape(const std::string& dataset) const;
  // Reads a float32 dataset; fails unless its shape equals `expected_shape`
  // (when not empty) and its type is a 32-bit float.
  absl::StatusOr<std::vector<float>> ReadFloats(const std::string& dataset,
                                                const H5Shape& expected_shape = {}) const;
  absl::StatusOr<std::vector<double>> ReadDoubles(const std::string& dataset) const;
  absl::StatusOr<std::vector<int32_t>> ReadInt32s(const std::string& dataset) const;
  absl::StatusOr<std::vector<int64_t>> ReadInt64s(const std::string& dataset) const;
  absl::StatusOr<std::vector<std::string>> ReadStrings(const std::string& dataset) const;
  absl::StatusOr<std::string> ReadString(const std::string& dataset) const;

  const std::string& path() const { return path_; }

 private:
  struct State;
  H5Reader(std::string path, std::unique_ptr<State> state);
  std::string path_;
  std::unique_ptr<State> state_;
};

}  // namespace circuit

#endif  // CIRCUIT_CORE_H5_H_
