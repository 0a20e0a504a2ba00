// How an H5Reader and its child process (h5_child.cc) talk: requests and
// results as flat bytes, in this machine's byte order (both sides are the same
// program). Reading checks every count against the bytes left before it
// allocates, so a malformed message is a failed read, never a large
// allocation. Private to libcircuit.
#ifndef CIRCUIT_LIBCIRCUIT_SRC_H5_WIRE_H_
#define CIRCUIT_LIBCIRCUIT_SRC_H5_WIRE_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "io/h5_internal.h"

namespace circuit::h5_internal {

class WireOut {
 public:
  void Raw(const void* data, size_t n) { bytes_.append(static_cast<const char*>(data), n); }
  void U64(uint64_t v) { Raw(&v, sizeof v); }
  std::string Take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class WireIn {
 public:
  explicit WireIn(absl::string_view bytes) : rest_(bytes) {}
  bool Raw(void* data, size_t n) {
    if (n > rest_.size()) return false;
    if (n > 0) std::memcpy(data, rest_.data(), n);
    rest_.remove_prefix(n);
    return true;
  }
  bool U64(uint64_t* v) { return Raw(v, sizeof *v); }
  size_t left() const { return rest_.size(); }

 private:
  absl::string_view rest_;
};

inline void Put(WireOut& w, bool v) { w.U64(v ? 1 : 0); }
inline void Put(WireOut& w, int64_t v) { w.Raw(&v, sizeof v); }
inline void Put(WireOut& w, double v) { w.Raw(&v, sizeof v); }
inline void Put(WireOut& w, const std::string& s) {
  w.U64(s.size());
  w.Raw(s.data(), s.size());
}
template <typename T>
void Put(WireOut& w, const std::vector<T>& v) {
  w.U64(v.size());
  if constexpr (std::is_arithmetic_v<T>) {
    w.Raw(v.data(), v.size() * sizeof(T));
  } else {
    for (const T& x : v) Put(w, x);
  }
}

inline bool Get(WireIn& r, bool* v) {
  uint64_t x = 0;
  if (!r.U64(&x) || x > 1) return false;
  *v = x == 1;
  return true;
}
inline bool Get(WireIn& r, int64_t* v) { return r.Raw(v, sizeof *v); }
inline bool Get(WireIn& r, double* v) { return r.Raw(v, sizeof *v); }
inline bool Get(WireIn& r, std::string* s) {
  uint64_t n = 0;
  if (!r.U64(&n) || n > r.left()) return false;
  s->resize(n);
  return r.Raw(s->data(), n);
}
template <typename T>
bool Get(WireIn& r, std::vector<T>* v) {
  uint64_t n = 0;
  if (!r.U64(&n)) return false;
  if constexpr (std::is_arithmetic_v<T>) {
    if (n > r.left() / sizeof(T)) return false;
    v->resize(n);
    return r.Raw(v->data(), n * sizeof(T));
  } else {
    if (n > r.left() / sizeof(uint64_t)) return false;  // each element has a length
    v->resize(n);
    for (T& x : *v) {
      if (!Get(r, &x)) return false;
    }
    return true;
  }
}

inline void PutRequest(WireOut& w, const Request& q) {
  w.U64(static_cast<uint64_t>(q.op));
  Put(w, q.object);
  Put(w, q.name);
  Put(w, q.shape);
}
inline bool GetRequest(WireIn& r, Request* q) {
  uint64_t op = 0;
  if (!r.U64(&op)) return false;
  q->op = static_cast<Op>(op);
  return Get(r, &q->object) && Get(r, &q->name) && Get(r, &q->shape) && r.left() == 0;
}

// A result: the status (code and message), then the value when it is OK.
template <typename T>
void PutResult(WireOut& w, const absl::StatusOr<T>& result) {
  w.U64(static_cast<uint64_t>(result.status().code()));
  Put(w, std::string(result.status().message()));
  if (result.ok()) Put(w, *result);
}
// False when `bytes` is not one whole result of type T.
template <typename T>
bool GetResult(absl::string_view bytes, absl::StatusOr<T>* result) {
  WireIn r(bytes);
  uint64_t code = 0;
  std::string message;
  if (!r.U64(&code) || code > static_cast<uint64_t>(absl::StatusCode::kUnauthenticated) ||
      !Get(r, &message)) {
    return false;
  }
  if (code != 0) {
    *result = absl::Status(static_cast<absl::StatusCode>(code), message);
    return r.left() == 0;
  }
  T value{};
  if (!Get(r, &value) || r.left() != 0) return false;
  *result = std::move(value);
  return true;
}

}  // namespace circuit::h5_internal

#endif  // CIRCUIT_LIBCIRCUIT_SRC_H5_WIRE_H_
