// Per-node means over pretraining text, the values mean ablation substitutes
// (PAPER.md §4.3): one constant per channel, averaged over every token position
// of the given windows, recorded after AbsTopK. Cached next to the model as
// `<model>.means.h5`, keyed by the model's weights digest and the text's digest.
//
//   CIRCUIT_ASSIGN_OR_RETURN(MeanCache cache, ComputeMeans(model, windows));   // windows: (N, T)
//   CIRCUIT_RETURN_IF_ERROR(SaveMeans(MeansPathFor("model.h5"), cache, model.layout()));
//   const torch::Tensor& m = cache.means[site];                                // (width)
#ifndef CIRCUIT_PRUNE_MEAN_CACHE_H_
#define CIRCUIT_PRUNE_MEAN_CACHE_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "circuit/core/taps.h"

namespace circuit::prune {

inline constexpr int64_t kMeansFormatVersion = 1;

struct MeanCache {
  std::string model_digest;   // WeightsDigest of the model the means belong to
  std::string source_digest;  // digest of the token windows they were taken over
  std::string source;         // what the windows were, in words ("corpus val split", ...)
  int64_t n_tokens = 0;       // token positions averaged
  std::vector<torch::Tensor> means;  // per tap site: (width) float32, on the model's device
};

// Digest of a (N, T) int64 token tensor (shape and values).
std::string TokensDigest(const torch::Tensor& tokens);

// Records every site over `windows` (N, T) int64 (T <= n_ctx) in batches of
// `batch_windows` under NoGradGuard and averages over all N * T positions.
// Errors: windows not 2-D, empty, longer than n_ctx, or token ids out of range.
absl::StatusOr<MeanCache> ComputeMeans(const TapModel& model, const torch::Tensor& windows,
                                       int batch_windows = 16);

// Pretraining text for the means: up to `max_windows` windows of n_ctx tokens,
// evenly spaced over the validation split of a corpus built by `circuit corpus
// build` ((N, n_ctx) int64). *source describes them for reports.
absl::StatusOr<torch::Tensor> CorpusMeanWindows(const std::string& corpus_dir, int vocab_size,
                                                int n_ctx, int max_windows, std::string* source);

// "<dir>/<stem>.means.h5" for "<dir>/<stem>.h5" (any other name gets ".means.h5" appended).
std::string MeansPathFor(const std::string& model_path);

// The means over `corpus_dir`'s validation split (64 windows), written to
// MeansPathFor(model_path): what `circuit train` and `circuit import --corpus`
// leave beside a model.
absl::Status SaveCorpusMeans(const std::string& model_path, const std::string& corpus_dir,
                             torch::Device device);

// Where means over the windows with `source_digest` are cached for this model:
// `default_path` (<model>.means.h5, the model's own means) when it holds exactly
// those, or is missing, unreadable or another model's; otherwise a file of their
// own beside it, "<dir>/<stem>.means-<source_digest>.h5". So `extract --corpus`
// never replaces the means that `circuit train` cached with another text's: one
// cache per (model digest, text digest).
std::string MeansPathForSource(const std::string& default_path, const SiteLayout& layout,
                               const std::string& model_digest, const std::string& source_digest);

// Means larger than this in magnitude are no activation average: LoadMeans
// rejects them as a damaged cache.
inline constexpr double kMeanMagnitudeLimit = 1e6;

// HDF5 (format "circuit.means"): root attributes model_digest, source_digest,
// source, n_tokens, n_layer; one float32 dataset per site, /means/<layer>/<location>
// (final_resid under /means/<n_layer>/final_resid). Written atomically.
absl::Status SaveMeans(const std::string& path, const MeanCache& cache, const SiteLayout& layout);

// Reads a cache written by SaveMeans and checks every width against `layout`
// and every value (finite, |x| <= kMeanMagnitudeLimit). Errors name the file and
// the object; a missing file is NotFound.
absl::StatusOr<MeanCache> LoadMeans(const std::string& path, const SiteLayout& layout,
                                    torch::Device device = torch::kCPU);

// The cached means when `path` holds means for (model_digest, source digest of
// `windows`); otherwise computes them and tries to save them to `path` (a failed
// save is reported in *note, not as an error). `path` may be empty: no caching.
// *reused tells whether the file was used.
absl::StatusOr<MeanCache> LoadOrComputeMeans(const std::string& path, const TapModel& model,
                                             const std::string& model_digest,
                                             const torch::Tensor& windows,
                                             const std::string& source, bool* reused,
                                             std::string* note);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_MEAN_CACHE_H_
