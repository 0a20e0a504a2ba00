// The read guard: libhdf5 (Debian's 1.10.8) crashes or loops on some corrupted
// files before any check of ours can run (a corrupted global heap under a
// variable-length string, corrupted metadata in H5C_protect). So before
// H5Reader::Open opens a file, a forked child reads all of it, the way the
// readers will, under a time limit; if the child dies or runs out of time the
// file is refused. docs/reliability.md says why this design.
#include <fcntl.h>
#include <hdf5.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "h5_internal.h"

// Under a sanitizer (the fuzz build) the child must not run the fuzzer's
// death callback, which would save the input as a crash of the parent.
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

namespace circuit::h5_internal {
namespace {

// At most this many bytes of a dataset are read at once.
constexpr uint64_t kSlabBytes = uint64_t{16} << 20;

// ------------------------------------------------------------- the child

// Reads `n` elements of file type `type` through `read` (H5Aread or H5Dread
// bound to a selection) into memory of the type the readers use, and frees
// what libhdf5 allocated for variable-length data.
template <typename Read>
void ReadValues(hid_t type, hid_t mem_space, uint64_t n, const Read& read) {
  const bool vstring = H5Tis_variable_str(type) > 0;
  Handle mem;
  if (vstring) {
    mem = StringReadType(type);
  } else if (H5Tget_class(type) == H5T_STRING) {
    mem = Handle(H5Tcopy(type), H5Tclose);
  } else {
    mem = Handle(H5Tget_native_type(type, H5T_DIR_ASCEND), H5Tclose);
  }
  if (!mem.valid()) return;
  const size_t size = H5Tget_size(mem.get());
  if (size == 0 || n > kSlabBytes * 64 / size) return;
  std::vector<unsigned char> buffer(n * size, 0);
  if (read(mem.get(), buffer.data()) < 0) return;
  if (vstring || H5Tdetect_class(mem.get(), H5T_VLEN) > 0) {
    H5Dvlen_reclaim(mem.get(), mem_space, H5P_DEFAULT, buffer.data());
  }
}

void ReadAttribute(hid_t attr, uint64_t file_size) {
  Handle type(H5Aget_type(attr), H5Tclose);
  Handle space(H5Aget_space(attr), H5Sclose);
  if (!type.valid() || !space.valid()) return;
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  // An attribute's values live in its object header, inside the file.
  const uint64_t stored = H5Tis_variable_str(type.get()) > 0
                              ? 8
                              : std::max<uint64_t>(1, H5Tget_size(type.get()));
  if (n <= 0 || static_cast<uint64_t>(n) > file_size / stored) return;
  ReadValues(type.get(), space.get(), static_cast<uint64_t>(n),
             [&](hid_t mem, void* buf) { return H5Aread(attr, mem, buf); });
}

herr_t OnAttribute(hid_t object, const char* name, const H5A_info_t*, void* data) {
  Handle attr(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
  if (attr.valid()) ReadAttribute(attr.get(), *static_cast<uint64_t*>(data));
  return 0;
}

// True for a chunked dataset of plain integers or floats whose filters are
// only those this project writes (deflate, shuffle) and fletcher32: decoding
// those is zlib and byte copies, so only the way to each chunk (the chunk
// index, libhdf5's metadata) needs testing, and decoding every chunk would cost
// as much as the caller's read.
bool PlainDeflated(hid_t dset, hid_t type) {
  const H5T_class_t cls = H5Tget_class(type);
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) return false;
  Handle dcpl(H5Dget_create_plist(dset), H5Pclose);
  if (!dcpl.valid() || H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return false;
  const int filters = H5Pget_nfilters(dcpl.get());
  if (filters <= 0) return false;
  for (int i = 0; i < filters; ++i) {
    unsigned flags = 0;
    size_t n_values = 0;
    const H5Z_filter_t id =
        H5Pget_filter2(dcpl.get(), i, &flags, &n_values, nullptr, 0, nullptr, nullptr);
    if (id != H5Z_FILTER_DEFLATE && id != H5Z_FILTER_SHUFFLE && id != H5Z_FILTER_FLETCHER32) {
      return false;
    }
  }
  return true;
}

// Looks up every chunk of a chunked dataset in its index and reads its stored
// bytes without decoding them.
void ReadRawChunks(hid_t dset, const std::vector<hsize_t>& dims, uint64_t file_size) {
  Handle dcpl(H5Dget_create_plist(dset), H5Pclose);
  std::vector<hsize_t> chunk(dims.size(), 0);
  if (H5Pget_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()) !=
      static_cast<int>(chunk.size())) {
    return;
  }
  for (hsize_t c : chunk) {
    if (c == 0) return;
  }
  std::vector<hsize_t> offset(dims.size(), 0);
  std::vector<unsigned char> buffer;
  for (;;) {
    hsize_t bytes = 0;
    uint32_t filter_mask = 0;
    if (H5Dget_chunk_storage_size(dset, offset.data(), &bytes) >= 0 && bytes > 0 &&
        bytes <= file_size) {
      buffer.resize(bytes);
      H5Dread_chunk(dset, H5P_DEFAULT, offset.data(), &filter_mask, buffer.data());
    }
    // The next chunk, the last dimension fastest.
    size_t d = dims.size();
    while (d > 0) {
      --d;
      offset[d] += chunk[d];
      if (offset[d] < dims[d]) break;
      offset[d] = 0;
      if (d == 0) return;
    }
  }
}

// Reads a dataset whose declared size passes the readers' checks, in slabs
// along its first dimension.
void ReadDataset(hid_t file, hid_t dset, uint64_t file_size) {
  Handle type(H5Dget_type(dset), H5Tclose);
  Handle space(H5Dget_space(dset), H5Sclose);
  if (!type.valid() || !space.valid()) return;
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) return;
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  const H5Shape shape(dims.begin(), dims.end());
  absl::StatusOr<uint64_t> n = CheckedElements(file, dset, type.get(), shape, "", "");
  if (!n.ok() || *n == 0) return;
  if (rank == 0) {
    ReadValues(type.get(), space.get(), 1, [&](hid_t mem, void* buf) {
      return H5Dread(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    });
    return;
  }
  if (PlainDeflated(dset, type.get())) {
    ReadRawChunks(dset, dims, file_size);
    return;
  }
  const uint64_t row = *n / dims[0];
  const uint64_t row_bytes = row * std::max<size_t>(8, H5Tget_size(type.get()));
  const hsize_t rows = std::max<uint64_t>(1, kSlabBytes / std::max<uint64_t>(row_bytes, 1));
  for (hsize_t start = 0; start < dims[0]; start += rows) {
    std::vector<hsize_t> offset(rank, 0), count(dims);
    offset[0] = start;
    count[0] = std::min<hsize_t>(rows, dims[0] - start);
    Handle file_space(H5Scopy(space.get()), H5Sclose);
    Handle mem_space(H5Screate_simple(rank, count.data(), nullptr), H5Sclose);
    if (!file_space.valid() || !mem_space.valid() ||
        H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset.data(), nullptr, count.data(),
                            nullptr) < 0) {
      return;
    }
    herr_t rc = 0;
    ReadValues(type.get(), mem_space.get(), count[0] * row, [&](hid_t mem, void* buf) {
      return rc = H5Dread(dset, mem, mem_space.get(), file_space.get(), H5P_DEFAULT, buf);
    });
    if (rc < 0) return;
  }
}

struct Walk {
  hid_t file;
  uint64_t file_size;
};

// Every object a link leads to (the readers open objects by path): its
// attributes, and its values when it is a dataset.
void ReadObject(const Walk& walk, hid_t base, const char* name) {
  Handle object(H5Oopen(base, name, H5P_DEFAULT), H5Oclose);
  if (!object.valid()) return;
  uint64_t file_size = walk.file_size;
  H5Aiterate2(object.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, OnAttribute, &file_size);
  // The iteration stops at the first attribute it cannot decode; the readers
  // open attributes one by one, so each is also tried on its own.
  H5O_info_t info;
  if (H5Oget_info2(object.get(), &info, H5O_INFO_NUM_ATTRS) >= 0) {
    for (hsize_t i = 0; i < std::min<hsize_t>(info.num_attrs, 4096); ++i) {
      for (H5_index_t index : {H5_INDEX_NAME, H5_INDEX_CRT_ORDER}) {
        Handle attr(H5Aopen_by_idx(object.get(), ".", index, H5_ITER_INC, i, H5P_DEFAULT,
                                   H5P_DEFAULT),
                    H5Aclose);
        if (attr.valid()) ReadAttribute(attr.get(), file_size);
      }
    }
  }
  if (H5Iget_type(object.get()) == H5I_DATASET) ReadDataset(walk.file, object.get(), walk.file_size);
}

herr_t OnLink(hid_t group, const char* name, const H5L_info_t*, void* data) {
  ReadObject(*static_cast<Walk*>(data), group, name);
  return 0;
}

// The child's work; returns normally whatever libhdf5 reports.
void ReadEverything(const std::string& path) {
  // The in-memory driver: this process has the library's state as the caller
  // left it, and a file libhdf5 still holds open from an earlier, failed read
  // at this path would otherwise be reused (files are matched by inode within
  // a driver), stale metadata and all, instead of reading these bytes.
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_fapl_core(fapl.get(), 1 << 20, /*backing_store=*/0);
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
  if (!file.valid()) return;
  Walk walk{file.get(), 0};
  hsize_t size = 0;
  H5Fget_filesize(file.get(), &size);
  walk.file_size = size;
  ReadObject(walk, file.get(), "/");
  H5Lvisit(file.get(), H5_INDEX_NAME, H5_ITER_INC, OnLink, &walk);
}

// In the child, before reading: default handling of the signals a crash or the
// alarm raises (the parent's handlers, a fuzzer's or Python's, must not run),
// no signal blocked, and stderr closed to the noise a sanitizer would print.
void PrepareChild(unsigned alarm_seconds) {
  if (__sanitizer_set_death_callback != nullptr) __sanitizer_set_death_callback(nullptr);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM, SIGTRAP, SIGSYS}) {
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd >= 0) dup2(null_fd, STDERR_FILENO);
  alarm(alarm_seconds);
}

// ------------------------------------------------------------- the parent

// Seconds the child may take: the limit (10 s, or $CIRCUIT_HDF5_CHECK_SECONDS)
// plus one per 10 MB of file.
double TimeLimit(uint64_t file_size) {
  double base = 10;
  if (const char* env = std::getenv("CIRCUIT_HDF5_CHECK_SECONDS"); env != nullptr) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end != env && v > 0 && v <= 3600) base = v;
  }
  return base + static_cast<double>(file_size) / (10 << 20);
}

double Now() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Files that passed, by identity and change time; only files unchanged for
// over two seconds when checked are remembered (a file rewritten within the
// kernel's timestamp granularity could otherwise pass as the old one).
using FileKey = std::tuple<dev_t, ino_t, off_t, int64_t, int64_t>;
std::mutex passed_mutex;
std::set<FileKey> passed;

FileKey KeyOf(const struct stat& st) {
  return {st.st_dev, st.st_ino, st.st_size,
          int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec,
          int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec};
}

}  // namespace

absl::Status GuardRead(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return absl::OkStatus();  // the open reports it
  const FileKey key = KeyOf(st);
  {
    std::lock_guard<std::mutex> lock(passed_mutex);
    if (passed.count(key) > 0) return absl::OkStatus();
  }
  const double limit = TimeLimit(static_cast<uint64_t>(st.st_size));
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        path, ": cannot check the HDF5 file before reading it: ", std::strerror(errno)));
  }
  pid_t pid = fork();
  for (int retry = 0; pid < 0 && errno == EAGAIN && retry < 5; ++retry) {
    usleep(20000);
    pid = fork();
  }
  if (pid < 0) {  // no reading unguarded: that is what could crash
    const int fork_errno = errno;
    close(fds[0]);
    close(fds[1]);
    return absl::ResourceExhaustedError(absl::StrCat(
        path, ": cannot check the HDF5 file before reading it: fork failed: ",
        std::strerror(fork_errno)));
  }
  if (pid == 0) {
    close(fds[0]);
    PrepareChild(static_cast<unsigned>(limit) + 2);
    ReadEverything(path);
    const char done = 'K';
    (void)!write(fds[1], &done, 1);
    _exit(0);
  }
  close(fds[1]);
  const double start = Now();
  char got = 0;
  bool finished = false;
  for (;;) {
    const double left = limit - (Now() - start);
    if (left <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    const int rc = poll(&p, 1, static_cast<int>(std::min(left * 1000 + 1, 60000.0)));
    if (rc < 0 && errno == EINTR) continue;
    if (rc > 0) {
      ssize_t n;
      do n = read(fds[0], &got, 1);
      while (n < 0 && errno == EINTR);
      finished = true;
    }
    if (rc != 0) break;
  }
  close(fds[0]);
  if (!finished) kill(pid, SIGKILL);
  int status = 0;
  pid_t waited;
  do waited = waitpid(pid, &status, 0);
  while (waited < 0 && errno == EINTR);
  if (finished && got == 'K') {
    if (time(nullptr) - st.st_ctim.tv_sec > 2) {
      std::lock_guard<std::mutex> lock(passed_mutex);
      passed.insert(key);
    }
    return absl::OkStatus();
  }
  const bool alarmed = waited == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM;
  if (!finished || alarmed) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": corrupt HDF5 file (libhdf5 hung reading it: no result in ",
        static_cast<int>(limit), " s)"));
  }
  std::string how = "it died";
  if (waited == pid && WIFSIGNALED(status)) {
    how = absl::StrCat("signal ", WTERMSIG(status), ", ", strsignal(WTERMSIG(status)));
  } else if (waited == pid && WIFEXITED(status)) {
    how = absl::StrCat("exit ", WEXITSTATUS(status));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": corrupt HDF5 file (libhdf5 crashed reading it: ", how, ")"));
}

}  // namespace circuit::h5_internal
