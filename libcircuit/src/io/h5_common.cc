// The HDF5 helpers the reader (in its child process) and the writer share.
#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "io/h5_internal.h"

namespace circuit::h5_internal {
namespace {

// The most elements one dataset may hold: far above any model, circuit or
// results table this project writes, far below what would exhaust memory.
constexpr uint64_t kMaxElements = uint64_t{1} << 32;
// Deflate cannot shrink data by more than ~1032:1; a filtered dataset that
// claims more than this many bytes per stored byte is lying about its size.
constexpr uint64_t kMaxFilterRatio = 1100;

}  // namespace

void SilenceHdf5() {
  static const bool silenced = [] {
    // First, before any other HDF5 call: no atexit handler. A file whose close
    // failed (a full disk fails the flush inside H5Fclose) stays open in the
    // library, and its handler closed it again at exit and crashed (SIGSEGV
    // after the "flush failed (disk full?)" line). Every file we open is closed
    // by its owner, so the handler has nothing else to do.
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)silenced;
}

bool LinkExists(hid_t file, const std::string& path) {
  if (path == "/") return true;
  std::string prefix;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    absl::StrAppend(&prefix, "/", part);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

Handle StringType() {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

// HDF5 converts no character sets, so a file's ASCII-tagged strings (other
// writers than h5py) need an ASCII memory type; the bytes are checked as UTF-8
// after.
Handle StringReadType(hid_t file_type) {
  Handle type = StringType();
  const H5T_cset_t cset = H5Tget_cset(file_type);
  if (cset == H5T_CSET_ASCII) H5Tset_cset(type.get(), H5T_CSET_ASCII);
  return type;
}

std::string ShapeString(const H5Shape& shape) {
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

// Element count of a dataset, checked before anything is allocated: the product of
// the declared dimensions must not overflow, must stay under kMaxElements, and
// must be backed by the bytes the file actually stores (a tiny file declaring a
// (2^30, 128) dataset with no storage is rejected here, not by bad_alloc).
absl::StatusOr<uint64_t> CheckedElements(hid_t file, hid_t dset, hid_t type, const H5Shape& shape,
                                         const std::string& path, const std::string& name) {
  uint64_t n = 1;
  for (uint64_t dim : shape) {
    if (dim != 0 && n > kMaxElements / dim) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", name, ": declared shape ",
                                                     ShapeString(shape), " is too large"));
    }
    n *= dim;
  }
  if (n > kMaxElements) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", name, ": declared shape ",
                                                   ShapeString(shape), " is too large"));
  }
  if (n == 0) return n;
  // Bytes each element needs in the file: its fixed size, or the (>= 8 byte)
  // heap reference of a variable-length string.
  const bool vlen = H5Tis_variable_str(type) > 0;
  const uint64_t element_bytes =
      vlen ? 8 : std::max<uint64_t>(1, static_cast<uint64_t>(H5Tget_size(type)));
  hsize_t file_size = 0;
  H5Fget_filesize(file, &file_size);
  uint64_t stored = std::min<uint64_t>(H5Dget_storage_size(dset), file_size);
  Handle dcpl(H5Dget_create_plist(dset), H5Pclose);
  const bool filtered = dcpl.valid() && H5Pget_nfilters(dcpl.get()) > 0;
  if (filtered) stored = stored > UINT64_MAX / kMaxFilterRatio ? UINT64_MAX : stored * kMaxFilterRatio;
  if (n > stored / element_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", name, ": declares ", ShapeString(shape), " (", n, " elements) but stores ",
        H5Dget_storage_size(dset), " bytes (truncated or corrupted file?)"));
  }
  return n;
}

}  // namespace circuit::h5_internal
