// circuit report DIR: the sweep's table, report.csv and report.svg.
#include <iostream>

#include "args.h"
#include "circuit/sweep/report.h"
#include "command.h"

namespace circuit::cli {
namespace {

int RunReport(int argc, char** argv) {
  ArgParser parser("circuit report DIR",
                   "Summarise a sweep: circuit sizes per model, task and setting, the geometric "
                   "mean of edges across tasks, and the dense/sparse size ratio at matched target "
                   "loss. Writes DIR/report.csv and DIR/report.svg.");
  std::string dir;
  parser.Positional("DIR", "the sweep's --out folder (with results.h5)", &dir);
  if (int rc = parser.Parse(argc, argv); rc >= 0) return rc;
  absl::StatusOr<SweepReport> report = BuildSweepReport(dir);
  if (!report.ok()) return Fail("report", std::string(report.status().message()), kExitUsage);
  std::cout << report->table;
  if (absl::Status s = WriteSweepReport(*report, dir); !s.ok()) {
    return Fail("report", std::string(s.message()), kExitFailure);
  }
  std::cout << "wrote " << dir << "/report.csv and " << dir << "/report.svg\n";
  return kExitOk;
}

}  // namespace

CIRCUIT_COMMAND(report, "report", "tables and a chart of a sweep's circuit sizes", RunReport);

}  // namespace circuit::cli
