// H5Writer: a new HDF5 file under a temporary name, renamed into place on
// Commit(); every failure becomes a Status that names the file and the object.
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
#include "absl/strings/str_split.h"
#include "circuit/core/h5.h"
#include "circuit/core/status.h"
#include "io/h5_internal.h"

namespace circuit {
namespace {

using h5_internal::Handle;
using h5_internal::SilenceHdf5;
using h5_internal::StringType;

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

std::atomic<int> temp_counter{0};

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

}  // namespace circuit
