// Progress of long commands on stderr. On a terminal a bar is redrawn in place;
// elsewhere (a log, a pipe, a cluster job) one line per stage with the time
// since the start, so that a log shows where a run is, and with auto threads
// (--threads 0, the default) how many threads the stage runs on:
//
//   circuit extract: [    0.0 s] means (2 threads)
//   circuit extract: [    1.9 s] masks (2 threads)
//   circuit extract: [   36.4 s] discretize (1 thread)
//
// A stage gets one line, when it first reports (jobs running in parallel, as
// the audit's re-extractions, report in turn). At every new stage it calls
// AdaptThreads() (circuit/core/runtime.h).
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
