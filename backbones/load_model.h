#pragma once
// Opens a Hugging Face model directory: config.json (which names the family), the safetensors weights
// (one file or shards with an index), the tokenizer, generation_config.json when present, and the overlays.
#include <memory>
#include <string>

#include "backbones/backbone.h"
#include "backbones/model_spec.h"
#include "engine/backend/backend.h"
#include "engine/tokenizer/tokenizer.h"

namespace dlm {

struct ModelLoadOptions {
  std::string overlay_path;  // a user model overlay (YAML); empty: none
  ActivationPrecision precision = ActivationPrecision::Auto;
};

struct LoadedModel {
  std::string dir;
  ModelSpec spec;
  std::unique_ptr<Backbone> backbone;
  std::unique_ptr<Tokenizer> tokenizer;
};

// InputError naming the directory or file and the fault: not a directory, a missing or malformed
// config.json, an unsupported model_type, missing or mis-shaped tensors (all of them listed), a missing
// shard, no tokenizer, a tokenizer larger than the model's vocabulary, or a bad overlay.
LoadedModel load_model(Backend& backend, const std::string& dir, const ModelLoadOptions& options = {});

}  // namespace dlm
