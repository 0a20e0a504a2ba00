// The sweep results file, DIR/results.h5 (format "circuit.sweep"): one row per
// finished work unit. A finished unit is appended as one line to the journal
// DIR/results.h5.journal (JSON, one row per line); now and then, and when the
// sweep ends, the rows are compacted into results.h5 (rewritten under a temporary
// name and renamed) and the journal removed. Compaction happens once the journal
// holds a quarter as many rows as results.h5, so recording n units writes O(n)
// rows in all, not O(n^2), and results.h5 lags the journal by at most that quarter.
// Read() returns the rows of both, whenever the sweep is killed: a line cut short
// by a kill is ignored, a row in both files counts once (the journal's copy).
//
//   CIRCUIT_ASSIGN_OR_RETURN(ResultsFile results, ResultsFile::Open(dir + "/results.h5", spec));
//   if (!results.Has(unit.id)) CIRCUIT_RETURN_IF_ERROR(results.Append(RunUnit(unit)));
//   CIRCUIT_RETURN_IF_ERROR(results.Close());
#ifndef CIRCUIT_SWEEP_RESULTS_H_
#define CIRCUIT_SWEEP_RESULTS_H_

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "circuit/sweep/spec.h"

namespace circuit {

inline constexpr int64_t kSweepFormatVersion = 1;
inline constexpr double kNoFigure = std::numeric_limits<double>::quiet_NaN();

struct UnitResult {
  WorkUnit unit;
  bool ok = false;
  std::string error;          // why the unit failed (ok == false)
  std::string circuit_file;   // "units/<id>.h5", relative to the sweep folder
  int64_t n_nodes = 0, n_edges = 0, total_nodes = 0;
  double full_model_loss = 0, circuit_loss = 0, necessity_loss = 0;
  double random_baseline_loss = 0, accuracy = 0;
  double seconds = 0;         // wall time of the unit
  double prune_seconds = 0;   // of which the extraction itself (the rest: loading, tasks, writing)
  int rank = 0;               // the MPI rank that ran it
  // The circuit met the target loss on the validation split. When it did not, the
  // pruner kept every node: the row is finished (ok) but is no circuit to compare.
  bool met_target = false;
  // The unit's audit (spec key "audit"; docs/faithfulness.md), NaN when not
  // audited: CPR and CMD of the circuit's own ranking, the mean pairwise
  // Jaccard of the stability runs, and control_ratio = the fewest nodes a
  // nonsense control (shuffled answers, random-init model) kept / the circuit's
  // nodes (a control that misses the target keeps every node).
  double cpr = kNoFigure, cmd = kNoFigure, jaccard = kNoFigure, control_ratio = kNoFigure;
};

class ResultsFile {
 public:
  // Opens `path` (reading its rows when it exists) for the sweep `spec_name`.
  static absl::StatusOr<ResultsFile> Open(const std::string& path, const std::string& spec_name,
                                          const std::string& spec_source);
  // Reads the rows of an existing results file and of its journal.
  static absl::StatusOr<std::vector<UnitResult>> Read(const std::string& path);
  static std::string JournalPath(const std::string& path) { return path + ".journal"; }

  bool Has(const std::string& id) const { return index_.count(id) > 0; }
  const std::vector<UnitResult>& rows() const { return rows_; }
  // Replaces a row with the same id (a retried failure), else appends; the row
  // is in the journal (or results.h5) when this returns.
  absl::Status Append(UnitResult row);
  // Compacts: results.h5 holds every row and the journal is gone.
  absl::Status Close();
  // Drops failed rows so that they run again (--retry-failed).
  void ForgetFailures();

 private:
  absl::Status Compact();
  std::string path_, spec_name_, spec_source_;
  std::vector<UnitResult> rows_;
  std::map<std::string, size_t> index_;  // id -> position in rows_
  int64_t journal_rows_ = 0;             // rows appended since the last compaction
  size_t stored_rows_ = 0;               // rows results.h5 held at the last compaction
};

// One row as a single-line JSON object (the journal's lines, and what MPI
// workers send to rank 0); NaN travels as null.
std::string ResultToJson(const UnitResult& row);
absl::StatusOr<UnitResult> ResultFromJson(const std::string& text);

}  // namespace circuit

#endif  // CIRCUIT_SWEEP_RESULTS_H_
