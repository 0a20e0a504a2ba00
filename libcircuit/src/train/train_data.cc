#include "train/train_data.h"

#include <random>
#include <vector>

namespace circuit::internal {

uint64_t MixSeed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

torch::Tensor WindowSampler::Gather(const std::vector<int64_t>& offsets) const {
  torch::Tensor out = torch::empty({static_cast<int64_t>(offsets.size()), window_}, torch::kInt64);
  int64_t* data = out.data_ptr<int64_t>();
  for (size_t i = 0; i < offsets.size(); ++i) reader_(offsets[i], window_, data + i * window_);
  return out;
}

torch::Tensor WindowSampler::RandomBatch(uint64_t seed, int64_t step, int batch) const {
  // mt19937_64 output is fixed by the standard; reduce it ourselves rather than
  // through a std:: distribution, whose algorithm differs between libraries.
  std::mt19937_64 gen(MixSeed(seed, static_cast<uint64_t>(step)));
  const uint64_t range = static_cast<uint64_t>(num_tokens_ - window_) + 1;
  std::vector<int64_t> offsets(batch);
  for (int64_t& o : offsets) o = static_cast<int64_t>(gen() % range);
  return Gather(offsets);
}

torch::Tensor WindowSampler::FixedWindows(int count) const {
  const int64_t last = num_tokens_ - window_;
  std::vector<int64_t> offsets(count);
  for (int i = 0; i < count; ++i) offsets[i] = count == 1 ? 0 : last * i / (count - 1);
  return Gather(offsets);
}

}  // namespace circuit::internal
