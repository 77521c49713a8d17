#include "backbones/transformer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <random>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/half.h"
#include "engine/io/hf_config.h"
#include "tests/unit/input_error.h"

namespace dlm {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// GQA (4 query heads share 2 KV heads), an intermediate width unlike the hidden one, several layers.
TransformerConfig tiny_config() {
  TransformerConfig c;
  c.vocab_size = 23;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 4;
  c.max_positions = 64;
  c.rope.theta = 10000.0;
  c.rms_norm_eps = 1e-5f;
  return c;
}

// Named f32 parameters, kept as plain vectors so the reference below can read them too.
struct Parameter {
  std::string name;
  Shape shape;
  std::vector<float> values;
};

struct Parameters {
  std::vector<Parameter> list;

  const std::vector<float>& get(const std::string& name) const { return find(name).values; }
  Parameter& find(const std::string& name) {
    return const_cast<Parameter&>(static_cast<const Parameters&>(*this).find(name));
  }
  const Parameter& find(const std::string& name) const {
    for (const Parameter& p : list) {
      if (p.name == name) return p;
    }
    throw std::runtime_error("no parameter " + name);
  }
  void remove(const std::string& name) {
    std::erase_if(list, [&](const Parameter& p) { return p.name == name; });
  }
  void add(const std::string& name, Shape shape, std::mt19937& rng, float mean, float std) {
    std::normal_distribution<float> normal(mean, std);
    std::vector<float> values(static_cast<size_t>(shape.numel()));
    for (float& v : values) v = normal(rng);
    list.push_back({name, shape, std::move(values)});
  }
};

Parameters random_parameters(const TransformerConfig& c, uint32_t seed) {
  std::mt19937 rng(seed);
  Parameters p;
  const int64_t q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  p.add("model.embed_tokens.weight", Shape{c.vocab_size, c.hidden_size}, rng, 0.0f, 1.0f);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string l = fmt::format("model.layers.{}.", i);
    // Norm weights away from 1, so a norm that ignored its weight would show.
    p.add(l + "input_layernorm.weight", Shape{c.hidden_size}, rng, 1.0f, 0.2f);
    p.add(l + "self_attn.q_proj.weight", Shape{q, c.hidden_size}, rng, 0.0f, 0.3f);
    p.add(l + "self_attn.k_proj.weight", Shape{kv, c.hidden_size}, rng, 0.0f, 0.3f);
    p.add(l + "self_attn.v_proj.weight", Shape{kv, c.hidden_size}, rng, 0.0f, 0.3f);
    p.add(l + "self_attn.o_proj.weight", Shape{c.hidden_size, q}, rng, 0.0f, 0.3f);
    p.add(l + "post_attention_layernorm.weight", Shape{c.hidden_size}, rng, 1.0f, 0.2f);
    p.add(l + "mlp.gate_proj.weight", Shape{c.intermediate_size, c.hidden_size}, rng, 0.0f, 0.3f);
    p.add(l + "mlp.up_proj.weight", Shape{c.intermediate_size, c.hidden_size}, rng, 0.0f, 0.3f);
    p.add(l + "mlp.down_proj.weight", Shape{c.hidden_size, c.intermediate_size}, rng, 0.0f, 0.3f);
  }
  p.add("model.norm.weight", Shape{c.hidden_size}, rng, 1.0f, 0.2f);
  p.add("lm_head.weight", Shape{c.vocab_size, c.hidden_size}, rng, 0.0f, 0.3f);
  return p;
}

// A scalar, double-precision implementation of Hugging Face's TransformerModel equations for one sequence
// (RMSNorm, rotate_half RoPE, repeat_kv GQA, softmax(QK^T/sqrt(d))V, SwiGLU), written independently of the op
// layer. Returns logits [T][vocab].
std::vector<std::vector<double>> reference_logits(const TransformerConfig& c, const Parameters& p,
                                                  const std::vector<int32_t>& ids, bool causal) {
  using Matrix = std::vector<std::vector<double>>;
  const int64_t T = static_cast<int64_t>(ids.size()), D = c.hidden_size, hd = c.head_dim;
  auto linear = [](const Matrix& x, const std::vector<float>& w, int64_t out) {
    Matrix y(x.size(), std::vector<double>(static_cast<size_t>(out)));
    const size_t in = x[0].size();
    for (size_t t = 0; t < x.size(); ++t) {
      for (int64_t o = 0; o < out; ++o) {
        double sum = 0;
        for (size_t i = 0; i < in; ++i) sum += x[t][i] * w[static_cast<size_t>(o) * in + i];
        y[t][static_cast<size_t>(o)] = sum;
      }
    }
    return y;
  };
  auto rms_norm = [&](const Matrix& x, const std::vector<float>& w) {
    Matrix y = x;
    for (auto& row : y) {
      double mean_square = 0;
      for (double v : row) mean_square += v * v / static_cast<double>(row.size());
      const double scale = 1.0 / std::sqrt(mean_square + c.rms_norm_eps);
      for (size_t i = 0; i < row.size(); ++i) row[i] *= scale * w[i];
    }
    return y;
  };
  auto rope = [&](Matrix& x, int64_t heads) {
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < heads; ++h) {
        double* v = x[static_cast<size_t>(t)].data() + h * hd;
        for (int64_t i = 0; i < hd / 2; ++i) {
          const double freq = std::pow(c.rope.theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
          const double cos = std::cos(static_cast<double>(t) * freq),
                       sin = std::sin(static_cast<double>(t) * freq);
          const double a = v[i], b = v[i + hd / 2];
          v[i] = a * cos - b * sin;
          v[i + hd / 2] = b * cos + a * sin;
        }
      }
    }
  };

  const auto& embed = p.get("model.embed_tokens.weight");
  Matrix h(static_cast<size_t>(T), std::vector<double>(static_cast<size_t>(D)));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t d = 0; d < D; ++d) h[t][d] = embed[static_cast<size_t>(ids[t] * D + d)];
  }
  const int64_t group = c.num_heads / c.num_kv_heads;
  for (int64_t layer = 0; layer < c.num_layers; ++layer) {
    const std::string l = fmt::format("model.layers.{}.", layer);
    Matrix x = rms_norm(h, p.get(l + "input_layernorm.weight"));
    Matrix q = linear(x, p.get(l + "self_attn.q_proj.weight"), c.num_heads * hd);
    Matrix k = linear(x, p.get(l + "self_attn.k_proj.weight"), c.num_kv_heads * hd);
    Matrix v = linear(x, p.get(l + "self_attn.v_proj.weight"), c.num_kv_heads * hd);
    rope(q, c.num_heads);
    rope(k, c.num_kv_heads);
    Matrix attention(static_cast<size_t>(T), std::vector<double>(static_cast<size_t>(c.num_heads * hd)));
    for (int64_t head = 0; head < c.num_heads; ++head) {
      const int64_t kv_head = head / group;
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> scores;
        for (int64_t j = 0; j < T; ++j) {
          double s = 0;
          for (int64_t d = 0; d < hd; ++d) s += q[i][head * hd + d] * k[j][kv_head * hd + d];
          scores.push_back(causal && j > i ? -INFINITY : s / std::sqrt(static_cast<double>(hd)));
        }
        const double max = *std::max_element(scores.begin(), scores.end());
        double total = 0;
        for (double& s : scores) total += (s = std::exp(s - max));
        for (int64_t j = 0; j < T; ++j) {
          for (int64_t d = 0; d < hd; ++d)
            attention[i][head * hd + d] += scores[j] / total * v[j][kv_head * hd + d];
        }
      }
    }
    Matrix o = linear(attention, p.get(l + "self_attn.o_proj.weight"), D);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t d = 0; d < D; ++d) h[t][d] += o[t][d];
    }
    x = rms_norm(h, p.get(l + "post_attention_layernorm.weight"));
    Matrix gate = linear(x, p.get(l + "mlp.gate_proj.weight"), c.intermediate_size);
    Matrix up = linear(x, p.get(l + "mlp.up_proj.weight"), c.intermediate_size);
    for (size_t t = 0; t < gate.size(); ++t) {
      for (size_t i = 0; i < gate[t].size(); ++i)
        gate[t][i] = gate[t][i] / (1.0 + std::exp(-gate[t][i])) * up[t][i];
    }
    Matrix down = linear(gate, p.get(l + "mlp.down_proj.weight"), D);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t d = 0; d < D; ++d) h[t][d] += down[t][d];
    }
  }
  return linear(rms_norm(h, p.get("model.norm.weight")), p.get("lm_head.weight"), c.vocab_size);
}

class TransformerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / fmt::format("dlm_transformer_{}_{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes the parameters as one safetensors file, in f32 or bf16. A parameter whose shape was changed is
  // written with its values truncated or zero-padded to the new shape.
  std::string write(const Parameters& p, DType dtype = DType::F32) {
    std::vector<HostTensor> storage;
    std::vector<NamedTensor> named;
    for (const Parameter& parameter : p.list) {
      std::vector<float> values = parameter.values;
      values.resize(static_cast<size_t>(parameter.shape.numel()));
      if (dtype == DType::F32) {
        storage.push_back(HostTensor::from(parameter.shape, values));
      } else {
        storage.emplace_back(DType::BF16, parameter.shape);
        auto* bits = static_cast<uint16_t*>(storage.back().tensor().data());
        for (size_t j = 0; j < values.size(); ++j) bits[j] = f32_to_bf16(values[j]);
      }
    }
    for (size_t i = 0; i < p.list.size(); ++i) named.push_back({p.list[i].name, storage[i].tensor()});
    const std::string path = (dir_ / "model.safetensors").string();
    write_safetensors(path, named);
    return path;
  }

  TransformerModel model(const Parameters& p, DType dtype = DType::F32) {
    return TransformerModel(backend_, config_, Checkpoint::open(write(p, dtype)),
                            TransformerTensorNames::hugging_face(), "tiny");
  }

  // Logits of every row of one forward, as doubles.
  static std::vector<std::vector<float>> rows_of(const ForwardResult& result) {
    const Tensor& logits = result.logits;
    std::vector<std::vector<float>> rows;
    const float* data = logits.data_as<float>();
    for (int64_t r = 0; r < logits.dim(0); ++r)
      rows.emplace_back(data + r * logits.dim(1), data + (r + 1) * logits.dim(1));
    return rows;
  }

  static ForwardBatch batch_of(const std::vector<std::vector<int32_t>>& sequences, Visibility visibility) {
    ForwardBatch batch;
    for (const auto& ids : sequences) batch.add_sequence(ids);
    for (int32_t row = 0; row < batch.tokens(); ++row) batch.logit_rows.push_back(row);
    batch.visibility = visibility;
    return batch;
  }

  CpuBackend backend_{2};
  TransformerConfig config_ = tiny_config();
  fs::path dir_;
};

TEST_F(TransformerTest, MatchesAScalarReferenceOfTheLlamaEquations) {
  const Parameters p = random_parameters(config_, 1);
  TransformerModel transformer = model(p);
  const std::vector<int32_t> ids = {3, 17, 0, 22, 9, 9, 4};
  for (bool causal : {false, true}) {
    const auto expected = reference_logits(config_, p, ids, causal);
    const auto got = rows_of(
        transformer.forward(batch_of({ids}, causal ? Visibility::causal() : Visibility::bidirectional())));
    ASSERT_EQ(got.size(), ids.size());
    for (size_t t = 0; t < ids.size(); ++t) {
      for (int64_t v = 0; v < config_.vocab_size; ++v) {
        ASSERT_NEAR(got[t][v], expected[t][v], 2e-4) << "causal " << causal << " row " << t << " token " << v;
      }
    }
  }
}

TEST_F(TransformerTest, BatchOfTwoSequencesEqualsEachAlone) {
  TransformerModel transformer = model(random_parameters(config_, 2));
  const std::vector<int32_t> a = {1, 2, 3, 4, 5}, b = {7, 8, 9};
  const auto alone_a = rows_of(transformer.forward(batch_of({a}, Visibility::bidirectional())));
  const auto alone_b = rows_of(transformer.forward(batch_of({b}, Visibility::bidirectional())));
  const auto together = rows_of(transformer.forward(batch_of({a, b}, Visibility::bidirectional())));
  ASSERT_EQ(together.size(), a.size() + b.size());
  for (size_t t = 0; t < a.size(); ++t) EXPECT_EQ(together[t], alone_a[t]) << "row " << t;
  for (size_t t = 0; t < b.size(); ++t) EXPECT_EQ(together[a.size() + t], alone_b[t]) << "row " << t;
}

TEST_F(TransformerTest, CausalAndBidirectionalDiffer) {
  TransformerModel transformer = model(random_parameters(config_, 3));
  const std::vector<int32_t> ids = {4, 11, 6, 19};
  const auto bidirectional = rows_of(transformer.forward(batch_of({ids}, Visibility::bidirectional())));
  const auto causal = rows_of(transformer.forward(batch_of({ids}, Visibility::causal())));
  // The first position sees only itself under the causal rule, and every position otherwise.
  EXPECT_NE(causal[0], bidirectional[0]);

  // Causal rows do not depend on later tokens; bidirectional ones do.
  std::vector<int32_t> changed = ids;
  changed.back() = 20;
  const auto causal_changed = rows_of(transformer.forward(batch_of({changed}, Visibility::causal())));
  const auto bidirectional_changed =
      rows_of(transformer.forward(batch_of({changed}, Visibility::bidirectional())));
  for (size_t t = 0; t + 1 < ids.size(); ++t) {
    EXPECT_EQ(causal_changed[t], causal[t]) << "row " << t;
    EXPECT_NE(bidirectional_changed[t], bidirectional[t]) << "row " << t;
  }
}

TEST_F(TransformerTest, RequestedRowsEqualTheSameRowsOfTheFullOutput) {
  TransformerModel transformer = model(random_parameters(config_, 4));
  ForwardBatch batch = batch_of({{1, 2, 3, 4}, {5, 6, 7}}, Visibility::bidirectional());
  const auto full = rows_of(transformer.forward(batch));
  batch.logit_rows = {5, 0, 3};  // any subset, in any order
  const auto some = rows_of(transformer.forward(batch));
  ASSERT_EQ(some.size(), 3u);
  EXPECT_EQ(some[0], full[5]);
  EXPECT_EQ(some[1], full[0]);
  EXPECT_EQ(some[2], full[3]);

  batch.logit_rows.clear();
  EXPECT_EQ(transformer.forward(batch).logits.dim(0), 0);
}

TEST_F(TransformerTest, Bf16WeightsAreCloseToF32) {
  const Parameters p = random_parameters(config_, 5);
  const std::vector<int32_t> ids = {2, 4, 8, 16};
  const auto f32 = rows_of(model(p, DType::F32).forward(batch_of({ids}, Visibility::bidirectional())));
  const auto bf16 = rows_of(model(p, DType::BF16).forward(batch_of({ids}, Visibility::bidirectional())));
  double max_diff = 0;
  for (size_t t = 0; t < ids.size(); ++t) {
    for (int64_t v = 0; v < config_.vocab_size; ++v)
      max_diff = std::max<double>(max_diff, std::abs(f32[t][v] - bf16[t][v]));
  }
  EXPECT_GT(max_diff, 0.0);  // the weights really were rounded
  EXPECT_LT(max_diff, 0.1);  // bf16 keeps 8 bits of mantissa
}

TEST_F(TransformerTest, RejectsTokenIdsAndPositionsOutsideTheModel) {
  TransformerModel transformer = model(random_parameters(config_, 6));
  EXPECT_THROW(transformer.forward(batch_of({{1, 23}}, Visibility::bidirectional())), InputError);
  ForwardBatch batch = batch_of({{1, 2}}, Visibility::bidirectional());
  batch.positions[1] = 64;
  EXPECT_THROW(transformer.forward(batch), InputError);
}

TEST_F(TransformerTest, LoaderReportsEveryMissingAndMismatchedTensorAtOnce) {
  Parameters p = random_parameters(config_, 7);
  // Drop two tensors and give a third the wrong shape.
  p.remove("lm_head.weight");
  p.remove("model.layers.1.mlp.up_proj.weight");
  p.find("model.layers.0.self_attn.k_proj.weight").shape = Shape{16, 8};
  const std::string error = input_error_of([&] { model(p); });
  EXPECT_THAT(
      error,
      AllOf(HasSubstr("3 weight problems"), HasSubstr("lm_head.weight: missing (expected shape [23,16])"),
            HasSubstr("model.layers.1.mlp.up_proj.weight: missing (expected shape [24,16])"),
            HasSubstr("model.layers.0.self_attn.k_proj.weight: expected shape [8,16], got [16,8]")));
}

TEST_F(TransformerTest, TiedEmbeddingsNeedNoLmHead) {
  Parameters p = random_parameters(config_, 8);
  p.remove("lm_head.weight");
  config_.tie_word_embeddings = true;
  TransformerModel transformer = model(p);
  // The reference with the embedding table as the LM head.
  p.list.push_back(
      {"lm_head.weight", Shape{config_.vocab_size, config_.hidden_size}, p.get("model.embed_tokens.weight")});
  const std::vector<int32_t> ids = {1, 2, 5};
  const auto expected = reference_logits(config_, p, ids, false);
  const auto got = rows_of(transformer.forward(batch_of({ids}, Visibility::bidirectional())));
  for (size_t t = 0; t < ids.size(); ++t) {
    for (int64_t v = 0; v < config_.vocab_size; ++v) ASSERT_NEAR(got[t][v], expected[t][v], 2e-4);
  }
}

TEST_F(TransformerTest, SummaryListsCheckpointTensorsTheModelDoesNotUse) {
  Parameters p = random_parameters(config_, 9);
  std::mt19937 rng(9);
  // What a Qwen3 checkpoint read as Llama would leave unread.
  p.add("model.layers.0.self_attn.q_norm.weight", Shape{config_.head_dim}, rng, 1.0f, 0.1f);
  p.add("model.layers.0.self_attn.k_norm.weight", Shape{config_.head_dim}, rng, 1.0f, 0.1f);
  const BackboneSummary summary = model(p).summary();
  EXPECT_EQ(summary.unused_tensors, (std::vector<std::string>{"model.layers.0.self_attn.k_norm.weight",
                                                              "model.layers.0.self_attn.q_norm.weight"}));
  EXPECT_TRUE(model(random_parameters(config_, 9)).summary().unused_tensors.empty());
}

// Caches. Keys are stored after RoPE and read back by position, so a cached call must give what the same
// rows give in a full forward over the whole sequence.
class TransformerCacheTest : public TransformerTest {
 protected:
  static ForwardBatch rows_at(const std::vector<int32_t>& ids, const std::vector<int32_t>& positions,
                              Visibility visibility, SequenceCache* cache, CachePolicy policy) {
    ForwardBatch batch;
    batch.add_sequence(ids, positions);
    for (int32_t row = 0; row < batch.tokens(); ++row) batch.logit_rows.push_back(row);
    batch.visibility = visibility;
    batch.caches = {{cache, policy}};
    return batch;
  }
  static std::vector<int32_t> range(int32_t begin, int32_t end) {
    std::vector<int32_t> out;
    for (int32_t i = begin; i < end; ++i) out.push_back(i);
    return out;
  }
  static std::vector<int32_t> take(const std::vector<int32_t>& ids, int32_t begin, int32_t end) {
    return {ids.begin() + begin, ids.begin() + end};
  }
  static void expect_rows_near(const std::vector<std::vector<float>>& got,
                               const std::vector<std::vector<float>>& full, size_t first_full_row) {
    for (size_t r = 0; r < got.size(); ++r) {
      for (size_t v = 0; v < got[r].size(); ++v)
        ASSERT_NEAR(got[r][v], full[first_full_row + r][v], 1e-5) << "row " << r << " token " << v;
    }
  }
  const std::vector<int32_t> ids_ = {3, 17, 1, 22, 9, 9, 4, 12, 5, 20};
};

TEST_F(TransformerCacheTest, PrefixCacheThenReadEqualsTheFullForward) {
  // Fast-dLLM's prefix cache: one full forward commits every position, the cache keeps the prefix, and
  // later calls compute only the rest while reading the prefix.
  TransformerModel transformer = model(random_parameters(config_, 11));
  const auto full = rows_of(transformer.forward(batch_of({ids_}, Visibility::bidirectional())));
  std::unique_ptr<SequenceCache> cache = transformer.new_cache(16);
  transformer.forward(
      rows_at(ids_, range(0, 10), Visibility::bidirectional(), cache.get(), CachePolicy::Commit));
  EXPECT_EQ(cache->length(), 10);
  cache->truncate(4);
  const auto rest = rows_of(transformer.forward(
      rows_at(take(ids_, 4, 10), range(4, 10), Visibility::bidirectional(), cache.get(), CachePolicy::Read)));
  EXPECT_EQ(cache->length(), 4);  // a read writes nothing
  expect_rows_near(rest, full, 4);
}

TEST_F(TransformerCacheTest, ReplaceOverwritesCachedKeysInPlace) {
  // With one layer every key depends on its own token only, so replacing a block's entries after its tokens
  // change must equal a full forward of the changed sequence: stale entries would show.
  config_.num_layers = 1;
  TransformerModel transformer = model(random_parameters(config_, 12));
  std::unique_ptr<SequenceCache> cache = transformer.new_cache(10);
  transformer.forward(
      rows_at(ids_, range(0, 10), Visibility::bidirectional(), cache.get(), CachePolicy::Commit));
  std::vector<int32_t> changed = ids_;
  changed[5] = 0;
  changed[6] = 1;
  const auto full = rows_of(transformer.forward(batch_of({changed}, Visibility::bidirectional())));
  // Rows in any order: the cache is addressed by position.
  const auto block = rows_of(transformer.forward(rows_at(
      {changed[6], changed[5]}, {6, 5}, Visibility::bidirectional(), cache.get(), CachePolicy::Replace)));
  EXPECT_EQ(cache->length(), 10);
  expect_rows_near({block[1]}, full, 5);
  expect_rows_near({block[0]}, full, 6);
}

TEST_F(TransformerCacheTest, BlockByBlockCommitsEqualTheBlockCausalForward) {
  TransformerModel transformer = model(random_parameters(config_, 13));
  const Visibility visibility = Visibility::block_causal(4);
  const auto full = rows_of(transformer.forward(batch_of({ids_}, visibility)));
  std::unique_ptr<SequenceCache> cache = transformer.new_cache(10);
  for (int32_t begin = 0; begin < 10; begin += 4) {
    const int32_t end = std::min(begin + 4, 10);
    const auto block = rows_of(transformer.forward(
        rows_at(take(ids_, begin, end), range(begin, end), visibility, cache.get(), CachePolicy::Commit)));
    EXPECT_EQ(cache->length(), end);
    expect_rows_near(block, full, static_cast<size_t>(begin));
  }
}

TEST_F(TransformerCacheTest, CachedAndUncachedSequencesShareABatch) {
  TransformerModel transformer = model(random_parameters(config_, 14));
  const std::vector<int32_t> other = {7, 8, 9};
  const auto full = rows_of(transformer.forward(batch_of({ids_}, Visibility::causal())));
  const auto other_alone = rows_of(transformer.forward(batch_of({other}, Visibility::causal())));
  std::unique_ptr<SequenceCache> cache = transformer.new_cache(10);
  transformer.forward(
      rows_at(take(ids_, 0, 6), range(0, 6), Visibility::causal(), cache.get(), CachePolicy::Commit));

  ForwardBatch batch;
  batch.add_sequence(other);
  batch.add_sequence(take(ids_, 6, 10), 6);
  for (int32_t row = 0; row < batch.tokens(); ++row) batch.logit_rows.push_back(row);
  batch.visibility = Visibility::causal();
  batch.caches = {{nullptr, CachePolicy::None}, {cache.get(), CachePolicy::Read}};
  const auto together = rows_of(transformer.forward(batch));
  expect_rows_near({together.begin(), together.begin() + 3}, other_alone, 0);
  expect_rows_near({together.begin() + 3, together.end()}, full, 6);
}

TEST_F(TransformerCacheTest, RejectsPositionsThePolicyDoesNotAllow) {
  TransformerModel transformer = model(random_parameters(config_, 15));
  std::unique_ptr<SequenceCache> cache = transformer.new_cache(8);
  const Visibility causal = Visibility::causal();
  transformer.forward(rows_at({1, 2, 3}, {0, 1, 2}, causal, cache.get(), CachePolicy::Commit));
  auto error = [&](const ForwardBatch& batch) {
    try {
      transformer.forward(batch);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(error(rows_at({4}, {2}, causal, cache.get(), CachePolicy::Read)),
              HasSubstr("cached position 2"));
  EXPECT_THAT(error(rows_at({4}, {4}, causal, cache.get(), CachePolicy::Commit)), HasSubstr("leaving a gap"));
  EXPECT_THAT(error(rows_at({4}, {3}, causal, cache.get(), CachePolicy::Replace)),
              HasSubstr("only 3 positions"));
  EXPECT_THAT(error(rows_at({4, 5}, {3, 3}, causal, cache.get(), CachePolicy::Commit)),
              HasSubstr("repeats a position"));
  EXPECT_THAT(error(rows_at({4}, {8}, causal, cache.get(), CachePolicy::Commit)), HasSubstr("capacity 8"));
  EXPECT_THAT(error(rows_at({4}, {3}, causal, nullptr, CachePolicy::Read)), HasSubstr("no cache"));

  ForwardBatch twice;
  twice.add_sequence({4}, 3);
  twice.add_sequence({5}, 3);
  twice.visibility = causal;
  twice.caches = {{cache.get(), CachePolicy::Read}, {cache.get(), CachePolicy::Read}};
  EXPECT_THAT(error(twice), HasSubstr("another sequence"));
  EXPECT_EQ(cache->length(), 3);  // the failed calls wrote nothing
}

TEST_F(TransformerCacheTest, RefusesACacheMadeByAnotherModel) {
  TransformerModel transformer = model(random_parameters(config_, 17));
  TransformerModel other = model(random_parameters(config_, 18));
  std::unique_ptr<SequenceCache> foreign = other.new_cache(8);
  try {
    transformer.forward(rows_at({1}, {0}, Visibility::causal(), foreign.get(), CachePolicy::Commit));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("made by another model"));
  }
}

TEST_F(TransformerCacheTest, StatsDescribeTheLogitsRows) {
  TransformerModel transformer = model(random_parameters(config_, 19));
  ForwardBatch batch = batch_of({ids_}, Visibility::bidirectional());
  const auto logits = rows_of(transformer.forward(batch));
  batch.outputs = ForwardOutputs::Stats;
  const ForwardResult result = transformer.forward(batch);
  EXPECT_TRUE(result.logits.empty());
  for (size_t r = 0; r < logits.size(); ++r) {
    const auto best = std::max_element(logits[r].begin(), logits[r].end());
    double total = 0;
    for (float v : logits[r]) total += std::exp(static_cast<double>(v) - *best);
    EXPECT_EQ(result.stats.argmax.data_as<int32_t>()[r], best - logits[r].begin()) << "row " << r;
    EXPECT_NEAR(result.stats.max_prob.data_as<float>()[r], 1.0 / total, 1e-6) << "row " << r;
  }
}

TEST_F(TransformerCacheTest, ObserverSeesEveryLayer) {
  TransformerModel transformer = model(random_parameters(config_, 20));
  ForwardBatch batch = batch_of({ids_}, Visibility::causal());
  std::vector<std::string> seen;
  batch.observer = [&](std::string_view name, int64_t layer, const Tensor& value) {
    seen.push_back(fmt::format("{}:{}:{}", name, layer, value.dim(0)));
  };
  transformer.forward(batch);
  EXPECT_EQ(seen, (std::vector<std::string>{"embeddings:-1:10", "attention_output:0:10", "layer_output:0:10",
                                            "attention_output:1:10", "layer_output:1:10", "logits:-1:10"}));
}

}  // namespace
}  // namespace dlm
