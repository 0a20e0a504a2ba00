// A fresh temporary directory per test, removed with its contents afterwards.
#ifndef CIRCUIT_TESTING_TEMP_DIR_H_
#define CIRCUIT_TESTING_TEMP_DIR_H_

#include <string>

namespace circuit::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The source tree (for data/ files), from CIRCUIT_SOURCE_DIR set by ctest.
std::string SourceDir();
// The build tree (for build/bin/circuit), from CIRCUIT_BINARY_DIR set by ctest.
std::string BinaryDir();

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTING_TEMP_DIR_H_
