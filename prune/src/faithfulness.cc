// Faithfulness curves over MIB's node-fraction grid, CPR/CMD, and completeness.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

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

  const int64_t planned = static_cast<int64_t>(sizes.size()) *
                          (static_cast<int64_t>(rankings.size()) + std::max(0, random_rankings));
  int64_t done = 0;
  auto loss_of = [&](const std::vector<int64_t>& kept) {
    if (progress) progress("faithfulness", static_cast<double>(++done) / std::max<int64_t>(1, planned));
    const int64_t n = static_cast<int64_t>(kept.size());
    if (n == 0) return empty_loss;   // measured once by the caller
    if (n == total) return full_loss;
    ++*evaluations;
    return in.eval->Score(KeepOnly(kept, total)).loss;
  };
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

  std::vector<FaithfulnessCurve> curves;
  for (size_t r = 0; r < rankings.size(); ++r) {
    FaithfulnessCurve c;
    c.ranking = rankings[r].first;
    std::map<int64_t, double> seen;  // equal sizes evaluate once
    for (const Size& s : sizes) {
      double loss;
      // The first ranking is the circuit's own: at its size, the circuit itself
      // (ties in the scores could otherwise pick other nodes).
      if (r == 0 && !s.on_grid) {
        loss = loss_of(in.circuit);
      } else if (seen.count(s.nodes)) {
        loss = seen[s.nodes];
      } else {
        loss = seen[s.nodes] = loss_of(Top(rankings[r].second, s.nodes));
      }
      c.points.push_back({s.fraction, s.nodes, loss, 0.0, s.on_grid});
    }
    finish(c);
    curves.push_back(std::move(c));
  }
  if (random_rankings > 0) {
    FaithfulnessCurve c;
    c.ranking = "random";
    for (const Size& s : sizes) c.points.push_back({s.fraction, s.nodes, 0.0, 0.0, s.on_grid});
    auto gen = at::detail::createCPUGenerator(seed ^ 0xa0d17ULL);
    for (int d = 0; d < random_rankings; ++d) {
      const torch::Tensor perm = torch::randperm(total, gen, torch::kInt64);
      const std::vector<int64_t> order(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + total);
      std::map<int64_t, double> seen;
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (!seen.count(sizes[i].nodes)) seen[sizes[i].nodes] = loss_of(Top(order, sizes[i].nodes));
        c.points[i].loss += seen[sizes[i].nodes];
      }
    }
    for (CurvePoint& p : c.points) {
      // The endpoints are the same for every ranking: exactly L(∅) and L(M).
      p.loss = p.nodes == 0 ? empty_loss : p.nodes == total ? full_loss : p.loss / random_rankings;
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
  const torch::Tensor circuit_keep = KeepOnly(in.circuit, in.total_nodes);  // (N)
  const torch::Tensor circuit_idx = torch::tensor(in.circuit, torch::kInt64);
  double sum = 0.0;
  for (int s = 0; s < subsets; ++s) {
    // K: each circuit node with probability ½.
    const torch::Tensor in_k =
        torch::rand({static_cast<int64_t>(in.circuit.size())}, gen) < 0.5;  // (n) bool
    const torch::Tensor k_nodes = circuit_idx.masked_select(in_k);
    torch::Tensor c_minus_k = circuit_keep.clone();
    torch::Tensor m_minus_k = torch::ones({in.total_nodes}, torch::kFloat32);
    if (k_nodes.numel() > 0) {
      c_minus_k.index_fill_(0, k_nodes, 0.0);
      m_minus_k.index_fill_(0, k_nodes, 0.0);
    }
    const double gap =
        std::abs(in.eval->Score(c_minus_k).loss - in.eval->Score(m_minus_k).loss);
    *evaluations += 2;
    sum += gap;
    out.max = std::max(out.max, gap);
  }
  out.subsets = subsets;
  out.mean = sum / subsets;
  return out;
}

}  // namespace circuit::prune
