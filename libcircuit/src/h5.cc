// HDF5 through its C API, wrapped so that no handle leaks and every failure
// becomes a Status that names the file and the object.
#include "circuit/core/h5.h"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "circuit/core/status.h"

namespace circuit {
namespace {

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

// True when every group along `path` exists and the final link exists.
bool LinkExists(hid_t file, const std::string& path) {
  if (path == "/") return true;
  std::string prefix;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    absl::StrAppend(&prefix, "/", part);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

Handle StringType() {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

// The memory type to read variable-length strings of `file_type` with: HDF5
// converts no character sets, so a file's ASCII-tagged strings (other writers
// than h5py) need an ASCII memory type; the bytes are checked as UTF-8 after.
Handle StringReadType(hid_t file_type) {
  Handle type = StringType();
  const H5T_cset_t cset = H5Tget_cset(file_type);
  if (cset == H5T_CSET_ASCII) H5Tset_cset(type.get(), H5T_CSET_ASCII);
  return type;
}

std::string ShapeString(const H5Shape& shape) {
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

std::atomic<int> temp_counter{0};

// True when `s` is well-formed UTF-8 (no overlong forms, no surrogates). Text
// read from a file must be, or printing it as JSON later would fail.
bool IsUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= static_cast<size_t>(n)) return false;  // truncated sequence
    for (int k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

absl::Status NotUtf8(const std::string& path, const std::string& where) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", where, ": not UTF-8 text"));
}

// Why H5Fcreate failed, which HDF5 does not say: a missing or read-only folder,
// or a disk that takes no more bytes (found by writing a few ourselves).
absl::Status CreateError(const std::string& path, const std::string& temp_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot create file: no folder ", dir.string()));
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot create file: folder ", dir.string(), " is not writable"));
  }
  std::string why;
  if (std::FILE* probe = std::fopen(temp_path.c_str(), "wb")) {
    const std::string bytes(4096, '\0');
    errno = 0;
    const bool wrote = std::fwrite(bytes.data(), 1, bytes.size(), probe) == bytes.size();
    const int write_errno = errno;
    errno = 0;
    const bool closed = std::fclose(probe) == 0;
    const int close_errno = errno;
    if (!wrote || !closed) why = std::strerror(!wrote ? write_errno : close_errno);
  } else {
    why = std::strerror(errno);
  }
  std::remove(temp_path.c_str());
  if (why.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot create file"));
  return absl::ResourceExhaustedError(
      absl::StrCat(path, ": cannot create file: ", why, " (disk full?)"));
}

}  // namespace

// ---------------------------------------------------------------- writer

struct H5Writer::State {
  std::string temp_path;
  Handle file;
  bool committed = false;

  absl::Status Error(const std::string& final_path, const std::string& object,
                     absl::string_view what) const {
    return absl::InternalError(absl::StrCat(final_path, ": ", object, ": ", what));
  }

  // Opens (creating parents and itself when missing) the group `path`.
  absl::StatusOr<Handle> Group(const std::string& final_path, const std::string& path) {
    if (path == "/") return Handle(H5Gopen2(file.get(), "/", H5P_DEFAULT), H5Gclose);
    std::string prefix;
    for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
      absl::StrAppend(&prefix, "/", part);
      if (H5Lexists(file.get(), prefix.c_str(), H5P_DEFAULT) <= 0) {
        Handle g(H5Gcreate2(file.get(), prefix.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                 H5Gclose);
        if (!g.valid()) return Error(final_path, prefix, "cannot create group");
      }
    }
    Handle g(H5Gopen2(file.get(), path.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.valid()) return Error(final_path, path, "not a group");
    return g;
  }

  absl::Status Dataset(const std::string& final_path, const std::string& name, hid_t mem_type,
                       const H5Shape& shape, const void* data, bool compress) {
    CIRCUIT_ASSIGN_OR_RETURN(Handle parent, Group(final_path, ParentOf(name)));
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                 H5Sclose);
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    uint64_t total = 1;
    for (uint64_t d : shape) total *= d;
    if (compress && total > 0 && !dims.empty()) {
      std::vector<hsize_t> chunk(dims);
      // Chunks of at most ~64k elements along the leading dimension.
      hsize_t row = total / std::max<hsize_t>(dims[0], 1);
      chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], 65536 / std::max<hsize_t>(row, 1)));
      H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
      H5Pset_shuffle(dcpl.get());
      H5Pset_deflate(dcpl.get(), 4);
    }
    Handle dset(H5Dcreate2(file.get(), name.c_str(), mem_type, space.get(), H5P_DEFAULT,
                           dcpl.get(), H5P_DEFAULT),
                H5Dclose);
    if (!dset.valid()) return Error(final_path, name, "cannot create dataset");
    if (total > 0 && H5Dwrite(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
      return Error(final_path, name, "write failed (disk full?)");
    }
    return absl::OkStatus();
  }

  absl::Status Attribute(const std::string& final_path, const std::string& object,
                         const std::string& name, hid_t type, const void* value) {
    CIRCUIT_ASSIGN_OR_RETURN(Handle obj, Group(final_path, object));
    if (H5Aexists(obj.get(), name.c_str()) > 0) H5Adelete(obj.get(), name.c_str());
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle attr(H5Acreate2(obj.get(), name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                H5Aclose);
    if (!attr.valid() || H5Awrite(attr.get(), type, value) < 0) {
      return Error(final_path, absl::StrCat(object, "@", name), "cannot write attribute");
    }
    return absl::OkStatus();
  }
};

H5Writer::H5Writer(std::string path, std::unique_ptr<State> state)
    : path_(std::move(path)), state_(std::move(state)) {}
H5Writer::H5Writer(H5Writer&&) noexcept = default;
H5Writer& H5Writer::operator=(H5Writer&&) noexcept = default;

H5Writer::~H5Writer() {
  if (state_ && !state_->committed) {
    state_->file.Reset();
    std::remove(state_->temp_path.c_str());
  }
}

absl::StatusOr<H5Writer> H5Writer::Create(const std::string& path) {
  SilenceHdf5();
  auto state = std::make_unique<State>();
  state->temp_path = absl::StrCat(path, ".tmp-", getpid(), "-", temp_counter++);
  state->file = Handle(H5Fcreate(state->temp_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                       H5Fclose);
  if (!state->file.valid()) return CreateError(path, state->temp_path);
  return H5Writer(path, std::move(state));
}

absl::Status H5Writer::WriteAttribute(const std::string& object, const std::string& name,
                                      int64_t value) {
  return state_->Attribute(path_, object, name, H5T_NATIVE_INT64, &value);
}
absl::Status H5Writer::WriteAttribute(const std::string& object, const std::string& name,
                                      double value) {
  return state_->Attribute(path_, object, name, H5T_NATIVE_DOUBLE, &value);
}
absl::Status H5Writer::WriteAttribute(const std::string& object, const std::string& name,
                                      const std::string& value) {
  Handle type = StringType();
  const char* c = value.c_str();
  return state_->Attribute(path_, object, name, type.get(), &c);
}

absl::Status H5Writer::WriteFloats(const std::string& dataset, const H5Shape& shape,
                                   absl::Span<const float> data, bool compress) {
  uint64_t total = 1;
  for (uint64_t d : shape) total *= d;
  CIRCUIT_CHECK(total == data.size());
  return state_->Dataset(path_, dataset, H5T_NATIVE_FLOAT, shape, data.data(), compress);
}
absl::Status H5Writer::WriteDoubles(const std::string& dataset, absl::Span<const double> data) {
  return state_->Dataset(path_, dataset, H5T_NATIVE_DOUBLE, {data.size()}, data.data(), false);
}
absl::Status H5Writer::WriteInt32s(const std::string& dataset, absl::Span<const int32_t> data) {
  return state_->Dataset(path_, dataset, H5T_NATIVE_INT32, {data.size()}, data.data(), false);
}
absl::Status H5Writer::WriteInt64s(const std::string& dataset, absl::Span<const int64_t> data) {
  return state_->Dataset(path_, dataset, H5T_NATIVE_INT64, {data.size()}, data.data(), false);
}
absl::Status H5Writer::WriteStrings(const std::string& dataset,
                                    const std::vector<std::string>& data) {
  std::vector<const char*> ptrs;
  ptrs.reserve(data.size());
  for (const std::string& s : data) ptrs.push_back(s.c_str());
  Handle type = StringType();
  return state_->Dataset(path_, dataset, type.get(), {data.size()}, ptrs.data(), false);
}
absl::Status H5Writer::WriteString(const std::string& dataset, const std::string& value) {
  CIRCUIT_ASSIGN_OR_RETURN(Handle parent, state_->Group(path_, ParentOf(dataset)));
  Handle type = StringType();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle dset(H5Dcreate2(state_->file.get(), dataset.c_str(), type.get(), space.get(),
                         H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Dclose);
  const char* c = value.c_str();
  if (!dset.valid() || H5Dwrite(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &c) < 0) {
    return state_->Error(path_, dataset, "cannot write string dataset");
  }
  return absl::OkStatus();
}

absl::Status H5Writer::Commit() {
  CIRCUIT_CHECK(!state_->committed);
  if (H5Fflush(state_->file.get(), H5F_SCOPE_GLOBAL) < 0) {
    return absl::ResourceExhaustedError(absl::StrCat(path_, ": flush failed (disk full?)"));
  }
  if (state_->file.Close() < 0) {  // a close that failed left a partial file
    std::remove(state_->temp_path.c_str());
    state_->committed = true;
    return absl::ResourceExhaustedError(absl::StrCat(path_, ": close failed (disk full?)"));
  }
  if (std::rename(state_->temp_path.c_str(), path_.c_str()) != 0) {
    std::remove(state_->temp_path.c_str());
    state_->committed = true;
    return absl::InternalError(absl::StrCat(path_, ": cannot move the finished file into place"));
  }
  state_->committed = true;
  return absl::OkStatus();
}

// ---------------------------------------------------------------- reader

struct H5Reader::State {
  Handle file;
};

H5Reader::H5Reader(std::string path, std::unique_ptr<State> state)
    : path_(std::move(path)), state_(std::move(state)) {}
H5Reader::H5Reader(H5Reader&&) noexcept = default;
H5Reader& H5Reader::operator=(H5Reader&&) noexcept = default;
H5Reader::~H5Reader() = default;

absl::StatusOr<H5Reader> H5Reader::Open(const std::string& path) {
  SilenceHdf5();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not an HDF5 file"));
  }
  auto state = std::make_unique<State>();
  state->file = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!state->file.valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot open as HDF5 (truncated or corrupted?)"));
  }
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

bool H5Reader::Exists(const std::string& object) const {
  return LinkExists(state_->file.get(), object);
}

bool H5Reader::HasAttribute(const std::string& object, const std::string& name) const {
  if (!Exists(object)) return false;
  return H5Aexists_by_name(state_->file.get(), object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

namespace {

// Opens attribute object@name and checks its type class.
absl::StatusOr<Handle> OpenAttribute(hid_t file, const std::string& path,
                                     const std::string& object, const std::string& name,
                                     H5T_class_t want, const char* want_name) {
  const std::string where = absl::StrCat(path, ": ", object, "@", name);
  if (!LinkExists(file, object) ||
      H5Aexists_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT) <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": missing attribute"));
  }
  Handle attr(H5Aopen_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose);
  if (!attr.valid()) return absl::InvalidArgumentError(absl::StrCat(where, ": unreadable"));
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  Handle space(H5Aget_space(attr.get()), H5Sclose);
  if (H5Tget_class(type.get()) != want || H5Sget_simple_extent_npoints(space.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": expected a scalar ", want_name));
  }
  return attr;
}

const char* ClassName(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    default: return "other";
  }
}

}  // namespace

absl::StatusOr<int64_t> H5Reader::ReadIntAttribute(const std::string& object,
                                                   const std::string& name) const {
  CIRCUIT_ASSIGN_OR_RETURN(Handle attr, OpenAttribute(state_->file.get(), path_, object, name,
                                                      H5T_INTEGER, "integer"));
  int64_t value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", object, "@", name, ": unreadable"));
  }
  return value;
}

absl::StatusOr<double> H5Reader::ReadDoubleAttribute(const std::string& object,
                                                     const std::string& name) const {
  // Integers are accepted where a number is expected.
  if (auto as_int = OpenAttribute(state_->file.get(), path_, object, name, H5T_INTEGER, "");
      as_int.ok()) {
    int64_t v = 0;
    H5Aread(as_int->get(), H5T_NATIVE_INT64, &v);
    return static_cast<double>(v);
  }
  CIRCUIT_ASSIGN_OR_RETURN(Handle attr, OpenAttribute(state_->file.get(), path_, object, name,
                                                      H5T_FLOAT, "number"));
  double value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", object, "@", name, ": unreadable"));
  }
  return value;
}

absl::StatusOr<std::string> H5Reader::ReadStringAttribute(const std::string& object,
                                                          const std::string& name) const {
  CIRCUIT_ASSIGN_OR_RETURN(Handle attr, OpenAttribute(state_->file.get(), path_, object, name,
                                                      H5T_STRING, "string"));
  Handle file_type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tis_variable_str(file_type.get()) > 0) {
    Handle type = StringReadType(file_type.get());
    char* c = nullptr;
    if (H5Aread(attr.get(), type.get(), &c) < 0 || c == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": ", object, "@", name, ": unreadable"));
    }
    std::string value(c);
    H5free_memory(c);
    if (!IsUtf8(value)) return NotUtf8(path_, absl::StrCat(object, "@", name));
    return value;
  }
  // Fixed-length strings (h5py writes these for numpy byte strings).
  const size_t size = H5Tget_size(file_type.get());
  hsize_t file_size = 0;
  H5Fget_filesize(state_->file.get(), &file_size);
  if (size == 0 || size > file_size) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", object, "@", name,
                                                   ": declares a string of ", size, " bytes"));
  }
  std::string value(size, '\0');
  if (H5Aread(attr.get(), file_type.get(), value.data()) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", object, "@", name, ": unreadable"));
  }
  value.resize(value.find('\0') == std::string::npos ? size : value.find('\0'));
  if (!IsUtf8(value)) return NotUtf8(path_, absl::StrCat(object, "@", name));
  return value;
}

absl::StatusOr<std::vector<std::string>> H5Reader::ListGroup(const std::string& group) const {
  Handle g(Exists(group) ? H5Gopen2(state_->file.get(), group.c_str(), H5P_DEFAULT) : -1,
           H5Gclose);
  if (!g.valid()) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", group, ": missing group"));
  }
  H5G_info_t info;
  H5Gget_info(g.get(), &info);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0,
                                   H5P_DEFAULT);
    if (n < 0) continue;
    std::string name(static_cast<size_t>(n), '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), n + 1,
                       H5P_DEFAULT);
    names.push_back(std::move(name));
  }
  return names;
}

namespace {

struct OpenDataset {
  Handle dset;
  Handle type;
  H5Shape shape;
};

absl::StatusOr<OpenDataset> OpenDs(hid_t file, const std::string& path, const std::string& name) {
  if (!LinkExists(file, name)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", name, ": missing dataset"));
  }
  OpenDataset d;
  d.dset = Handle(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.dset.valid()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", name, ": not a dataset"));
  }
  d.type = Handle(H5Dget_type(d.dset.get()), H5Tclose);
  Handle space(H5Dget_space(d.dset.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", name, ": unreadable dataspace"));
  }
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  d.shape.assign(dims.begin(), dims.end());
  return d;
}

// The most elements one dataset may hold: far above any model, circuit or
// results table this project writes, far below what would exhaust memory.
constexpr uint64_t kMaxElements = uint64_t{1} << 32;
// Deflate cannot shrink data by more than ~1032:1; a filtered dataset that
// claims more than this many bytes per stored byte is lying about its size.
constexpr uint64_t kMaxFilterRatio = 1100;

// Element count of `d`, checked before anything is allocated: the product of
// the declared dimensions must not overflow, must stay under kMaxElements, and
// must be backed by the bytes the file actually stores (a tiny file declaring a
// (2^30, 128) dataset with no storage is rejected here, not by bad_alloc).
absl::StatusOr<uint64_t> Elements(hid_t file, const std::string& path, const std::string& name,
                                  const OpenDataset& d) {
  uint64_t n = 1;
  for (uint64_t dim : d.shape) {
    if (dim != 0 && n > kMaxElements / dim) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", name, ": declared shape ",
                                                     ShapeString(d.shape), " is too large"));
    }
    n *= dim;
  }
  if (n > kMaxElements) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", name, ": declared shape ",
                                                   ShapeString(d.shape), " is too large"));
  }
  if (n == 0) return n;
  // Bytes each element needs in the file: its fixed size, or the (>= 8 byte)
  // heap reference of a variable-length string.
  const bool vlen = H5Tis_variable_str(d.type.get()) > 0;
  const uint64_t element_bytes =
      vlen ? 8 : std::max<uint64_t>(1, static_cast<uint64_t>(H5Tget_size(d.type.get())));
  hsize_t file_size = 0;
  H5Fget_filesize(file, &file_size);
  uint64_t stored = std::min<uint64_t>(H5Dget_storage_size(d.dset.get()), file_size);
  Handle dcpl(H5Dget_create_plist(d.dset.get()), H5Pclose);
  const bool filtered = dcpl.valid() && H5Pget_nfilters(dcpl.get()) > 0;
  if (filtered) stored = stored > UINT64_MAX / kMaxFilterRatio ? UINT64_MAX : stored * kMaxFilterRatio;
  if (n > stored / element_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", name, ": declares ", ShapeString(d.shape), " (", n, " elements) but stores ",
        H5Dget_storage_size(d.dset.get()), " bytes (truncated or corrupted file?)"));
  }
  return n;
}

// Reads a numeric 1-D (or any-rank) dataset of `want` class into `out`.
template <typename T>
absl::StatusOr<std::vector<T>> ReadNumeric(hid_t file, const std::string& path,
                                           const std::string& name, H5T_class_t want,
                                           hid_t mem_type, const H5Shape& expected_shape,
                                           size_t want_size) {
  CIRCUIT_ASSIGN_OR_RETURN(OpenDataset d, OpenDs(file, path, name));
  const H5T_class_t cls = H5Tget_class(d.type.get());
  const size_t size = H5Tget_size(d.type.get());
  if (cls != want || (want_size != 0 && size != want_size)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", name, ": expected ", ClassName(want), want_size ? absl::StrCat(want_size * 8) : "",
        ", got ", ClassName(cls), size * 8));
  }
  if (!expected_shape.empty() && d.shape != expected_shape) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", name, ": expected ",
                                                   ShapeString(expected_shape), ", got ",
                                                   ShapeString(d.shape)));
  }
  CIRCUIT_ASSIGN_OR_RETURN(const uint64_t n, Elements(file, path, name, d));
  std::vector<T> out(n);
  if (!out.empty() &&
      H5Dread(d.dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", name, ": read failed (truncated or corrupted file?)"));
  }
  return out;
}

}  // namespace

absl::StatusOr<H5Shape> H5Reader::DatasetShape(const std::string& dataset) const {
  CIRCUIT_ASSIGN_OR_RETURN(OpenDataset d, OpenDs(state_->file.get(), path_, dataset));
  return d.shape;
}

absl::StatusOr<std::vector<float>> H5Reader::ReadFloats(const std::string& dataset,
                                                        const H5Shape& expected_shape) const {
  return ReadNumeric<float>(state_->file.get(), path_, dataset, H5T_FLOAT, H5T_NATIVE_FLOAT,
                            expected_shape, 4);
}
absl::StatusOr<std::vector<double>> H5Reader::ReadDoubles(const std::string& dataset) const {
  return ReadNumeric<double>(state_->file.get(), path_, dataset, H5T_FLOAT, H5T_NATIVE_DOUBLE, {},
                             0);
}
absl::StatusOr<std::vector<int32_t>> H5Reader::ReadInt32s(const std::string& dataset) const {
  return ReadNumeric<int32_t>(state_->file.get(), path_, dataset, H5T_INTEGER, H5T_NATIVE_INT32,
                              {}, 0);
}
absl::StatusOr<std::vector<int64_t>> H5Reader::ReadInt64s(const std::string& dataset) const {
  return ReadNumeric<int64_t>(state_->file.get(), path_, dataset, H5T_INTEGER, H5T_NATIVE_INT64,
                              {}, 0);
}

absl::StatusOr<std::vector<std::string>> H5Reader::ReadStrings(const std::string& dataset) const {
  CIRCUIT_ASSIGN_OR_RETURN(OpenDataset d, OpenDs(state_->file.get(), path_, dataset));
  if (H5Tget_class(d.type.get()) != H5T_STRING) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", dataset, ": expected strings, got ",
                                                   ClassName(H5Tget_class(d.type.get()))));
  }
  CIRCUIT_ASSIGN_OR_RETURN(const uint64_t n, Elements(state_->file.get(), path_, dataset, d));
  std::vector<std::string> out;
  out.reserve(n);
  if (H5Tis_variable_str(d.type.get()) > 0) {
    std::vector<char*> ptrs(n, nullptr);
    Handle type = StringReadType(d.type.get());
    if (n > 0 && H5Dread(d.dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": ", dataset, ": read failed"));
    }
    bool utf8 = true;
    for (char* p : ptrs) {
      out.emplace_back(p ? p : "");
      utf8 = utf8 && IsUtf8(out.back());
      H5free_memory(p);
    }
    if (!utf8) return NotUtf8(path_, dataset);
    return out;
  }
  const size_t size = H5Tget_size(d.type.get());
  std::string buffer(n * size, '\0');
  if (n > 0 &&
      H5Dread(d.dset.get(), d.type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", dataset, ": read failed"));
  }
  for (uint64_t i = 0; i < n; ++i) {
    std::string s = buffer.substr(i * size, size);
    s.resize(std::min(s.size(), s.find('\0')));
    if (!IsUtf8(s)) return NotUtf8(path_, dataset);
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<std::string> H5Reader::ReadString(const std::string& dataset) const {
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> all, ReadStrings(dataset));
  if (all.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", dataset, ": expected one string, got ", all.size()));
  }
  return std::move(all[0]);
}

}  // namespace circuit
