#include <cblas.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/cpu_helpers.h"

namespace dlm {

namespace {

// Output tiles are at most kMaxTile x kMaxTile: each sgemm call repacks its slice of x once per panel and
// its panel once per slice, so tiles stay large when there is enough work. A bf16/f16 panel widened to f32
// stays under kPanelBytes per thread, or under kCachedPanelBytes when x has so few rows that the panel is
// streamed through rather than reused, so it should still be in L2 when sgemm reads it.
constexpr int64_t kMaxTile = 512;
constexpr int64_t kMinPanel = 16;
constexpr int64_t kMinTileRows = 32;
constexpr int64_t kPanelBytes = int64_t{4} << 20;
constexpr int64_t kCachedPanelBytes = int64_t{512} << 10;
constexpr int64_t kFewRows = 16;
constexpr int64_t kMinParallelFlops = int64_t{1} << 18;
// Rows per sgemm group: a multiple of the row unroll of OpenBLAS's sgemm kernels (2 on Skylake-X, 8 on
// Haswell and Zen), so that no row is ever computed by an edge kernel.
constexpr int64_t kRowGroup = 8;

struct Tiling {
  int64_t rows = 0;   // output rows per tile (slices of x)
  int64_t panel = 0;  // output columns per tile (rows of weight)
  int64_t row_blocks = 0;
  int64_t panels = 0;
};

Tiling plan_tiles(int64_t m, int64_t n, int64_t k, bool widens, int threads) {
  auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  int64_t max_panel = kMaxTile;
  if (widens) {
    const int64_t bytes = m <= kFewRows ? kCachedPanelBytes : kPanelBytes;
    max_panel = std::clamp(bytes / (k * int64_t{sizeof(float)}), kMinPanel, kMaxTile);
  }
  Tiling t;
  t.panel = std::min(n, max_panel / kMinPanel * kMinPanel);
  t.rows = std::min(m, kMaxTile);
  const int64_t flops = 2 * m * n * k;
  const int64_t wanted = flops < kMinParallelFlops ? 1 : 2 * int64_t{threads};
  auto tiles = [&] { return ceil_div(m, t.rows) * ceil_div(n, t.panel); };
  // Halve the longer side until every thread has work; a product with few rows (decoding) is all panels.
  while (tiles() < wanted) {
    if (t.rows > t.panel && t.rows > kMinTileRows) {
      t.rows = std::max(kMinTileRows, t.rows / 2);
    } else if (t.panel > kMinPanel) {
      t.panel = std::max(kMinPanel, t.panel / 2 / kMinPanel * kMinPanel);
    } else if (t.rows > kMinTileRows) {
      t.rows = std::max(kMinTileRows, t.rows / 2);
    } else {
      break;
    }
  }
  t.row_blocks = ceil_div(m, t.rows);
  t.panels = ceil_div(n, t.panel);
  return t;
}

}  // namespace

void CpuBackend::linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                        const Tensor& out) {
  const int64_t m = x.dim(0);
  const int64_t k = x.dim(1);
  const int64_t n = weight.dim(0);
  DLM_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX, "linear: {} x {} exceeds the BLAS index range",
            x.describe(), weight.describe());
  if (m == 0 || n == 0) return;

  const auto* xs = static_cast<const float*>(x.data());
  auto* ys = static_cast<float*>(out.data());
  const auto* w_bytes = static_cast<const char*>(weight.data());
  const DType w_dtype = weight.dtype();
  const size_t w_size = dtype_size(w_dtype);
  const bool widens = w_dtype != DType::F32;
  std::optional<cpu::F32Values> b;
  if (bias) b.emplace(*bias);
  const Tiling tiling = plan_tiles(m, n, k, widens, pool().size());
  const int lda = static_cast<int>(std::max<int64_t>(k, 1));

  // Tiles sharing a weight panel are adjacent, so a chunk widens each panel once.
  pool().parallel_for(tiling.row_blocks * tiling.panels, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> widened;
    int64_t widened_panel = -1;
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t panel = tile / tiling.row_blocks;
      const int64_t n0 = panel * tiling.panel;
      const int64_t nn = std::min(tiling.panel, n - n0);
      const int64_t m0 = (tile % tiling.row_blocks) * tiling.rows;
      const int64_t mm = std::min(tiling.rows, m - m0);
      const char* w_panel = w_bytes + static_cast<size_t>(n0 * k) * w_size;
      if (widens && panel != widened_panel) {
        widened.resize(static_cast<size_t>(tiling.panel * k));
        cpu::to_f32(w_dtype, w_panel, widened.data(), nn * k);
        widened_panel = panel;
      }
      const float* w = widens ? widened.data() : reinterpret_cast<const float*>(w_panel);
      // The tile starts as the bias and BLAS accumulates into it (beta = 1), so whatever out held before
      // never leaks in, whatever a BLAS version does with beta = 0 and NaN.
      float* c = ys + m0 * n + n0;
      for (int64_t r = 0; r < mm; ++r) {
        float* row = c + r * n;
        if (b) {
          std::copy(b->data() + n0, b->data() + n0 + nn, row);
        } else {
          std::fill(row, row + nn, 0.0f);
        }
      }
      if (k == 0) continue;
      // BLAS kernels round a row differently when it falls in a partial group of rows (or goes through
      // gemv), which would make a row's result depend on the batch around it. Whole groups of kRowGroup go
      // straight to sgemm; the leftover rows go through a zero-padded full group, so every row takes the
      // same path whatever the batch.
      const int64_t whole = mm / kRowGroup * kRowGroup;
      if (whole > 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(whole), static_cast<int>(nn),
                    static_cast<int>(k), 1.0f, xs + m0 * k, lda, w, lda, 1.0f, c, static_cast<int>(n));
      }
      if (whole < mm) {
        thread_local std::vector<float> x_group, c_group;
        const int64_t left = mm - whole;
        x_group.assign(static_cast<size_t>(kRowGroup * k), 0.0f);
        c_group.assign(static_cast<size_t>(kRowGroup * nn), 0.0f);
        std::copy(xs + (m0 + whole) * k, xs + (m0 + mm) * k, x_group.begin());
        for (int64_t r = 0; r < left; ++r) {
          std::copy(c + (whole + r) * n, c + (whole + r) * n + nn, c_group.begin() + r * nn);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(kRowGroup),
                    static_cast<int>(nn), static_cast<int>(k), 1.0f, x_group.data(), lda, w, lda, 1.0f,
                    c_group.data(), static_cast<int>(nn));
        for (int64_t r = 0; r < left; ++r) {
          std::copy(c_group.begin() + r * nn, c_group.begin() + (r + 1) * nn, c + (whole + r) * n);
        }
      }
    }
  });
}

}  // namespace dlm
