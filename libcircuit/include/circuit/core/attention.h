// How the GPT's softmax attention bounds its memory: a pass whose scores
// (B, H, Tq, Tk) would exceed MaxAttentionScores() floats computes them in
// chunks of queries (the paper's 128 heads over a 1,024-token window: 512 MB
// of scores per layer at once otherwise). The figures do not depend on it.
#ifndef CIRCUIT_CORE_ATTENTION_H_
#define CIRCUIT_CORE_ATTENTION_H_

#include <cstdint>

namespace circuit {

int64_t MaxAttentionScores();                // 2^24 (64 MB) unless set
void SetMaxAttentionScores(int64_t floats);  // at least 1; tests set it small

}  // namespace circuit

#endif  // CIRCUIT_CORE_ATTENTION_H_
