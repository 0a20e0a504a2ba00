// Mean cache: recording, averaging, HDF5 round trip.
#include "circuit/prune/mean_cache.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "circuit/core/any_model.h"
#include "circuit/core/corpus.h"
#include "circuit/core/digest.h"
#include "circuit/core/h5.h"
#include "circuit/core/status.h"

namespace circuit::prune {
namespace {

constexpr char kFormat[] = "circuit.means";

std::string SiteDataset(int site, const SiteLayout& layout) {
  const SiteSpec s = layout.At(site);
  return absl::StrCat("/means/", s.layer, "/", std::string(LocationName(s.location)));
}

}  // namespace

std::string TokensDigest(const torch::Tensor& tokens) {
  const torch::Tensor t = tokens.to(torch::kCPU, torch::kInt64).contiguous();
  Digest d;
  for (int64_t i = 0; i < t.dim(); ++i) {
    const int64_t size = t.size(i);
    d.Update(&size, sizeof(size));
  }
  d.Update(t.data_ptr<int64_t>(), t.numel() * sizeof(int64_t));
  return d.Hex();
}

absl::StatusOr<torch::Tensor> CorpusMeanWindows(const std::string& corpus_dir, int vocab_size,
                                                int n_ctx, int max_windows, std::string* source) {
  CIRCUIT_ASSIGN_OR_RETURN(CorpusSummary manifest, ReadCorpusManifest(corpus_dir));
  CIRCUIT_ASSIGN_OR_RETURN(TokenFile val, TokenFile::Open(corpus_dir + "/val.bin", vocab_size));
  const int64_t length = n_ctx;
  const int64_t n = std::min<int64_t>(max_windows, val.size() / length);
  if (n < 1) {
    return absl::InvalidArgumentError(absl::StrCat(corpus_dir, "/val.bin: ", val.size(),
                                                   " tokens, fewer than one window of ", length));
  }
  const int64_t stride = val.size() / n;  // >= length
  torch::Tensor windows = torch::empty({n, length}, torch::kInt64);
  int64_t* w = windows.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = 0; t < length; ++t) w[i * length + t] = val.data()[i * stride + t];
  }
  *source = absl::StrCat("corpus ", corpus_dir, " val split (digest ", manifest.val.digest, "), ", n,
                         " windows of ", length, " tokens");
  return windows;
}

absl::StatusOr<MeanCache> ComputeMeans(const TapModel& model, const torch::Tensor& windows,
                                       int batch_windows) {
  if (!windows.defined() || windows.dim() != 2 || windows.numel() == 0) {
    return absl::InvalidArgumentError("means: token windows must be a non-empty (N, T) tensor");
  }
  if (windows.size(1) > model.n_ctx()) {
    return absl::InvalidArgumentError(absl::StrCat("means: windows of ", windows.size(1),
                                                   " tokens exceed n_ctx ", model.n_ctx()));
  }
  const torch::Tensor tokens = windows.to(torch::kInt64);
  const int64_t lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
  if (lo < 0 || hi >= model.vocab_size()) {
    return absl::InvalidArgumentError(absl::StrCat("means: token id ", lo < 0 ? lo : hi,
                                                   " outside the vocabulary of ",
                                                   model.vocab_size()));
  }
  torch::NoGradGuard no_grad;
  Taps taps(model.layout());
  const int sites = taps.num_sites();
  std::vector<torch::Tensor> sums(sites);  // float64 sums per site: (width)
  // Summed as the pass goes, so that no site's (B, T, width) activations outlive
  // their layer (a paper-size model's 65 sites of a 1,024-token window: 0.75 GB).
  taps.Add([&sums](const TapSite& site, const torch::Tensor& x) {
    const torch::Tensor part = x.to(torch::kFloat64).sum(std::vector<int64_t>{0, 1});
    sums[site.site] = sums[site.site].defined() ? sums[site.site] + part : part;
    return x;
  });
  const int64_t N = tokens.size(0), step = std::max(1, batch_windows);
  for (int64_t start = 0; start < N; start += step) {
    model.Forward(tokens.slice(0, start, std::min(N, start + step)).to(model.device()), &taps);
  }
  MeanCache cache;
  cache.n_tokens = tokens.numel();
  cache.source_digest = TokensDigest(tokens);
  cache.means.resize(sites);
  for (int s = 0; s < sites; ++s) {
    cache.means[s] = (sums[s] / static_cast<double>(cache.n_tokens)).to(torch::kFloat32);
  }
  return cache;
}

std::string MeansPathFor(const std::string& model_path) {
  if (absl::EndsWith(model_path, ".h5")) {
    return absl::StrCat(model_path.substr(0, model_path.size() - 3), ".means.h5");
  }
  return absl::StrCat(model_path, ".means.h5");
}

absl::Status SaveCorpusMeans(const std::string& model_path, const std::string& corpus_dir,
                             torch::Device device) {
  CIRCUIT_ASSIGN_OR_RETURN(AnyModelFile file, LoadAnyModel(model_path, device));
  const TapModel& model = *file.model;
  std::string source;
  CIRCUIT_ASSIGN_OR_RETURN(
      torch::Tensor windows,
      CorpusMeanWindows(corpus_dir, model.vocab_size(), model.n_ctx(), 64, &source));
  CIRCUIT_ASSIGN_OR_RETURN(MeanCache cache, ComputeMeans(model, windows));
  cache.model_digest = file.digest;
  cache.source = source;
  return SaveMeans(MeansPathFor(model_path), cache, model.layout());
}

std::string MeansPathForSource(const std::string& default_path, const SiteLayout& layout,
                               const std::string& model_digest, const std::string& source_digest) {
  absl::StatusOr<MeanCache> cached = LoadMeans(default_path, layout);
  if (!cached.ok() || cached->model_digest != model_digest ||
      cached->source_digest == source_digest) {
    return default_path;
  }
  std::string stem = default_path;
  if (absl::EndsWith(stem, ".means.h5")) stem.resize(stem.size() - 9);
  return absl::StrCat(stem, ".means-", source_digest, ".h5");
}

absl::Status SaveMeans(const std::string& path, const MeanCache& cache, const SiteLayout& layout) {
  CIRCUIT_CHECK(static_cast<int>(cache.means.size()) == layout.num_sites());
  CIRCUIT_ASSIGN_OR_RETURN(H5Writer w, H5Writer::Create(path));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "format", kFormat));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "format_version", kMeansFormatVersion));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "model_digest", cache.model_digest));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "source_digest", cache.source_digest));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "source", cache.source));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "n_tokens", cache.n_tokens));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "n_layer", static_cast<int64_t>(layout.n_layer())));
  for (size_t s = 0; s < cache.means.size(); ++s) {
    const torch::Tensor m = cache.means[s].to(torch::kCPU, torch::kFloat32).contiguous();
    CIRCUIT_RETURN_IF_ERROR(w.WriteFloats(SiteDataset(static_cast<int>(s), layout),
                                          {static_cast<uint64_t>(m.numel())},
                                          absl::MakeConstSpan(m.data_ptr<float>(), m.numel())));
  }
  return w.Commit();
}

absl::StatusOr<MeanCache> LoadMeans(const std::string& path, const SiteLayout& layout,
                                    torch::Device device) {
  if (!std::filesystem::exists(path)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  CIRCUIT_ASSIGN_OR_RETURN(H5Reader r, H5Reader::Open(path));
  CIRCUIT_RETURN_IF_ERROR(r.CheckFormat(kFormat, kMeansFormatVersion));
  MeanCache cache;
  CIRCUIT_ASSIGN_OR_RETURN(cache.model_digest, r.ReadStringAttribute("/", "model_digest"));
  CIRCUIT_ASSIGN_OR_RETURN(cache.source_digest, r.ReadStringAttribute("/", "source_digest"));
  CIRCUIT_ASSIGN_OR_RETURN(cache.source, r.ReadStringAttribute("/", "source"));
  CIRCUIT_ASSIGN_OR_RETURN(cache.n_tokens, r.ReadIntAttribute("/", "n_tokens"));
  CIRCUIT_ASSIGN_OR_RETURN(int64_t n_layer, r.ReadIntAttribute("/", "n_layer"));
  if (n_layer != layout.n_layer()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": n_layer ", n_layer, " but the model has ", layout.n_layer()));
  }
  const int sites = layout.num_sites();
  cache.means.resize(sites);
  for (int s = 0; s < sites; ++s) {
    const uint64_t width = layout.width(s);
    CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> v, r.ReadFloats(SiteDataset(s, layout), {width}));
    for (size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i]) || std::fabs(v[i]) > kMeanMagnitudeLimit) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": ", SiteDataset(s, layout), "[", i, "] is ", v[i],
            std::isfinite(v[i]) ? absl::StrCat(", beyond ", kMeanMagnitudeLimit) : "",
            ": not a mean of activations (damaged cache)"));
      }
    }
    cache.means[s] = torch::tensor(v, torch::kFloat32).to(device);
  }
  return cache;
}

absl::StatusOr<MeanCache> LoadOrComputeMeans(const std::string& path, const TapModel& model,
                                             const std::string& model_digest,
                                             const torch::Tensor& windows,
                                             const std::string& source, bool* reused,
                                             std::string* note) {
  *reused = false;
  const std::string source_digest = TokensDigest(windows);
  if (!path.empty()) {
    absl::StatusOr<MeanCache> cached = LoadMeans(path, model.layout(), model.device());
    if (cached.ok() && cached->model_digest == model_digest &&
        cached->source_digest == source_digest) {
      *reused = true;
      return cached;
    }
    if (!cached.ok() && !absl::IsNotFound(cached.status()) && note != nullptr) {
      *note = absl::StrCat("ignored unreadable mean cache: ", cached.status().message());
    }
  }
  CIRCUIT_ASSIGN_OR_RETURN(MeanCache cache, ComputeMeans(model, windows));
  cache.model_digest = model_digest;
  cache.source = source;
  if (!path.empty()) {
    absl::Status saved = SaveMeans(path, cache, model.layout());
    if (!saved.ok() && note != nullptr) {
      *note = absl::StrCat("could not save the mean cache: ", saved.message());
    }
  }
  return cache;
}

}  // namespace circuit::prune
