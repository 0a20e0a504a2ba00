// Training batches for the trainer: random windows of `window` tokens drawn
// from a token sequence, reproducible from (seed, step) alone — so a resumed
// run needs no sampler state beyond the step — and a fixed, evenly spaced set
// of validation windows. Private to the trainer.
#ifndef CIRCUIT_CORE_SRC_TRAIN_DATA_H_
#define CIRCUIT_CORE_SRC_TRAIN_DATA_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>

namespace circuit::internal {

class WindowSampler {
 public:
  // Copies tokens [offset, offset + count) into out.
  using Reader = std::function<void(int64_t offset, int64_t count, int64_t* out)>;

  // num_tokens >= window is checked by the caller.
  WindowSampler(int64_t num_tokens, int64_t window, Reader reader)
      : num_tokens_(num_tokens), window_(window), reader_(std::move(reader)) {}

  // (batch, window) int64: the batch of optimiser step `step`; start offsets are
  // uniform over [0, num_tokens - window], drawn from a generator seeded by (seed, step).
  torch::Tensor RandomBatch(uint64_t seed, int64_t step, int batch) const;
  // (count, window) int64: windows starting at evenly spaced offsets from 0 to
  // num_tokens - window (overlapping when the sequence is short).
  torch::Tensor FixedWindows(int count) const;

  int64_t num_tokens() const { return num_tokens_; }
  int64_t window() const { return window_; }

 private:
  torch::Tensor Gather(const std::vector<int64_t>& offsets) const;
  int64_t num_tokens_;
  int64_t window_;
  Reader reader_;
};

// SplitMix64: a well-mixed 64-bit value from (seed, stream).
uint64_t MixSeed(uint64_t seed, uint64_t stream);

}  // namespace circuit::internal

#endif  // CIRCUIT_CORE_SRC_TRAIN_DATA_H_
