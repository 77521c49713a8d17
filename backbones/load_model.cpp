#include "backbones/load_model.h"

#include <filesystem>

#include "backbones/llada_format.h"
#include "backbones/transformer.h"
#include "engine/core/error.h"

namespace dlm {

namespace {

TransformerTensorNames tensor_names(const FamilyTraits& family) {
  return family.format == CheckpointFormat::Llada ? llada_tensor_names()
                                                  : TransformerTensorNames::hugging_face();
}

}  // namespace

LoadedModel load_model(Backend& backend, const std::string& dir, const ModelLoadOptions& options) {
  const std::filesystem::path root(dir);
  if (!std::filesystem::is_directory(root)) fail_input("{}: not a model directory", dir);
  const std::filesystem::path config_path = root / "config.json";
  if (!std::filesystem::exists(config_path)) fail_input("{}: no config.json in the model directory", dir);
  const HfConfig config = HfConfig::load(config_path.string());
  const FamilyTraits& family = identify_family(config);
  std::optional<HfConfig> generation_config;
  if (std::filesystem::exists(root / "generation_config.json"))
    generation_config = HfConfig::load((root / "generation_config.json").string());
  const ModelOverlay builtin = builtin_model_overlay(family.name);
  std::optional<ModelOverlay> user;
  if (!options.overlay_path.empty()) user = load_model_overlay(options.overlay_path);

  const TransformerConfig transformer = read_transformer_config(family, config);
  LoadedModel model;
  model.dir = dir;
  model.tokenizer = load_tokenizer(root);
  if (model.tokenizer->vocab_size() > transformer.vocab_size) {
    fail_input("{}: the tokenizer has {} tokens but the model's vocabulary only {}", dir,
               model.tokenizer->vocab_size(), transformer.vocab_size);
  }
  model.spec = resolve_model_spec(family, config, generation_config, *model.tokenizer, transformer.vocab_size,
                                  builtin, user ? &*user : nullptr);
  model.backbone = std::make_unique<TransformerModel>(backend, transformer, Checkpoint::open(dir),
                                                      tensor_names(family), dir, options.precision);
  return model;
}

}  // namespace dlm
