// LocalReader: HDF5 through its C API in this process, wrapped so that no
// handle leaks, no declared size is trusted and every failure becomes a Status
// that names the file and the object. Only the child process of an H5Reader
// runs it (h5_child.cc): a file on which libhdf5 crashes or hangs takes that
// process down, not the caller's.
#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"
#include "io/h5_internal.h"

namespace circuit::h5_internal {
namespace {

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
}  // namespace

absl::StatusOr<LocalReader> LocalReader::Open(const std::string& path) {
  SilenceHdf5();
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot open as HDF5 (truncated or corrupted?)"));
  }
  return LocalReader(path, std::move(file));
}

absl::StatusOr<bool> LocalReader::Exists(const std::string& object) const {
  return LinkExists(file_.get(), object);
}

absl::StatusOr<bool> LocalReader::HasAttribute(const std::string& object,
                                               const std::string& name) const {
  if (!LinkExists(file_.get(), object)) return false;
  return H5Aexists_by_name(file_.get(), object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

namespace {

// Opens attribute object@name and checks its type class.
absl::StatusOr<Handle> OpenAttribute(hid_t file, const std::string& path, const std::string& object,
                                     const std::string& name, H5T_class_t want,
                                     const char* want_name) {
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
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "float";
    case H5T_STRING:
      return "string";
    default:
      return "other";
  }
}

}  // namespace

absl::StatusOr<int64_t> LocalReader::ReadIntAttribute(const std::string& object,
                                                      const std::string& name) const {
  CIRCUIT_ASSIGN_OR_RETURN(Handle attr,
                           OpenAttribute(file_.get(), path_, object, name, H5T_INTEGER, "integer"));
  int64_t value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", object, "@", name, ": unreadable"));
  }
  return value;
}

absl::StatusOr<double> LocalReader::ReadDoubleAttribute(const std::string& object,
                                                        const std::string& name) const {
  // Integers are accepted where a number is expected.
  if (auto as_int = OpenAttribute(file_.get(), path_, object, name, H5T_INTEGER, ""); as_int.ok()) {
    int64_t v = 0;
    H5Aread(as_int->get(), H5T_NATIVE_INT64, &v);
    return static_cast<double>(v);
  }
  CIRCUIT_ASSIGN_OR_RETURN(Handle attr,
                           OpenAttribute(file_.get(), path_, object, name, H5T_FLOAT, "number"));
  double value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", object, "@", name, ": unreadable"));
  }
  return value;
}

absl::StatusOr<std::string> LocalReader::ReadStringAttribute(const std::string& object,
                                                             const std::string& name) const {
  CIRCUIT_ASSIGN_OR_RETURN(Handle attr,
                           OpenAttribute(file_.get(), path_, object, name, H5T_STRING, "string"));
  Handle file_type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tis_variable_str(file_type.get()) > 0) {
    Handle type = StringReadType(file_type.get());
    char* c = nullptr;
    if (H5Aread(attr.get(), type.get(), &c) < 0 || c == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": ", object, "@", name, ": unreadable"));
    }
    std::string value(c);
    H5free_memory(c);
    if (!IsUtf8(value)) return NotUtf8(path_, absl::StrCat(object, "@", name));
    return value;
  }
  // Fixed-length strings (h5py writes these for numpy byte strings).
  const size_t size = H5Tget_size(file_type.get());
  hsize_t file_size = 0;
  H5Fget_filesize(file_.get(), &file_size);
  if (size == 0 || size > file_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", object, "@", name, ": declares a string of ", size, " bytes"));
  }
  std::string value(size, '\0');
  if (H5Aread(attr.get(), file_type.get(), value.data()) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", object, "@", name, ": unreadable"));
  }
  value.resize(value.find('\0') == std::string::npos ? size : value.find('\0'));
  if (!IsUtf8(value)) return NotUtf8(path_, absl::StrCat(object, "@", name));
  return value;
}

absl::StatusOr<std::vector<std::string>> LocalReader::ListGroup(const std::string& group) const {
  Handle g(LinkExists(file_.get(), group) ? H5Gopen2(file_.get(), group.c_str(), H5P_DEFAULT) : -1,
           H5Gclose);
  if (!g.valid()) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", group, ": missing group"));
  }
  H5G_info_t info;
  H5Gget_info(g.get(), &info);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n =
        H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
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

absl::StatusOr<uint64_t> Elements(hid_t file, const std::string& path, const std::string& name,
                                  const OpenDataset& d) {
  return CheckedElements(file, d.dset.get(), d.type.get(), d.shape, path, name);
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
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", name, ": expected ", ClassName(want),
                                                   want_size ? absl::StrCat(want_size * 8) : "",
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

absl::StatusOr<H5Shape> LocalReader::DatasetShape(const std::string& dataset) const {
  CIRCUIT_ASSIGN_OR_RETURN(OpenDataset d, OpenDs(file_.get(), path_, dataset));
  return d.shape;
}

absl::StatusOr<std::vector<float>> LocalReader::ReadFloats(const std::string& dataset,
                                                           const H5Shape& expected_shape) const {
  return ReadNumeric<float>(file_.get(), path_, dataset, H5T_FLOAT, H5T_NATIVE_FLOAT,
                            expected_shape, 4);
}
absl::StatusOr<std::vector<double>> LocalReader::ReadDoubles(const std::string& dataset) const {
  return ReadNumeric<double>(file_.get(), path_, dataset, H5T_FLOAT, H5T_NATIVE_DOUBLE, {}, 0);
}
absl::StatusOr<std::vector<int32_t>> LocalReader::ReadInt32s(const std::string& dataset) const {
  return ReadNumeric<int32_t>(file_.get(), path_, dataset, H5T_INTEGER, H5T_NATIVE_INT32, {}, 0);
}
absl::StatusOr<std::vector<int64_t>> LocalReader::ReadInt64s(const std::string& dataset) const {
  return ReadNumeric<int64_t>(file_.get(), path_, dataset, H5T_INTEGER, H5T_NATIVE_INT64, {}, 0);
}

absl::StatusOr<std::vector<std::string>> LocalReader::ReadStrings(
    const std::string& dataset) const {
  CIRCUIT_ASSIGN_OR_RETURN(OpenDataset d, OpenDs(file_.get(), path_, dataset));
  if (H5Tget_class(d.type.get()) != H5T_STRING) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", dataset, ": expected strings, got ",
                                                   ClassName(H5Tget_class(d.type.get()))));
  }
  CIRCUIT_ASSIGN_OR_RETURN(const uint64_t n, Elements(file_.get(), path_, dataset, d));
  std::vector<std::string> out;
  out.reserve(n);
  if (H5Tis_variable_str(d.type.get()) > 0) {
    std::vector<char*> ptrs(n, nullptr);
    Handle type = StringReadType(d.type.get());
    if (n > 0 &&
        H5Dread(d.dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) {
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

absl::StatusOr<std::string> LocalReader::ReadString(const std::string& dataset) const {
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> all, ReadStrings(dataset));
  if (all.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", dataset, ": expected one string, got ", all.size()));
  }
  return std::move(all[0]);
}

}  // namespace circuit::h5_internal
