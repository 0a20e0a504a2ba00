// Faithfulness curves over MIB's node-fraction grid, CPR/CMD, and completeness.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "absl/strings/str_cat.h"
#include "circuit/prune/audit.h"

namespace circuit::prune {
namespace {

// (N) float keep-mask with the listed nodes kept.
torch::Tensor KeepOnly(const std::vector<int64_t>& nodes, int64_t total) {
  torch::Tensor keep = torch::zeros({total}, torch::kFloat32);
  if (!nodes.empty()) keep.index_fill_(0, torch::tensor(nodes, torch::kInt64), 1.0);
  return keep;
}

std::vector<int64_t> Top(const std::vector<int64_t>& order, int64_t n) {
  return std::vector<int64_t>(order.begin(), order.begin() + std::min<int64_t>(n, order.size()));
}

}  // namespace

std::vector<double> StackedLosses(const AblationEvaluator& eval,
                                  const std::vector<std::vector<int64_t>>& sets, int64_t total,
                                  int stack, int64_t* evaluations, const ProgressFn& progress) {
  std::vector<double> out;
  out.reserve(sets.size());
  const size_t per = static_cast<size_t>(std::max(1, stack));
  for (size_t lo = 0; lo < sets.size(); lo += per) {
    const size_t hi = std::min(sets.size(), lo + per);
    std::vector<torch::Tensor> keeps;
    for (size_t i = lo; i < hi; ++i) keeps.push_back(KeepOnly(sets[i], total));
    const torch::Tensor diffs = eval.LogitDiffsMany(torch::stack(keeps));  // (M, n_examples)
    for (int64_t m = 0; m < diffs.size(0); ++m) {
      out.push_back(AblationEvaluator::ScoreDiffs(diffs[m]).loss);
    }
    if (evaluations != nullptr) *evaluations += static_cast<int64_t>(hi - lo);
    if (progress) progress("faithfulness", static_cast<double>(hi) / sets.size());
  }
  return out;
}

double Faithfulness(double loss, double empty_loss, double full_loss) {
  const double span = empty_loss - full_loss;
  if (span == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return (empty_loss - loss) / span;
}

MibAreas MibArea(const std::vector<double>& fractions, const std::vector<double>& f) {
  MibAreas a;
  for (size_t i = 0; i + 1 < std::min(fractions.size(), f.size()); ++i) {
    const double dx = fractions[i + 1] - fractions[i];
    a.cpr += dx * (f[i] + f[i + 1]) / 2;
    a.cmd += dx * (std::abs(1 - f[i]) + std::abs(1 - f[i + 1])) / 2;
  }
  return a;
}

std::vector<int64_t> RankNodes(const std::vector<float>& scores) {
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  // NaN scores rank last; stable_sort keeps the lower index first among ties.
  auto key = [&](int64_t i) {
    return std::isnan(scores[i]) ? -std::numeric_limits<float>::infinity() : scores[i];
  };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key(a) > key(b); });
  return order;
}

absl::StatusOr<std::vector<FaithfulnessCurve>> FaithfulnessCurves(
    const FaithfulnessInputs& in,
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& rankings, int random_rankings,
    uint64_t seed, double full_loss, double empty_loss, int64_t* evaluations,
    const ProgressFn& progress) {
  const int64_t total = in.total_nodes;
  if (in.eval == nullptr || total <= 0) {
    return absl::InvalidArgumentError("faithfulness: no evaluator or no nodes");
  }
  for (const auto& [name, order] : rankings) {
    if (static_cast<int64_t>(order.size()) != total) {
      return absl::InvalidArgumentError(absl::StrCat("faithfulness: ranking ", name, " has ",
                                                     order.size(), " nodes, expected ", total));
    }
  }
  const int64_t circuit_n = static_cast<int64_t>(in.circuit.size());
  // The sizes evaluated: the grid (MIB's int(pct * n)) and the circuit's own.
  struct Size {
    double fraction;
    int64_t nodes;
    bool on_grid;
  };
  std::vector<Size> sizes;
  for (double fr : kMibFractions) sizes.push_back({fr, static_cast<int64_t>(fr * total), true});
  sizes.push_back({static_cast<double>(circuit_n) / total, circuit_n, false});
  std::stable_sort(sizes.begin(), sizes.end(),
                   [](const Size& a, const Size& b) { return a.nodes < b.nodes; });

  auto finish = [&](FaithfulnessCurve& c) {
    std::vector<double> xs, fs;
    for (CurvePoint& p : c.points) {
      p.f = Faithfulness(p.loss, empty_loss, full_loss);
      if (p.on_grid) {
        xs.push_back(p.fraction);
        fs.push_back(p.f);
      }
    }
    const MibAreas a = MibArea(xs, fs);
    c.cpr = a.cpr;
    c.cmd = a.cmd;
  };

  // Every kept-node set the curves need, evaluated in stacked passes
  // (AblationEvaluator::LogitDiffsMany, `in.stack` sets per pass).
  std::vector<std::vector<int64_t>> sets;
  auto request = [&](std::vector<int64_t> kept) -> int64_t {
    const int64_t n = static_cast<int64_t>(kept.size());
    if (n == 0) return -1;      // L(∅), measured once by the caller
    if (n == total) return -2;  // L(M)
    sets.push_back(std::move(kept));
    return static_cast<int64_t>(sets.size()) - 1;
  };
  // slot[r][i]: the set of ranking r at size i (r == rankings.size() + d: random draw d).
  const int draws = std::max(0, random_rankings);
  std::vector<std::vector<int64_t>> slot(rankings.size() + draws,
                                         std::vector<int64_t>(sizes.size(), -1));
  for (size_t r = 0; r < rankings.size(); ++r) {
    std::map<int64_t, int64_t> seen;  // equal sizes evaluate once
    for (size_t i = 0; i < sizes.size(); ++i) {
      // The first ranking is the circuit's own: at its size, the circuit itself
      // (ties in the scores could otherwise pick other nodes).
      if (r == 0 && !sizes[i].on_grid) {
        slot[r][i] = request(in.circuit);
      } else if (seen.count(sizes[i].nodes)) {
        slot[r][i] = seen[sizes[i].nodes];
      } else {
        slot[r][i] = seen[sizes[i].nodes] = request(Top(rankings[r].second, sizes[i].nodes));
      }
    }
  }
  auto gen = at::detail::createCPUGenerator(seed ^ 0xa0d17ULL);
  for (int d = 0; d < draws; ++d) {
    const torch::Tensor perm = torch::randperm(total, gen, torch::kInt64);
    const std::vector<int64_t> order(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + total);
    std::map<int64_t, int64_t> seen;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (!seen.count(sizes[i].nodes)) seen[sizes[i].nodes] = request(Top(order, sizes[i].nodes));
      slot[rankings.size() + d][i] = seen[sizes[i].nodes];
    }
  }
  std::vector<double> losses = StackedLosses(*in.eval, sets, total, in.stack, evaluations,
                                             progress);
  auto loss_at = [&](int64_t s) {
    return s == -1 ? empty_loss : s == -2 ? full_loss : losses[s];
  };

  std::vector<FaithfulnessCurve> curves;
  for (size_t r = 0; r < rankings.size(); ++r) {
    FaithfulnessCurve c;
    c.ranking = rankings[r].first;
    for (size_t i = 0; i < sizes.size(); ++i) {
      c.points.push_back({sizes[i].fraction, sizes[i].nodes, loss_at(slot[r][i]), 0.0,
                          sizes[i].on_grid});
    }
    finish(c);
    curves.push_back(std::move(c));
  }
  if (draws > 0) {
    FaithfulnessCurve c;
    c.ranking = "random";
    for (size_t i = 0; i < sizes.size(); ++i) {
      double sum = 0.0;
      for (int d = 0; d < draws; ++d) sum += loss_at(slot[rankings.size() + d][i]);
      // The endpoints are the same for every ranking: exactly L(∅) and L(M).
      const int64_t n = sizes[i].nodes;
      const double loss = n == 0 ? empty_loss : n == total ? full_loss : sum / draws;
      c.points.push_back({sizes[i].fraction, n, loss, 0.0, sizes[i].on_grid});
    }
    finish(c);
    curves.push_back(std::move(c));
  }
  return curves;
}

Completeness CompletenessGap(const FaithfulnessInputs& in, int subsets, uint64_t seed,
                             int64_t* evaluations) {
  Completeness out;
  if (subsets <= 0 || in.eval == nullptr) return out;
  auto gen = at::detail::createCPUGenerator(seed ^ 0xc0b1e7eULL);
  const torch::Tensor circuit_idx = torch::tensor(in.circuit, torch::kInt64);
  std::set<int64_t> circuit(in.circuit.begin(), in.circuit.end());
  // Sets 2s and 2s + 1: C∖K and M∖K of subset s, all scored in stacked passes.
  std::vector<std::vector<int64_t>> sets;
  for (int s = 0; s < subsets; ++s) {
    // K: each circuit node with probability ½.
    const torch::Tensor in_k =
        torch::rand({static_cast<int64_t>(in.circuit.size())}, gen) < 0.5;  // (n) bool
    const torch::Tensor k_nodes = circuit_idx.masked_select(in_k).contiguous();
    const std::set<int64_t> k(k_nodes.data_ptr<int64_t>(),
                              k_nodes.data_ptr<int64_t>() + k_nodes.numel());
    std::vector<int64_t> c_minus_k, m_minus_k;
    for (int64_t node : in.circuit) {
      if (!k.count(node)) c_minus_k.push_back(node);
    }
    for (int64_t node = 0; node < in.total_nodes; ++node) {
      if (!k.count(node)) m_minus_k.push_back(node);
    }
    sets.push_back(std::move(c_minus_k));
    sets.push_back(std::move(m_minus_k));
  }
  const std::vector<double> losses =
      StackedLosses(*in.eval, sets, in.total_nodes, in.stack, evaluations, nullptr);
  double sum = 0.0;
  for (int s = 0; s < subsets; ++s) {
    const double gap = std::abs(losses[2 * s] - losses[2 * s + 1]);
    sum += gap;
    out.max = std::max(out.max, gap);
  }
  out.subsets = subsets;
  out.mean = sum / subsets;
  return out;
}

}  // namespace circuit::prune
