// Whole-file reads and crash-safe writes. Torch-free.
//
//   CIRCUIT_RETURN_IF_ERROR(WriteFileAtomically("out/summary.json", text));
//   CIRCUIT_ASSIGN_OR_RETURN(std::string bytes, ReadFile("corpus/val.bin"));
#ifndef CIRCUIT_CORE_FILE_UTIL_H_
#define CIRCUIT_CORE_FILE_UTIL_H_

#include <string>
#include <string_view>
#include <vector>
#include <cstdint>

#include "absl/status/statusor.h"

namespace circuit {

// Writes `contents` to a temporary file beside `path`, then renames it into
// place: readers see the old file or the whole new one, never a part. A failed
// write (disk full, no permission) removes the temporary file and names `path`.
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents);

// A float32 array as a NumPy .npy file (format 1.0, C order), written atomically.
// `values` holds the product of `shape` elements, row-major.
absl::Status WriteNpyFloat32(const std::string& path, const std::vector<int64_t>& shape,
                             const std::vector<float>& values);

// The whole file; NotFound names the path.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// An exclusive lock on an output folder (flock on DIR/.circuit.lock), so that
// two runs writing into one folder write their files as a unit, one run's set
// after the other's, never a circuit.h5 of one beside a summary.json of the
// other. Released when destroyed (and by the kernel when the process dies).
// Move-only.
//
//   CIRCUIT_ASSIGN_OR_RETURN(FolderLock lock, FolderLock::Acquire(out_dir));
//   ... write DIR/circuit.h5, DIR/summary.json ...
class FolderLock {
 public:
  // Waits for the lock; `dir` must exist. Errors name the lock file.
  static absl::StatusOr<FolderLock> Acquire(const std::string& dir);
  // FailedPrecondition at once when another process holds it.
  static absl::StatusOr<FolderLock> TryAcquire(const std::string& dir);
  FolderLock(FolderLock&& other) noexcept;
  FolderLock& operator=(FolderLock&& other) noexcept;
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  ~FolderLock();

 private:
  explicit FolderLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace circuit

#endif  // CIRCUIT_CORE_FILE_UTIL_H_
