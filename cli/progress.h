// Progress of long commands on stderr. On a terminal a bar is redrawn in place;
// elsewhere (a log, a pipe, a cluster job) one line per stage with the time
// since the start, so that a log shows where a run is:
//
//   circuit extract: [    0.0 s] means
//   circuit extract: [    1.9 s] masks
//   circuit extract: [   36.4 s] discretize
#ifndef CIRCUIT_CLI_PROGRESS_H_
#define CIRCUIT_CLI_PROGRESS_H_

#include <string>

#include "circuit/prune/progress.h"

namespace circuit::cli {

// `command` names the lines ("extract"). The function keeps its own clock.
prune::ProgressFn StageProgress(const std::string& command);

// Erases the bar's line on a terminal; nothing elsewhere.
void ClearProgress();

}  // namespace circuit::cli

#endif  // CIRCUIT_CLI_PROGRESS_H_
