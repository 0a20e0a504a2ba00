// The reference logits the Python fixture scripts write (reference.json:
// tokens, shape, logits, and for BDH n_layer), read for the import tests.
#ifndef CIRCUIT_TESTS_RELEASE_IO_REFERENCE_JSON_H_
#define CIRCUIT_TESTS_RELEASE_IO_REFERENCE_JSON_H_

#include <torch/torch.h>

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace circuit::testing {

struct Reference {
  int n_layer = 0;       // BDH fixtures only (not in the state dict)
  torch::Tensor tokens;  // (B, T) int64
  torch::Tensor logits;  // (B, T, V)
};

inline Reference ReadReference(const std::string& dir) {
  std::ifstream in(dir + "/reference.json");
  nlohmann::json j = nlohmann::json::parse(in);
  auto tokens = j["tokens"].get<std::vector<std::vector<int64_t>>>();
  auto shape = j["shape"].get<std::vector<int64_t>>();
  auto logits = j["logits"].get<std::vector<float>>();
  Reference ref;
  if (j.contains("n_layer")) ref.n_layer = j["n_layer"].get<int>();
  ref.tokens = torch::empty(
      {static_cast<int64_t>(tokens.size()), static_cast<int64_t>(tokens[0].size())}, torch::kInt64);
  for (size_t b = 0; b < tokens.size(); ++b) {
    for (size_t t = 0; t < tokens[b].size(); ++t) ref.tokens[b][t] = tokens[b][t];
  }
  ref.logits = torch::from_blob(logits.data(), shape, torch::kFloat32).clone();
  return ref;
}

}  // namespace circuit::testing

#endif  // CIRCUIT_TESTS_RELEASE_IO_REFERENCE_JSON_H_
