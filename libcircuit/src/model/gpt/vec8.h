// Eight floats as one GCC/clang vector: one AVX2 register in the kernels'
// AVX2 copies, two SSE ones in their baseline copies (target_clones). No
// vector crosses a call (the helpers are inlined and take references), since
// the ABI of vector arguments differs with AVX (clang refuses such calls in
// the baseline copy).
#ifndef CIRCUIT_MODEL_GPT_VEC8_H_
#define CIRCUIT_MODEL_GPT_VEC8_H_

#include <cstdint>

namespace circuit::internal {

using F8 = float __attribute__((vector_size(32)));
using I8 = int32_t __attribute__((vector_size(32)));
// Eight floats at any float's address (unaligned loads and stores).
using F8u = float __attribute__((vector_size(32), aligned(4), may_alias));

[[gnu::always_inline]] inline const F8u& At(const float* p) {
  return *reinterpret_cast<const F8u*>(p);
}
[[gnu::always_inline]] inline F8u& At(float* p) { return *reinterpret_cast<F8u*>(p); }

// An 8 × 8 tile, r[i] its row i, transposed in place: unpack pairs of rows,
// then pairs of pairs, then swap the 128-bit halves.
[[gnu::always_inline]] inline void Transpose8x8(F8 (&r)[8]) {
  F8 a[8], b[8];
  for (int i = 0; i < 8; i += 2) {
    a[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    a[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4) {  // b[i + c]: columns c and c + 4 of rows i..i+3
    b[i] = __builtin_shufflevector(a[i], a[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
    b[i + 1] = __builtin_shufflevector(a[i], a[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    b[i + 2] = __builtin_shufflevector(a[i + 1], a[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
    b[i + 3] = __builtin_shufflevector(a[i + 1], a[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = __builtin_shufflevector(b[c], b[c + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    r[c + 4] = __builtin_shufflevector(b[c], b[c + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

}  // namespace circuit::internal

#endif  // CIRCUIT_MODEL_GPT_VEC8_H_
