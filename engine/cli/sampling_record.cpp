#include "engine/cli/sampling_record.h"

namespace dlm::cli {

nlohmann::ordered_json sampling_record(const SamplingConfig& s, uint64_t seed) {
  nlohmann::ordered_json out = {{"method", std::string(enum_name(s.method, kMethodNames))},
                                {"gen_length", s.gen_length},
                                {"steps", s.steps},
                                {"block_length", s.block_length},
                                {"temperature", s.temperature},
                                {"remasking", std::string(enum_name(s.remasking, kRemaskingNames))},
                                {"commit", std::string(enum_name(s.commit, kCommitRuleNames))},
                                {"cache", std::string(enum_name(s.cache, kCacheModeNames))},
                                {"seed", seed}};
  if (s.method == Method::BlockDiffusion) out["sub_block_length"] = s.sub_block_length;
  if (s.commit == CommitRule::Threshold || s.commit == CommitRule::Dynamic) out["threshold"] = s.threshold;
  if (s.commit == CommitRule::Factor) out["factor"] = s.factor;
  if (s.commit == CommitRule::EntropyBound) out["entropy_bound"] = s.entropy_bound;
  return out;
}

}  // namespace dlm::cli
