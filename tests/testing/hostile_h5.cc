#include "testing/hostile_h5.h"

#include <hdf5.h>

namespace circuit::testing {
namespace {

hid_t TypeOf(HostileH5::Type type) {
  switch (type) {
    case HostileH5::kFloat32: return H5Tcopy(H5T_IEEE_F32LE);
    case HostileH5::kFloat64: return H5Tcopy(H5T_IEEE_F64LE);
    case HostileH5::kInt32: return H5Tcopy(H5T_STD_I32LE);
    case HostileH5::kInt64: return H5Tcopy(H5T_STD_I64LE);
    case HostileH5::kString: {
      hid_t t = H5Tcopy(H5T_C_S1);
      H5Tset_size(t, H5T_VARIABLE);
      return t;
    }
  }
  return -1;
}

// Removes object@name when present.
void DeleteAttribute(hid_t file, const std::string& object, const std::string& name) {
  if (H5Aexists_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT) > 0) {
    H5Adelete_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT);
  }
}

}  // namespace

HostileH5::HostileH5(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
}

HostileH5::~HostileH5() {
  if (file_ >= 0) H5Fclose(file_);
}

bool HostileH5::DeclareDataset(const std::string& dataset, const std::vector<uint64_t>& shape,
                               Type type) {
  if (!ok()) return false;
  if (H5Lexists(file_, dataset.c_str(), H5P_DEFAULT) > 0) H5Ldelete(file_, dataset.c_str(), H5P_DEFAULT);
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t t = TypeOf(type);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  // Contiguous layout allocates late: nothing is stored until something is written.
  hid_t dset = H5Dcreate2(file_, dataset.c_str(), t, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  const bool created = dset >= 0;
  if (created) H5Dclose(dset);
  H5Pclose(lcpl);
  H5Tclose(t);
  H5Sclose(space);
  return created;
}

bool HostileH5::SetInt(const std::string& object, const std::string& name, int64_t value) {
  if (!ok()) return false;
  DeleteAttribute(file_, object, name);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate_by_name(file_, object.c_str(), name.c_str(), H5T_STD_I64LE, space,
                                 H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const bool written = attr >= 0 && H5Awrite(attr, H5T_NATIVE_INT64, &value) >= 0;
  if (attr >= 0) H5Aclose(attr);
  H5Sclose(space);
  return written;
}

bool HostileH5::SetBytes(const std::string& object, const std::string& name,
                         const std::string& bytes) {
  if (!ok()) return false;
  DeleteAttribute(file_, object, name);
  hid_t t = TypeOf(kString);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate_by_name(file_, object.c_str(), name.c_str(), t, space, H5P_DEFAULT,
                                 H5P_DEFAULT, H5P_DEFAULT);
  const char* c = bytes.c_str();
  const bool written = attr >= 0 && H5Awrite(attr, t, &c) >= 0;
  if (attr >= 0) H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(t);
  return written;
}

}  // namespace circuit::testing
