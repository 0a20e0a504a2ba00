// Log-uniform random search settings around the defaults.
#include "circuit/prune/search.h"

#include <cmath>
#include <random>

#include "absl/strings/str_format.h"

namespace circuit::prune {

std::vector<MaskTrainOptions> SearchSettings(const MaskTrainOptions& centre, int n, uint64_t seed,
                                             const SearchRanges& ranges) {
  std::vector<MaskTrainOptions> out;
  if (n < 1) return out;
  out.push_back(centre);
  std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ULL + 0x5ea4c4);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  auto draw = [&](double value, double factor) {
    return value * std::exp(unit(rng) * std::log(factor));
  };
  const double coef = centre.penalty_coef < 0 ? DefaultPenaltyCoef(centre.penalty) : centre.penalty_coef;
  for (int i = 1; i < n; ++i) {
    MaskTrainOptions o = centre;
    o.lr = draw(centre.lr, ranges.lr);
    o.penalty_coef = draw(coef, ranges.penalty_coef);
    o.heaviside_temp = draw(centre.heaviside_temp, ranges.heaviside_temp);
    o.init.bias = draw(centre.init.bias, ranges.init_bias);
    o.init.scale = draw(centre.init.scale, ranges.init_scale);
    out.push_back(o);
  }
  return out;
}

std::string DescribeSetting(const MaskTrainOptions& o) {
  const double coef = o.penalty_coef < 0 ? DefaultPenaltyCoef(o.penalty) : o.penalty_coef;
  return absl::StrFormat("lr %.3g, %s coef %.3g, temp %.3g, init %.3g±%.3g", o.lr,
                         PenaltyName(o.penalty), coef, o.heaviside_temp, o.init.bias, o.init.scale);
}

}  // namespace circuit::prune
