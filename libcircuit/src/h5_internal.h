// What h5_reader.cc, h5_writer.cc and h5_guard.cc share: a handle that closes
// itself, the library's one-time setup, and the checks on declared sizes.
// Private to libcircuit (not installed).
#ifndef CIRCUIT_LIBCIRCUIT_SRC_H5_INTERNAL_H_
#define CIRCUIT_LIBCIRCUIT_SRC_H5_INTERNAL_H_

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>

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

// Reads everything in the HDF5 file at `path` (every object's metadata, every
// attribute, every dataset) in a child process under a time limit, so that a
// file on which libhdf5 itself crashes or hangs becomes an error here instead
// of killing or stalling the caller (docs/reliability.md). HDF5 errors in the
// child are not reported: the caller's own read finds and names them.
absl::Status GuardRead(const std::string& path);

}  // namespace circuit::h5_internal

#endif  // CIRCUIT_LIBCIRCUIT_SRC_H5_INTERNAL_H_
