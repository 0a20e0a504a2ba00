// Loading a model file of either architecture (circuit/core/any_model.h).
#include "circuit/core/any_model.h"

#include <utility>

#include "circuit/core/arch.h"
#include "circuit/core/bdh.h"
#include "circuit/core/bdh_checkpoint.h"
#include "absl/strings/str_cat.h"
#include "circuit/core/status.h"

namespace circuit {

absl::StatusOr<AnyModelFile> LoadAnyModel(const std::string& path, torch::Device device) {
  CIRCUIT_ASSIGN_OR_RETURN(std::string arch, ReadModelArch(path));
  if (arch == kArchBdh) {
    CIRCUIT_ASSIGN_OR_RETURN(BdhModelFile f, LoadBdhModel(path, device));
    return AnyModelFile{std::make_shared<const BdhModel>(std::move(f.model)),
                        std::move(f.tokenizer), std::move(f.training), std::move(f.path),
                        std::move(f.digest), arch};
  }
  CIRCUIT_ASSIGN_OR_RETURN(ModelFile f, LoadModel(path, device));
  return AnyModelFile{std::make_shared<const Model>(std::move(f.model)), std::move(f.tokenizer),
                      std::move(f.training), std::move(f.path), std::move(f.digest), arch};
}

absl::StatusOr<ModelFile> GptFileOf(const AnyModelFile& file, const std::string& what) {
  if (file.gpt() == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(what, " exists for GPT models only; ", file.path,
                                                   " is a ", file.arch, " model"));
  }
  return ModelFile{*file.gpt(), file.tokenizer, file.training, file.path, file.digest};
}

}  // namespace circuit
