#include "circuit/core/file_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace circuit {

absl::Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  const std::string temp = absl::StrCat(path, ".tmp-", getpid());
  std::FILE* f = std::fopen(temp.c_str(), "wb");
  if (f == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write: ", std::strerror(errno)));
  }
  const bool written = std::fwrite(contents.data(), 1, contents.size(), f) == contents.size();
  const int saved_errno = errno;
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) {
    std::remove(temp.c_str());
    return absl::ResourceExhaustedError(absl::StrCat(
        path, ": write failed (disk full?): ", std::strerror(written ? errno : saved_errno)));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(temp.c_str());
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot move into place: ", std::strerror(e)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return std::move(s).str();
}

absl::Status WriteNpyFloat32(const std::string& path, const std::vector<int64_t>& shape,
                             const std::vector<float>& values) {
  int64_t count = 1;
  std::string dims;
  for (int64_t d : shape) {
    count *= d;
    absl::StrAppend(&dims, d, ",", shape.size() > 1 ? " " : "");
  }
  if (shape.size() > 1) dims.pop_back();  // "(3, 4)" but "(3,)"
  if (count != static_cast<int64_t>(values.size())) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", values.size(),
                                                   " values for an array of ", count));
  }
  // The header is a Python dict literal padded with spaces to a multiple of 64
  // bytes (magic, version and length included) and ended by a newline.
  std::string header = absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': (", dims, "), }");
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes.push_back(static_cast<char>(header.size() & 0xff));
  bytes.push_back(static_cast<char>(header.size() >> 8));
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return WriteFileAtomically(path, bytes);
}

namespace {

absl::StatusOr<int> LockFolder(const std::string& dir, bool wait) {
  const std::string path = dir + "/.circuit.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  int rc;
  do {
    rc = ::flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, ": another circuit run is writing into this folder (", path, ")"));
    }
    return absl::InternalError(absl::StrCat(path, ": cannot lock: ", std::strerror(e)));
  }
  return fd;
}

}  // namespace

absl::StatusOr<FolderLock> FolderLock::Acquire(const std::string& dir) {
  absl::StatusOr<int> fd = LockFolder(dir, /*wait=*/true);
  if (!fd.ok()) return fd.status();
  return FolderLock(*fd);
}

absl::StatusOr<FolderLock> FolderLock::TryAcquire(const std::string& dir) {
  absl::StatusOr<int> fd = LockFolder(dir, /*wait=*/false);
  if (!fd.ok()) return fd.status();
  return FolderLock(*fd);
}

FolderLock::FolderLock(FolderLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FolderLock& FolderLock::operator=(FolderLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

}  // namespace circuit
