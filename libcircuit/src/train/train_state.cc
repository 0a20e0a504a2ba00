#include "train/train_state.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "circuit/core/h5.h"
#include "circuit/core/status.h"

namespace circuit::internal {
namespace {

constexpr char kFormat[] = "circuit.train_state";

absl::Status WriteTensors(H5Writer& w, const std::string& group,
                          const std::vector<NamedTensor>& tensors) {
  std::vector<std::string> names;
  for (const NamedTensor& t : tensors) {
    torch::Tensor c = t.tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    H5Shape shape(c.sizes().begin(), c.sizes().end());
    CIRCUIT_RETURN_IF_ERROR(w.WriteFloats(
        absl::StrCat(group, "/", t.name), shape,
        absl::Span<const float>(c.data_ptr<float>(), static_cast<size_t>(c.numel()))));
    names.push_back(t.name);
  }
  // The order matters (state-dict order); group listings are sorted.
  return w.WriteStrings(absl::StrCat(group, "_order"), names);
}

absl::StatusOr<std::vector<NamedTensor>> ReadTensors(const H5Reader& r, const std::string& group) {
  CIRCUIT_ASSIGN_OR_RETURN(std::vector<std::string> names,
                           r.ReadStrings(absl::StrCat(group, "_order")));
  std::vector<NamedTensor> out;
  for (const std::string& name : names) {
    const std::string path = absl::StrCat(group, "/", name);
    CIRCUIT_ASSIGN_OR_RETURN(H5Shape shape, r.DatasetShape(path));
    CIRCUIT_ASSIGN_OR_RETURN(std::vector<float> data, r.ReadFloats(path, shape));
    std::vector<int64_t> sizes(shape.begin(), shape.end());
    torch::Tensor t = torch::from_blob(data.data(), sizes, torch::kFloat32).clone();
    out.push_back({name, std::move(t)});
  }
  return out;
}

// The stored options, as attributes of /options (booleans as 0/1).
struct DoubleField {
  const char* name;
  double* value;
};
struct IntField {
  const char* name;
  int64_t* value;
};

}  // namespace

absl::Status SaveTrainState(const std::string& path, const TrainState& s) {
  CIRCUIT_ASSIGN_OR_RETURN(H5Writer w, H5Writer::Create(path));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "format", kFormat));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "format_version", kTrainStateFormatVersion));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "step", s.step));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "tokens", s.tokens));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "seconds", s.seconds));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "corpus_digest", s.corpus_digest));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "adam_step", s.adam_step));
  CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute("/", "init_from", s.init_from));

  const TrainOptions& o = s.options;
  const std::string g = "/options";
  const TrainSchedule& sc = o.schedule;
  for (auto [name, value] : std::vector<std::pair<const char*, double>>{
           {"lr", sc.lr}, {"warmup", sc.warmup}, {"anneal_start", sc.anneal_start},
           {"anneal_end", sc.anneal_end}, {"density", sc.density},
           {"embed_density", sc.embed_density}, {"weight_decay", o.weight_decay},
           {"beta1", o.adam.beta1}, {"beta2", o.adam.beta2}, {"eps", o.adam.eps}}) {
    CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g, name, value));
  }
  for (auto [name, value] : std::vector<std::pair<const char*, int64_t>>{
           {"steps", sc.steps}, {"dense", sc.dense ? 1 : 0}, {"batch", o.batch},
           {"seed", static_cast<int64_t>(o.seed)}, {"eval_every", o.eval_every},
           {"val_windows", o.val_windows},
           {"sparsify_biases", o.sparsity.sparsify_biases ? 1 : 0},
           {"sparsify_wpe", o.sparsity.sparsify_wpe ? 1 : 0},
           {"min_per_channel", o.sparsity.min_per_channel}}) {
    CIRCUIT_RETURN_IF_ERROR(w.WriteAttribute(g, name, value));
  }
  CIRCUIT_RETURN_IF_ERROR(WriteTensors(w, "/weights", s.weights));
  CIRCUIT_RETURN_IF_ERROR(WriteTensors(w, "/adam/exp_avg", s.exp_avg));
  CIRCUIT_RETURN_IF_ERROR(WriteTensors(w, "/adam/exp_avg_sq", s.exp_avg_sq));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s("/curve/step", s.curve_step));
  CIRCUIT_RETURN_IF_ERROR(w.WriteDoubles("/curve/loss", s.curve_loss));
  CIRCUIT_RETURN_IF_ERROR(w.WriteInt64s("/val/step", s.val_step));
  CIRCUIT_RETURN_IF_ERROR(w.WriteDoubles("/val/loss", s.val_loss));
  return w.Commit();
}

absl::StatusOr<TrainState> LoadTrainState(const std::string& path) {
  CIRCUIT_ASSIGN_OR_RETURN(H5Reader r, H5Reader::Open(path));
  CIRCUIT_RETURN_IF_ERROR(r.CheckFormat(kFormat, kTrainStateFormatVersion));
  TrainState s;
  CIRCUIT_ASSIGN_OR_RETURN(s.step, r.ReadIntAttribute("/", "step"));
  CIRCUIT_ASSIGN_OR_RETURN(s.tokens, r.ReadIntAttribute("/", "tokens"));
  CIRCUIT_ASSIGN_OR_RETURN(s.seconds, r.ReadDoubleAttribute("/", "seconds"));
  CIRCUIT_ASSIGN_OR_RETURN(s.corpus_digest, r.ReadStringAttribute("/", "corpus_digest"));
  CIRCUIT_ASSIGN_OR_RETURN(s.adam_step, r.ReadIntAttribute("/", "adam_step"));
  CIRCUIT_ASSIGN_OR_RETURN(const bool has_init, r.HasAttribute("/", "init_from"));
  if (has_init) {
    CIRCUIT_ASSIGN_OR_RETURN(s.init_from, r.ReadStringAttribute("/", "init_from"));
  }

  TrainOptions& o = s.options;
  TrainSchedule& sc = o.schedule;
  const std::string g = "/options";
  for (DoubleField f : {DoubleField{"lr", &sc.lr}, DoubleField{"warmup", &sc.warmup},
                        DoubleField{"anneal_start", &sc.anneal_start},
                        DoubleField{"anneal_end", &sc.anneal_end},
                        DoubleField{"density", &sc.density},
                        DoubleField{"embed_density", &sc.embed_density},
                        DoubleField{"weight_decay", &o.weight_decay},
                        DoubleField{"beta1", &o.adam.beta1}, DoubleField{"beta2", &o.adam.beta2},
                        DoubleField{"eps", &o.adam.eps}}) {
    CIRCUIT_ASSIGN_OR_RETURN(*f.value, r.ReadDoubleAttribute(g, f.name));
  }
  int64_t dense = 0, batch = 0, seed = 0, val_windows = 0, biases = 0, wpe = 0, j = 0;
  for (IntField f : {IntField{"steps", &sc.steps}, IntField{"dense", &dense},
                     IntField{"batch", &batch}, IntField{"seed", &seed},
                     IntField{"eval_every", &o.eval_every}, IntField{"val_windows", &val_windows},
                     IntField{"sparsify_biases", &biases}, IntField{"sparsify_wpe", &wpe},
                     IntField{"min_per_channel", &j}}) {
    CIRCUIT_ASSIGN_OR_RETURN(*f.value, r.ReadIntAttribute(g, f.name));
  }
  sc.dense = dense != 0;
  o.batch = static_cast<int>(batch);
  o.seed = static_cast<uint64_t>(seed);
  o.val_windows = static_cast<int>(val_windows);
  o.sparsity.sparsify_biases = biases != 0;
  o.sparsity.sparsify_wpe = wpe != 0;
  o.sparsity.min_per_channel = static_cast<int>(j);
  if (absl::Status st = sc.Validate(); !st.ok()) return Annotate(st, path + ": /options");
  if (o.batch < 1 || o.val_windows < 1 || s.step < 0 || s.step > sc.steps) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": inconsistent state (batch ", o.batch, ", val_windows ",
                     o.val_windows, ", step ", s.step, " of ", sc.steps, ")"));
  }

  CIRCUIT_ASSIGN_OR_RETURN(s.weights, ReadTensors(r, "/weights"));
  CIRCUIT_ASSIGN_OR_RETURN(s.exp_avg, ReadTensors(r, "/adam/exp_avg"));
  CIRCUIT_ASSIGN_OR_RETURN(s.exp_avg_sq, ReadTensors(r, "/adam/exp_avg_sq"));
  CIRCUIT_ASSIGN_OR_RETURN(s.curve_step, r.ReadInt64s("/curve/step"));
  CIRCUIT_ASSIGN_OR_RETURN(s.curve_loss, r.ReadDoubles("/curve/loss"));
  CIRCUIT_ASSIGN_OR_RETURN(s.val_step, r.ReadInt64s("/val/step"));
  CIRCUIT_ASSIGN_OR_RETURN(s.val_loss, r.ReadDoubles("/val/loss"));
  if (s.curve_step.size() != s.curve_loss.size() || s.val_step.size() != s.val_loss.size()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": curve lengths differ"));
  }
  return s;
}

}  // namespace circuit::internal
