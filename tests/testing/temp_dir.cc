#include "testing/temp_dir.h"

#include <cstdlib>
#include <filesystem>

namespace circuit::testing {

TempDir::TempDir() {
  std::string templ = (std::filesystem::temp_directory_path() / "circuit-test-XXXXXX").string();
  char* made = mkdtemp(templ.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string SourceDir() {
  const char* dir = std::getenv("CIRCUIT_SOURCE_DIR");
  return dir ? dir : ".";
}

std::string BinaryDir() {
  const char* dir = std::getenv("CIRCUIT_BINARY_DIR");
  return dir ? dir : "build";
}

}  // namespace circuit::testing
