// How the GPT's softmax attention bounds its memory: on the CPU in float at
// head width 16 a fused kernel holds one query's scores at a time, forward
// and backward; otherwise (and when the sink takes a gradient, in training)
// torch's kernels compute scores (B, H, Tq, Tk) that would exceed
// MaxAttentionScores() floats in chunks of queries (the paper's 128 heads over
// a 1,024-token window: 512 MB of scores per layer at once otherwise). The
// figures do not depend on the chunks.
#ifndef CIRCUIT_CORE_ATTENTION_H_
#define CIRCUIT_CORE_ATTENTION_H_

#include <cstdint>

namespace circuit {

int64_t MaxAttentionScores();                // 2^24 (64 MB) unless set
void SetMaxAttentionScores(int64_t floats);  // at least 1; tests set it small

// Whether float passes on the CPU at head width 16 use the fused kernel and
// its backward pass (one query's scores at a time, no (B, H, Tq, Tk) tensor)
// instead of torch's: yes unless $CIRCUIT_FUSED_ATTENTION is 0 (to compare; the
// figures agree up to float rounding, docs/performance.md).
bool FusedAttention();
void SetFusedAttention(bool on);  // tests compare the two

}  // namespace circuit

#endif  // CIRCUIT_CORE_ATTENTION_H_
