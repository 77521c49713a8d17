#include "backbones/load_backbone.h"

#include "backbones/llama.h"

namespace dlm {

std::unique_ptr<Backbone> load_backbone(Backend& backend, const HfConfig& config,
                                        const std::string& model_dir) {
  const std::string model_type = config.required<std::string>("model_type");
  if (model_type == "llama") {
    return std::make_unique<LlamaModel>(backend, LlamaConfig::from_hf(config), Checkpoint::open(model_dir),
                                        model_dir);
  }
  fail_input("{}: model_type '{}' is not supported (supported: llama)", config.source(), model_type);
}

}  // namespace dlm
