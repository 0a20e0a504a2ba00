// Content digests: 64-bit FNV-1a, printed as 16 hex digits. Used to key caches
// (mean cache, corpus) and to name the model a circuit came from. Not cryptographic.
//
//   Digest d;
//   d.Update(bytes);
//   std::string hex = d.Hex();
#ifndef CIRCUIT_CORE_DIGEST_H_
#define CIRCUIT_CORE_DIGEST_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace circuit {

class Digest {
 public:
  void Update(const void* data, size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) {
      state_ ^= p[i];
      state_ *= 0x100000001b3ULL;
    }
  }
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  uint64_t value() const { return state_; }
  std::string Hex() const {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(state_));
    return buf;
  }

 private:
  uint64_t state_ = 0xcbf29ce484222325ULL;
};

inline std::string DigestHex(std::string_view s) {
  Digest d;
  d.Update(s);
  return d.Hex();
}

}  // namespace circuit

#endif  // CIRCUIT_CORE_DIGEST_H_
