// BDH edges by attribution: score the weights between kept nodes, keep the
// fewest top-scored ones that meet the target (edge_selection.h).
#include "circuit/prune/edge_selection.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "circuit/core/runtime.h"
#include "circuit/core/status.h"
#include "circuit/core/task_eval.h"
#include "circuit/prune/edges.h"

namespace circuit::prune {
namespace {

using L = NodeLocation;
constexpr int kProducts = 3;  // Product::kBdhEncoder, kBdhEncoderV, kBdhDecoder

int Slot(int layer, Product p) { return layer * kProducts + static_cast<int>(p); }

const Product kAllProducts[kProducts] = {Product::kBdhEncoder, Product::kBdhEncoderV,
                                         Product::kBdhDecoder};

// The source and destination sites of one layer's product.
struct Ends {
  int src_site = 0;
  int dst_site = 0;
};
Ends EndsOf(const NodeIndex& index, int layer, Product p) {
  const int n_layer = index.n_layer();
  switch (p) {
    case Product::kBdhEncoder:
      return {index.Site(layer, L::kBdhResidIn), index.Site(layer, L::kBdhXNeuron)};
    case Product::kBdhEncoderV:
      return {index.Site(layer, L::kBdhAttnRead), index.Site(layer, L::kBdhYNeuron)};
    case Product::kBdhDecoder:
      break;
  }
  return {index.Site(layer, L::kBdhGate), layer + 1 == n_layer
                                              ? index.Site(n_layer, L::kFinalResid)
                                              : index.Site(layer + 1, L::kBdhResidIn)};
}

torch::Tensor Weight(const BdhModel& model, Product p) {
  switch (p) {
    case Product::kBdhEncoder:
      return model.encoder();
    case Product::kBdhEncoderV:
      return model.encoder_v();
    case Product::kBdhDecoder:
      break;
  }
  return model.decoder();
}

// Per-channel source and destination values laid out in the weight's shape:
// encoder and encoder_v (H, D, N), decoder (H*N, D). src (src width), dst (dst width).
torch::Tensor SourceShaped(const torch::Tensor& src, Product p, int64_t H, int64_t D) {
  if (p == Product::kBdhEncoder) return src.view({1, D, 1});
  if (p == Product::kBdhEncoderV) return src.view({H, D, 1});
  return src.view({-1, 1});
}
torch::Tensor DestShaped(const torch::Tensor& dst, Product p, int64_t H) {
  if (p == Product::kBdhDecoder) return dst.view({1, -1});
  return dst.view({H, 1, -1});
}

// The source channel and destination channel of entry e of the weight.
std::pair<int64_t, int64_t> Channels(int64_t e, Product p, int64_t D, int64_t N) {
  if (p == Product::kBdhDecoder) return {e / D, e % D};
  const int64_t h = e / (D * N), d = (e / N) % D, n = e % N;
  return {p == Product::kBdhEncoder ? d : h * D + d, h * N + n};
}

struct Candidate {
  int slot = 0;
  int64_t entry = 0;  // flat index into the slot's weight
  double score = 0.0;
};

}  // namespace

std::string AttributionEdgeDefinition() {
  return "bdh attribution: the one-to-one links between kept nodes, and the entries of encoder, "
         "encoder_v and decoder between kept nodes (per layer) ranked by |w * sum over positions "
         "of (a - mean a) * dL/dout| summed over the train prompts, the fewest top-ranked whose "
         "circuit meets the target on the validation split (the others ablated to w * mean a)";
}

absl::StatusOr<EdgeSelection> SelectBdhEdges(const BdhModel& model, const NodeIndex& index,
                                             const std::vector<torch::Tensor>& means,
                                             const std::vector<int64_t>& flat,
                                             const TaskData& task,
                                             const EdgeSelectionOptions& options) {
  if (options.ablation == Ablation::kResample) {
    return absl::InvalidArgumentError("edges by attribution need mean or zero ablation");
  }
  if (task.train.empty() || task.validation.empty()) {
    return absl::InvalidArgumentError("edges by attribution: empty train or validation split");
  }
  const BdhConfig& c = model.config();
  const int64_t H = c.n_head, D = c.d_model, N = c.n_neuron;
  const int n_layer = c.n_layer;
  const torch::Device device = model.device();
  const int n_slots = n_layer * kProducts;

  torch::Tensor keep = torch::zeros({index.total()}, torch::kFloat32);
  if (!flat.empty()) keep.index_fill_(0, torch::tensor(flat, torch::kInt64), 1.0f);
  const std::vector<torch::Tensor> keep_sites = SplitBySite(keep, index);
  const std::vector<torch::Tensor> gates = KeepGates(keep, index, device);
  // The ablated value of each product's source (broadcasting against its input).
  std::vector<torch::Tensor> source_mean(n_slots), candidate(n_slots);
  for (int l = 0; l < n_layer; ++l) {
    for (Product p : kAllProducts) {
      const Ends e = EndsOf(index, l, p);
      const torch::Tensor w = Weight(model, p);
      torch::Tensor mu = options.ablation == Ablation::kMean && means[e.src_site].defined()
                             ? means[e.src_site].to(device, w.scalar_type())
                             : torch::zeros({index.site_width(e.src_site)}, w.options());
      source_mean[Slot(l, p)] = p == Product::kBdhEncoderV ? mu.view({H, 1, D}) : mu;
      candidate[Slot(l, p)] = (SourceShaped(keep_sites[e.src_site], p, H, D) *
                               DestShaped(keep_sites[e.dst_site], p, H))
                                  .to(device)
                                  .gt(0) &
                              w.ne(0);
    }
  }

  // Scores of each slot's candidates (in row-major order of the weight): per
  // prompt, |w * sum over positions (a - mean a) * dL/dout|, summed.
  std::vector<torch::Tensor> score(n_slots);
  {
    const int64_t n = static_cast<int64_t>(task.train.size());
    const int64_t step = std::max(2, options.batch_prompts + options.batch_prompts % 2);
    const int64_t n_batches = (n + step - 1) / step;
    std::vector<std::vector<torch::Tensor>> per_batch(n_batches);
    ParallelFor(n_batches, [&](int64_t i) {
      torch::AutoGradMode grad_mode(/*enabled=*/true);
      const int64_t start = i * step, end = std::min(n, start + step);
      const std::vector<TaskExample> chunk(task.train.begin() + start, task.train.begin() + end);
      const TaskBatch batch = MakeTaskBatch(chunk, device);
      Taps taps(index.layout());
      taps.Add(GateTap(&gates, &means, options.ablation));
      std::vector<torch::Tensor> inputs(n_slots), deltas(n_slots);
      // A zero added to each product: its gradient is dL/dout.
      taps.SetProduct([&](int layer, Product p, const torch::Tensor& in, const torch::Tensor&,
                          torch::Tensor out) {
        const int s = Slot(layer, p);
        inputs[s] = in.detach();
        deltas[s] = torch::zeros_like(out).requires_grad_(true);
        return out + deltas[s];
      });
      const torch::Tensor logits = model.AnswerLogits(batch.tokens, batch.last, &taps);
      const torch::Tensor loss = TaskLossPerExample(logits, batch).sum();
      const std::vector<torch::Tensor> grads = torch::autograd::grad({loss}, deltas);
      torch::NoGradGuard no_grad;
      std::vector<torch::Tensor>& out = per_batch[i];
      out.resize(n_slots);
      for (int l = 0; l < n_layer; ++l) {
        for (Product p : kAllProducts) {
          const int s = Slot(l, p);
          const torch::Tensor a = inputs[s] - source_mean[s];
          torch::Tensor per_prompt;  // (B, weight shape)
          if (p == Product::kBdhEncoder) {
            per_prompt = torch::einsum("btd,bhtn->bhdn", {a.squeeze(1), grads[s]});
          } else if (p == Product::kBdhEncoderV) {
            per_prompt = torch::einsum("bhtd,bhtn->bhdn", {a, grads[s]});
          } else {
            per_prompt = torch::einsum("btk,btd->bkd", {a, grads[s]});
          }
          out[s] = (per_prompt * Weight(model, p).unsqueeze(0)).abs().sum(0).masked_select(candidate[s]);
        }
      }
    });
    torch::NoGradGuard no_grad;
    for (int s = 0; s < n_slots; ++s) {
      score[s] = per_batch[0][s];  // summed in batch order: the same for any thread count
      for (int64_t i = 1; i < n_batches; ++i) score[s] = score[s] + per_batch[i][s];
      score[s] = score[s].to(torch::kCPU, torch::kFloat64).contiguous();
    }
  }

  torch::NoGradGuard no_grad;
  std::vector<Candidate> candidates;
  for (int s = 0; s < n_slots; ++s) {
    const torch::Tensor entries = candidate[s].flatten().nonzero().flatten().to(torch::kCPU).contiguous();
    const int64_t* e = entries.data_ptr<int64_t>();
    const double* sc = score[s].data_ptr<double>();  // in the same order
    for (int64_t i = 0; i < entries.numel(); ++i) candidates.push_back({s, e[i], sc[i]});
  }
  // Highest score first; ties in (slot, entry) order.
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  const int64_t E = static_cast<int64_t>(candidates.size());

  // The circuit with the top m candidates: the others' contributions replaced
  // by their sources' ablated values, out - (in - mean) . (w * ablated).
  std::vector<torch::Tensor> ablated_weight(n_slots);
  auto set_kept = [&](int64_t m) {
    std::vector<torch::Tensor> mask(n_slots);
    for (int s = 0; s < n_slots; ++s) {
      mask[s] = candidate[s].to(torch::kCPU, torch::kFloat32).contiguous().flatten();
    }
    for (int64_t i = 0; i < m; ++i) mask[candidates[i].slot].data_ptr<float>()[candidates[i].entry] = 0;
    for (int l = 0; l < n_layer; ++l) {
      for (Product p : kAllProducts) {
        const int s = Slot(l, p);
        const torch::Tensor w = Weight(model, p);
        ablated_weight[s] =
            mask[s].max().item<float>() > 0 ? w * mask[s].view(w.sizes()).to(w.device(), w.scalar_type())
                                            : torch::Tensor();
      }
    }
  };
  const ProductFn ablate = [&](int layer, Product p, const torch::Tensor& in, const torch::Tensor&,
                               torch::Tensor out) {
    const int s = Slot(layer, p);
    if (!ablated_weight[s].defined()) return out;
    return out - (in - source_mean[s]).matmul(ablated_weight[s]);
  };
  AblationEvaluator val(model, index, means, options.ablation, task.validation,
                        options.batch_prompts);
  val.SetProduct(ablate);
  EdgeSelection result;
  result.candidates = E;
  int64_t scored = -1;  // the set ablated_weight and the figures are of
  auto meets = [&](int64_t m) {
    scored = m;
    set_kept(m);
    const TaskScore sc = AblationEvaluator::ScoreDiffs(val.LogitDiffs(keep), options.calibration);
    ++result.evaluations;
    result.validation_loss = sc.loss;
    result.validation_bound = sc.loss + options.z * sc.loss_std_error;
    return result.validation_bound <= options.target_loss;
  };
  int64_t lo = 0, hi = E;  // hi meets the target (or is every candidate)
  result.met_target = meets(E);
  while (result.met_target && lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (meets(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  result.kept = hi;
  if (scored != hi) meets(hi);  // the chosen set's figures and ablated_weight
  AblationEvaluator test(model, index, means, options.ablation, task.test, options.batch_prompts);
  test.SetProduct(ablate);
  if (!task.test.empty()) result.test_loss = test.Score(keep, options.calibration).loss;

  // The kept weights as edges between node rows, then the links.
  std::vector<Node> nodes;
  for (int64_t f : flat) nodes.push_back(index.At(f));
  auto row_of = [&](int site, int64_t channel) {
    const int64_t f = index.site_offset(site) + channel;
    return static_cast<int64_t>(std::lower_bound(flat.begin(), flat.end(), f) - flat.begin());
  };
  result.edges = BdhLinkEdges(model, nodes);
  std::vector<torch::Tensor> weights;
  for (Product p : kAllProducts) {
    weights.push_back(Weight(model, p).to(torch::kCPU, torch::kFloat32).contiguous().flatten());
  }
  for (int64_t i = 0; i < result.kept; ++i) {
    const Candidate& k = candidates[i];
    const int layer = k.slot / kProducts;
    const Product p = kAllProducts[k.slot % kProducts];
    const Ends e = EndsOf(index, layer, p);
    const auto [src, dst] = Channels(k.entry, p, D, N);
    const float w = weights[k.slot % kProducts].data_ptr<float>()[k.entry];
    result.edges.push_back(CircuitEdge{row_of(e.src_site, src), row_of(e.dst_site, dst), w});
  }
  SortEdges(&result.edges);
  return result;
}

}  // namespace circuit::prune
