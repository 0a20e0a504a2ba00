// Helpers shared by the fuzz targets: the readers under test take file paths,
// so each input is written to one scratch file per process first.
#ifndef CIRCUIT_TESTS_FUZZ_FUZZ_INPUT_H_
#define CIRCUIT_TESTS_FUZZ_FUZZ_INPUT_H_

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

namespace circuit::fuzz {

// Writes `size` bytes to a per-process scratch file ending in `suffix` (in
// $TMPDIR, else /dev/shm, else /tmp) and returns its path.
inline std::string WriteInput(const uint8_t* data, size_t size, const std::string& suffix) {
  static const std::string dir = [] {
    if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') return std::string(t);
    return std::string(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
  }();
  const std::string path = dir + "/circuit-fuzz-" + std::to_string(getpid()) + suffix;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// The fuzzer's bytes as a string.
inline std::string AsString(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace circuit::fuzz

#endif  // CIRCUIT_TESTS_FUZZ_FUZZ_INPUT_H_
