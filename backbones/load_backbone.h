#pragma once
// Builds the backbone a model directory's config.json names, over the directory's safetensors weights.
#include <memory>
#include <string>

#include "backbones/backbone.h"
#include "engine/backend/backend.h"
#include "engine/io/hf_config.h"

namespace dlm {

// InputError for an architecture this engine does not implement, naming the model_type and the supported
// ones.
std::unique_ptr<Backbone> load_backbone(Backend& backend, const HfConfig& config,
                                        const std::string& model_dir);

}  // namespace dlm
