// Hyperparameter search for mask training (PAPER.md §4.7, simplified): the paper
// tunes every (model, task) with CARBS over hundreds of runs; here `--search N`
// tries N settings drawn log-uniformly around the defaults (deterministic for a
// seed; the first setting is the centre itself) and the pruner keeps the
// smallest circuit that meets the target.
//
//   std::vector<MaskTrainOptions> settings = SearchSettings(options.masks, 8, /*seed=*/0);
//   for (const MaskTrainOptions& s : settings) ...;
#ifndef CIRCUIT_PRUNE_SEARCH_H_
#define CIRCUIT_PRUNE_SEARCH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "circuit/prune/mask_optimizer.h"

namespace circuit::prune {

// Factors of the log-uniform ranges around the centre: a value v is drawn from
// [v / f, v * f].
struct SearchRanges {
  double lr = 3.0;
  double penalty_coef = 4.0;
  double heaviside_temp = 3.0;
  double init_bias = 2.0;
  double init_scale = 2.0;
};

// n settings (n >= 1): settings[0] == centre, the rest perturb lr, penalty
// coefficient, temperature and the init of `centre`. Other fields are copied.
std::vector<MaskTrainOptions> SearchSettings(const MaskTrainOptions& centre, int n, uint64_t seed,
                                             const SearchRanges& ranges = {});

// "lr 0.0048 coef 0.0048 temp 0.234 init 0.072±0.0125": one line for reports.
std::string DescribeSetting(const MaskTrainOptions& options);

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_SEARCH_H_
