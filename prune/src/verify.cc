// Sufficiency, necessity, random baseline and importances on the test split.
#include "circuit/prune/verify.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"

namespace circuit::prune {

std::string LocationKey(int layer, NodeLocation loc) {
  return absl::StrCat("L", layer, " ", std::string(LocationName(loc)));
}

absl::StatusOr<Verification> VerifyCircuit(const TapModel& model, const NodeIndex& index,
                                           const std::vector<torch::Tensor>& means,
                                           const std::vector<TaskExample>& examples,
                                           const std::vector<int64_t>& circuit,
                                           const VerifyOptions& options,
                                           const ProgressFn& progress) {
  if (examples.empty()) return absl::InvalidArgumentError("verify: no test examples");
  std::set<int64_t> unique;
  for (int64_t i : circuit) {
    if (i < 0 || i >= index.total()) {
      return absl::InvalidArgumentError(
          absl::StrCat("verify: node ", i, " outside [0, ", index.total(), ")"));
    }
    if (!unique.insert(i).second) {
      return absl::InvalidArgumentError(absl::StrCat("verify: node ", i, " listed twice"));
    }
  }
  const LogitCalibration* cal = options.calibration;
  AblationEvaluator eval(model, index, means, options.ablation, examples, options.batch_prompts);
  torch::Tensor in_circuit = torch::zeros({index.total()}, torch::kFloat32);  // (N)
  if (!circuit.empty()) {
    in_circuit.index_fill_(0, torch::tensor(circuit, torch::kInt64), 1.0);
  }
  // Per (site): the circuit's nodes there.
  std::map<int, std::vector<int64_t>> by_site;
  for (int64_t i : circuit) by_site[index.SiteOf(i)].push_back(i);

  const int64_t total_steps = 3 + options.random_draws +
                              (options.node_importance ? circuit.size() : 0) +
                              (options.location_importance ? by_site.size() : 0);
  int64_t done = 0;
  auto tick = [&] {
    if (progress) progress("verify", static_cast<double>(++done) / total_steps);
  };

  Verification v;
  v.full = eval.Score(torch::Tensor());
  tick();
  v.circuit = eval.Score(in_circuit, cal);
  tick();
  v.necessity = eval.Score(1 - in_circuit, cal);
  tick();

  // The remaining sets are scored kStack at a time, stacked along the batch
  // (AblationEvaluator::LogitDiffsMany: one-node and one-location removals
  // share the layers below the removed node with the circuit's pass).
  constexpr int64_t kStack = 8;
  auto losses_of = [&](const std::vector<torch::Tensor>& keeps) {
    std::vector<double> out;
    for (size_t start = 0; start < keeps.size(); start += kStack) {
      const size_t end = std::min(keeps.size(), start + kStack);
      const torch::Tensor diffs = eval.LogitDiffsMany(
          torch::stack(std::vector<torch::Tensor>(keeps.begin() + start, keeps.begin() + end)));
      for (int64_t m = 0; m < diffs.size(0); ++m) {
        out.push_back(AblationEvaluator::ScoreDiffs(diffs[m], cal).loss);
        tick();
      }
    }
    return out;
  };
  if (options.random_draws > 0) {
    auto gen = at::detail::createCPUGenerator(options.seed ^ 0x5eed5eedULL);
    std::vector<torch::Tensor> keeps;
    for (int d = 0; d < options.random_draws; ++d) {
      torch::Tensor keep = torch::zeros({index.total()}, torch::kFloat32);
      for (const auto& [site, nodes] : by_site) {
        const int64_t width = index.site_width(site);
        torch::Tensor pick = torch::randperm(width, gen, torch::kInt64)
                                 .slice(0, 0, static_cast<int64_t>(nodes.size()));
        keep.index_fill_(0, pick + index.site_offset(site), 1.0);
      }
      keeps.push_back(keep);
    }
    const torch::Tensor diffs = eval.LogitDiffsMany(torch::stack(keeps));
    double loss = 0.0, accuracy = 0.0;
    for (int d = 0; d < options.random_draws; ++d) {
      const TaskScore s = AblationEvaluator::ScoreDiffs(diffs[d], cal);
      loss += s.loss / options.random_draws;
      accuracy += s.accuracy / options.random_draws;
      tick();
    }
    v.random = TaskScore{loss, accuracy};
  }

  if (options.node_importance) {
    std::vector<torch::Tensor> keeps;
    for (int64_t i : circuit) {
      torch::Tensor keep = in_circuit.clone();
      keep[i] = 0.0;
      keeps.push_back(keep);
    }
    v.node_importance = losses_of(keeps);
  }
  if (options.location_importance) {
    std::vector<torch::Tensor> keeps;
    for (const auto& [site, nodes] : by_site) {
      torch::Tensor keep = in_circuit.clone();
      keep.index_fill_(0, torch::tensor(nodes, torch::kInt64), 0.0);
      keeps.push_back(keep);
    }
    const std::vector<double> losses = losses_of(keeps);
    size_t j = 0;
    for (const auto& [site, nodes] : by_site) {
      v.location_importance[LocationKey(index.SiteLayer(site), index.SiteLocation(site))] =
          losses[j++];
    }
  }
  v.forward_passes = eval.forward_passes();
  return v;
}

}  // namespace circuit::prune
