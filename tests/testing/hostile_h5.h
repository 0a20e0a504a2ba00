// Turns a valid HDF5 file into a hostile one in place, through the HDF5 C API:
// for the readers' tests of files that lie about their sizes or their text.
//
//   HostileH5 h(path);                                   // opens read-write
//   h.DeclareDataset("/nodes/layer", {uint64_t{1} << 40}, HostileH5::kInt32);
//   h.SetInt("/", "n_layer", 1000000000);
//   h.SetBytes("/", "task", "caf\xe9");                   // not UTF-8
#ifndef CIRCUIT_TESTING_HOSTILE_H5_H_
#define CIRCUIT_TESTING_HOSTILE_H5_H_

#include <cstdint>
#include <string>
#include <vector>

namespace circuit::testing {

class HostileH5 {
 public:
  enum Type { kFloat32, kFloat64, kInt32, kInt64, kString };

  // Opens `path` for writing; ok() is false when that fails.
  explicit HostileH5(const std::string& path);
  ~HostileH5();  // closes (and so saves) the file
  HostileH5(const HostileH5&) = delete;
  HostileH5& operator=(const HostileH5&) = delete;

  bool ok() const { return file_ >= 0; }
  // Replaces (or creates) `dataset` with one that declares `shape` of `type` but
  // stores nothing: a tiny file that claims a huge array. False on failure.
  bool DeclareDataset(const std::string& dataset, const std::vector<uint64_t>& shape, Type type);
  // Replaces the attribute object@name with an int64 / a string of raw bytes.
  bool SetInt(const std::string& object, const std::string& name, int64_t value);
  bool SetBytes(const std::string& object, const std::string& name, const std::string& bytes);

 private:
  int64_t file_ = -1;  // hid_t
};

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTING_HOSTILE_H5_H_
