// Progress reports of long pruning work: a stage name ("means", "masks",
// "discretize", "verify", "search 2/8") and the fraction done in [0, 1].
// Library code calls it; the CLI decides whether and how to draw it.
//
//   ProgressFn progress = [](const std::string& stage, double f) { Draw(stage, f); };
//   if (progress) progress("masks", step / double(steps));
#ifndef CIRCUIT_PRUNE_PROGRESS_H_
#define CIRCUIT_PRUNE_PROGRESS_H_

#include <functional>
#include <string>

namespace circuit::prune {

using ProgressFn = std::function<void(const std::string& stage, double fraction)>;

}  // namespace circuit::prune

#endif  // CIRCUIT_PRUNE_PROGRESS_H_
