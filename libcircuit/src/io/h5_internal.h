// What the HDF5 files of libcircuit share: a handle that closes itself, the
// library's one-time setup, the checks on declared sizes (h5_common.cc), the
// reader that runs in a child process (h5_local_reader.cc) and that process
// (h5_child.cc). Private to libcircuit (not installed).
#ifndef CIRCUIT_LIBCIRCUIT_SRC_H5_INTERNAL_H_
#define CIRCUIT_LIBCIRCUIT_SRC_H5_INTERNAL_H_

#include <hdf5.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "circuit/core/h5.h"

namespace circuit::h5_internal {

// Owns one hid_t and closes it with the matching H5*close function.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      Reset();
      id_ = std::exchange(o.id_, -1);
      close_ = o.close_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { Reset(); }
  void Reset() { (void)Close(); }
  // Closes now; the close function's result (negative: it failed).
  herr_t Close() {
    herr_t rc = 0;
    if (id_ >= 0 && close_ != nullptr) rc = close_(id_);
    id_ = -1;
    return rc;
  }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

// Once per process, before any other HDF5 call: no atexit handler, no error
// printing (every failure becomes a Status).
void SilenceHdf5();

// True when every group along `path` exists and the final link exists.
bool LinkExists(hid_t file, const std::string& path);

// A variable-length UTF-8 string type (what the writer stores).
Handle StringType();
// The memory type to read variable-length strings of `file_type` with.
Handle StringReadType(hid_t file_type);

std::string ShapeString(const H5Shape& shape);

// The element count of dataset `dset` (of type `type`, declared `shape`),
// checked before anything is allocated: the product must not overflow, must
// stay under 2^32 and must be backed by the bytes the file stores. `path` and
// `name` only go into the error message.
absl::StatusOr<uint64_t> CheckedElements(hid_t file, hid_t dset, hid_t type, const H5Shape& shape,
                                         const std::string& path, const std::string& name);

// Reads an HDF5 file in this process: H5Reader's calls, run by its child
// process (ServeReader). Every error message starts with the file name.
class LocalReader {
 public:
  static absl::StatusOr<LocalReader> Open(const std::string& path);

  absl::StatusOr<bool> Exists(const std::string& object) const;
  absl::StatusOr<bool> HasAttribute(const std::string& object, const std::string& name) const;
  absl::StatusOr<int64_t> ReadIntAttribute(const std::string& object,
                                           const std::string& name) const;
  absl::StatusOr<double> ReadDoubleAttribute(const std::string& object,
                                             const std::string& name) const;
  absl::StatusOr<std::string> ReadStringAttribute(const std::string& object,
                                                  const std::string& name) const;
  absl::StatusOr<std::vector<std::string>> ListGroup(const std::string& group) const;
  absl::StatusOr<H5Shape> DatasetShape(const std::string& dataset) const;
  absl::StatusOr<std::vector<float>> ReadFloats(const std::string& dataset,
                                                const H5Shape& expected_shape) const;
  absl::StatusOr<std::vector<double>> ReadDoubles(const std::string& dataset) const;
  absl::StatusOr<std::vector<int32_t>> ReadInt32s(const std::string& dataset) const;
  absl::StatusOr<std::vector<int64_t>> ReadInt64s(const std::string& dataset) const;
  absl::StatusOr<std::vector<std::string>> ReadStrings(const std::string& dataset) const;
  absl::StatusOr<std::string> ReadString(const std::string& dataset) const;

 private:
  LocalReader(std::string path, Handle file) : path_(std::move(path)), file_(std::move(file)) {}
  std::string path_;
  Handle file_;
};

// What an H5Reader asks its child process to do: one LocalReader call.
enum class Op : uint64_t {
  kOpen = 1,
  kExists,
  kHasAttribute,
  kReadIntAttribute,
  kReadDoubleAttribute,
  kReadStringAttribute,
  kListGroup,
  kDatasetShape,
  kReadFloats,
  kReadDoubles,
  kReadInt32s,
  kReadInt64s,
  kReadStrings,
  kReadString,
};
struct Request {
  Op op = Op::kOpen;
  std::string object;  // the object, group or dataset path
  std::string name;    // an attribute's name
  H5Shape shape;       // ReadFloats' expected shape
};

// The child process that reads one file for one H5Reader (h5_child.cc): it is
// forked when the reader opens the file, so it has this process's memory and
// libhdf5's state as they are at that moment, and it makes exactly the
// reader's calls, in the reader's order, sending each result back. libhdf5 is
// never called on the file in this process. If the child dies (libhdf5
// crashed) or does not answer within the file's time limit (it hung), that
// call and every later one fail with "FILE: corrupt HDF5 file (libhdf5 ...)".
class ReaderChild {
 public:
  static absl::StatusOr<std::unique_ptr<ReaderChild>> Start(const std::string& path);
  ReaderChild(const ReaderChild&) = delete;
  ReaderChild& operator=(const ReaderChild&) = delete;
  ~ReaderChild();  // ends the child (it holds nothing that needs closing)

  // The child's answer to `request` (h5_wire.h's encoding of a StatusOr).
  absl::StatusOr<std::string> Call(const Request& request);
  // For an answer that does not decode: ends the child, returns the error.
  absl::Status Malformed();

 private:
  ReaderChild(std::string path, pid_t pid, int fd, double limit);
  absl::Status Broken(const std::string& how);
  absl::Status SanitizedChildDied(const std::string& report);

  const std::string path_;
  const pid_t pid_;
  const int fd_;
  const double limit_;  // seconds the child may spend on this file, all calls together
  double spent_ = 0;
  absl::Status broken_;  // once set, every call fails with it
  std::mutex mutex_;     // one call at a time
};

}  // namespace circuit::h5_internal

#endif  // CIRCUIT_LIBCIRCUIT_SRC_H5_INTERNAL_H_
