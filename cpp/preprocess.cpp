// ferfast preprocessing kernel (see preprocess.hpp).
//
// Box mode: the square crop is resampled separably with one integer weight table for both axes
// (the crop is square): exact fractional-overlap area weights (as cv2.INTER_AREA) when the crop is
// at least 48 px, bilinear with half-pixel centres (as cv2.INTER_LINEAR) when smaller. The
// vertical pass sums the weighted source rows in integers on the raw interleaved bytes (read in
// place when the crop lies inside the frame and pixels are packed), 8 output rows at a time; the
// block is transposed so that the horizontal pass runs over those 8 rows with contiguous
// multiply-adds per channel. All sums are exact integers (float holds them exactly below 2^24), so
// every code path (AVX2, plain loops, the CUDA kernel) gives the same sums; BT.601 gray and
// scale/bias apply to them at the end. Rows and columns outside the frame replicate the edge;
// nothing outside the crop is read (no whole-frame conversion).
//
// Landmark mode: a similarity warp (eyes -> fixed output positions); the touched region is
// box-filtered by an integer factor, then sampled with 1 or 2 (x 1 or 2) bilinear taps per output
// pixel: an approximation of area averaging that is exact for axis-aligned integer shrinks.
#include "preprocess.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#if !defined(_WIN32)
#include <pthread.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
// x86-64 with GCC/Clang: AVX2 loops chosen at run time, SSE2 / plain loops otherwise. Tests build
// the fallbacks on any machine: FERFAST_NO_AVX2 (no AVX2 at run time), FERFAST_PORTABLE (plain
// loops only).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(FERFAST_PORTABLE)
#include <immintrin.h>
#define FERFAST_X86_DISPATCH 1
#else
#define FERFAST_X86_DISPATCH 0
#endif

// The other loops are plain C++ that -O3 vectorises for the baseline ISA (SSE2 / NEON). On x86-64
// with GCC, the crop functions are additionally cloned for AVX2+FMA (x86-64-v3) and picked at load
// time (ifunc), so wheels stay portable without -march=native.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define FERFAST_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FERFAST_MULTIVERSION
#endif

namespace ferfast {
namespace {

constexpr float kWB = 0.114f, kWG = 0.587f, kWR = 0.299f;  // BGR -> gray (ITU-R BT.601)
constexpr int kBlock = 8;     // box mode: output rows per horizontal pass (the transposed lanes)
static_assert(kOutSide % kBlock == 0, "box mode writes whole kBlock-row tiles of the output");
constexpr int kRowGroup = 8;  // box mode: source rows summed per pass of the vertical sum

inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Box-mode weights of one crop side (axis_taps), cached per side: output u reads crop indices
// start[u] .. start[u] + span with the integer weights w[u * span ..].
struct AxisTable {
  int64_t side = -1;
  int span = 0;
  int32_t start[kOutSide];
  std::vector<int32_t> w;
};

constexpr int kTables = 8;  // sides cached per thread (a few faces of different sizes per frame)
// Scratch memory reused across calls (one set per thread).
struct Scratch {
  AxisTable tables[kTables];
  int next_table = 0;
  std::vector<uint64_t> vert;    // box mode: kBlock vertically resampled rows (Acc, padded)
  std::vector<uint64_t> vert_t;  // the same transposed: column-major, kBlock per column
  std::vector<uint16_t> isum;    // landmark mode: integer sum of the rows of one block row
  std::vector<uint8_t> row;      // gathered source rows (edge replication / odd strides)
  std::vector<int64_t> colx;   // byte offset of crop column k within a source row
  std::vector<float> region;   // landmark mode: gray copy of the touched source region
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// Plain loops over contiguous bytes: -O3 vectorises them with the baseline ISA (SSE2 / NEON).
inline void isum_assign(uint16_t* __restrict d, const uint8_t* __restrict p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = p[i];
}
inline void isum_add2(uint16_t* __restrict d, const uint8_t* __restrict p, const uint8_t* __restrict q,
                      int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<uint16_t>(d[i] + p[i] + q[i]);
}
inline void isum_add(uint16_t* __restrict d, const uint8_t* __restrict p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<uint16_t>(d[i] + p[i]);
}
const AxisTable& axis_table(int64_t side, Scratch& s) {
  for (const AxisTable& t : s.tables) {
    if (t.side == side) return t;
  }
  AxisTable& t = s.tables[s.next_table];
  s.next_table = (s.next_table + 1) % kTables;
  t.side = side;
  t.span = axis_span(side);
  t.w.resize(static_cast<size_t>(kOutSide) * t.span);
  for (int u = 0; u < kOutSide; ++u) {
    t.start[u] = axis_taps(side, u, &t.w[static_cast<size_t>(u) * t.span]);
  }
  return t;
}

#if FERFAST_X86_DISPATCH
// uint16 with AVX2 (the common case): two rows at a time with byte-pair multiply-adds (weights
// <= 96 fit int8, a pair sums to <= 255 * 96), 32 columns held in registers over all rows.
// 32 columns from offset off: (acc +) the weighted rows, returned in column order in r0, r1.
template <int nr>
__attribute__((target("avx2"), always_inline)) inline void sum32_avx2(
    const uint16_t* acc, const uint8_t* const* src, int64_t off, const __m256i* wpair, bool add,
    __m256i& r0, __m256i& r1) {
  const __m256i zero = _mm256_setzero_si256();
  // acc_l holds columns 0-7 | 16-23, acc_h 8-15 | 24-31 (the in-lane order of unpack).
  __m256i acc_l = zero, acc_h = zero;
  if (add) {
    const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc));
    const __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + 16));
    acc_l = _mm256_permute2x128_si256(a0, a1, 0x20);
    acc_h = _mm256_permute2x128_si256(a0, a1, 0x31);
  }
  for (int r = 0; r < nr; r += 2) {
    const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src[r] + off));
    const __m256i q = r + 1 < nr
                          ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src[r + 1] + off))
                          : zero;
    acc_l = _mm256_add_epi16(acc_l, _mm256_maddubs_epi16(_mm256_unpacklo_epi8(p, q), wpair[r / 2]));
    acc_h = _mm256_add_epi16(acc_h, _mm256_maddubs_epi16(_mm256_unpackhi_epi8(p, q), wpair[r / 2]));
  }
  r0 = _mm256_permute2x128_si256(acc_l, acc_h, 0x20);
  r1 = _mm256_permute2x128_si256(acc_l, acc_h, 0x31);
}

template <int nr>
__attribute__((target("avx2"))) void rows_sum_avx2_n(uint16_t* __restrict a,
                                                     const uint8_t* const* rows,
                                                     const __m256i* wpair, int64_t n, bool add) {
  __m256i r0, r1;
  auto store = [](uint16_t* dst, __m256i v0, __m256i v1) __attribute__((target("avx2"))) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), v0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 16), v1);
  };
  if (n >= 32) {
    // The last 32 columns first (from a as it is), stored after the others: they overlap the
    // previous chunk with equal values, and no read passes a row's end.
    __m256i t0, t1;
    sum32_avx2<nr>(a + n - 32, rows, n - 32, wpair, add, t0, t1);
    for (int64_t j = 0; j + 32 < n; j += 32) {
      sum32_avx2<nr>(a + j, rows, j, wpair, add, r0, r1);
      store(a + j, r0, r1);
    }
    store(a + n - 32, t0, t1);
    return;
  }
  // Short rows: copied into zero-padded 32-byte slots.
  const size_t m = static_cast<size_t>(n);
  alignas(32) uint8_t tail[nr][32] = {};
  const uint8_t* tail_rows[nr];
  for (int r = 0; r < nr; ++r) std::memcpy(tail[r], rows[r], m), tail_rows[r] = tail[r];
  alignas(32) uint16_t part[32] = {};
  if (add) std::memcpy(part, a, m * sizeof(uint16_t));
  sum32_avx2<nr>(part, tail_rows, 0, wpair, add, r0, r1);
  store(part, r0, r1);
  std::memcpy(a, part, m * sizeof(uint16_t));
}

// Unused for input sides whose bilinear weights do not fit int8 (rows_sum).
[[maybe_unused]] __attribute__((target("avx2"))) void rows_sum_avx2(
    uint16_t* __restrict a, const uint8_t* const* rows, const uint16_t* w, int nr, int64_t n,
    bool add) {
  __m256i wpair[kRowGroup / 2];
  for (int r = 0; r < nr; r += 2) {
    const int hi = r + 1 < nr ? w[r + 1] : 0;
    wpair[r / 2] = _mm256_set1_epi16(static_cast<int16_t>((hi << 8) | w[r]));
  }
  // The row count as a constant: the row loop unrolls with the row pointers in registers.
  switch (nr) {
    case 1: return rows_sum_avx2_n<1>(a, rows, wpair, n, add);
    case 2: return rows_sum_avx2_n<2>(a, rows, wpair, n, add);
    case 3: return rows_sum_avx2_n<3>(a, rows, wpair, n, add);
    case 4: return rows_sum_avx2_n<4>(a, rows, wpair, n, add);
    case 5: return rows_sum_avx2_n<5>(a, rows, wpair, n, add);
    case 6: return rows_sum_avx2_n<6>(a, rows, wpair, n, add);
    case 7: return rows_sum_avx2_n<7>(a, rows, wpair, n, add);
    default: return rows_sum_avx2_n<8>(a, rows, wpair, n, add);
  }
}

bool cpu_has_avx2() {
#if defined(FERFAST_NO_AVX2)
  return false;  // tests: the SSE2 fallbacks on an AVX2 machine
#else
  __builtin_cpu_init();  // needed before the feature test in a static initializer
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
}
const bool kHaveAvx2 = cpu_has_avx2();

// Two 8 x 8 blocks of uint16 (16 columns) transposed in registers per step.
__attribute__((target("avx2"))) void transpose_avx2(const uint16_t* __restrict a, int64_t stride,
                                                    int64_t cols, uint16_t* __restrict at) {
  for (int64_t j = 0; j < cols; j += 16) {
    __m256i r[8];
    for (int i = 0; i < 8; ++i)
      r[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i * stride + j));
    const __m256i a0 = _mm256_unpacklo_epi16(r[0], r[1]), a1 = _mm256_unpackhi_epi16(r[0], r[1]);
    const __m256i a2 = _mm256_unpacklo_epi16(r[2], r[3]), a3 = _mm256_unpackhi_epi16(r[2], r[3]);
    const __m256i a4 = _mm256_unpacklo_epi16(r[4], r[5]), a5 = _mm256_unpackhi_epi16(r[4], r[5]);
    const __m256i a6 = _mm256_unpacklo_epi16(r[6], r[7]), a7 = _mm256_unpackhi_epi16(r[6], r[7]);
    const __m256i b0 = _mm256_unpacklo_epi32(a0, a2), b1 = _mm256_unpackhi_epi32(a0, a2);
    const __m256i b2 = _mm256_unpacklo_epi32(a1, a3), b3 = _mm256_unpackhi_epi32(a1, a3);
    const __m256i b4 = _mm256_unpacklo_epi32(a4, a6), b5 = _mm256_unpackhi_epi32(a4, a6);
    const __m256i b6 = _mm256_unpacklo_epi32(a5, a7), b7 = _mm256_unpackhi_epi32(a5, a7);
    // o[k] = [column k | column k + 8] (one per 128-bit lane).
    const __m256i o[8] = {_mm256_unpacklo_epi64(b0, b4), _mm256_unpackhi_epi64(b0, b4),
                          _mm256_unpacklo_epi64(b1, b5), _mm256_unpackhi_epi64(b1, b5),
                          _mm256_unpacklo_epi64(b2, b6), _mm256_unpackhi_epi64(b2, b6),
                          _mm256_unpacklo_epi64(b3, b7), _mm256_unpackhi_epi64(b3, b7)};
    __m256i* out = reinterpret_cast<__m256i*>(at + j * kBlock);
    for (int k = 0; k < 8; k += 2) {
      _mm256_storeu_si256(out + k / 2, _mm256_permute2x128_si256(o[k], o[k + 1], 0x20));
      _mm256_storeu_si256(out + 4 + k / 2, _mm256_permute2x128_si256(o[k], o[k + 1], 0x31));
    }
  }
}

// The same with SSE2 (x86-64 baseline), one 8 x 8 block per step.
void transpose_sse2(const uint16_t* __restrict a, int64_t stride, int64_t cols,
                    uint16_t* __restrict at) {
  for (int64_t j = 0; j < cols; j += 8) {
    __m128i r[8];
    for (int i = 0; i < 8; ++i)
      r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i * stride + j));
    const __m128i a0 = _mm_unpacklo_epi16(r[0], r[1]), a1 = _mm_unpackhi_epi16(r[0], r[1]);
    const __m128i a2 = _mm_unpacklo_epi16(r[2], r[3]), a3 = _mm_unpackhi_epi16(r[2], r[3]);
    const __m128i a4 = _mm_unpacklo_epi16(r[4], r[5]), a5 = _mm_unpackhi_epi16(r[4], r[5]);
    const __m128i a6 = _mm_unpacklo_epi16(r[6], r[7]), a7 = _mm_unpackhi_epi16(r[6], r[7]);
    const __m128i b0 = _mm_unpacklo_epi32(a0, a2), b1 = _mm_unpackhi_epi32(a0, a2);
    const __m128i b2 = _mm_unpacklo_epi32(a1, a3), b3 = _mm_unpackhi_epi32(a1, a3);
    const __m128i b4 = _mm_unpacklo_epi32(a4, a6), b5 = _mm_unpackhi_epi32(a4, a6);
    const __m128i b6 = _mm_unpacklo_epi32(a5, a7), b7 = _mm_unpackhi_epi32(a5, a7);
    __m128i* o = reinterpret_cast<__m128i*>(at + j * kBlock);
    _mm_storeu_si128(o + 0, _mm_unpacklo_epi64(b0, b4));
    _mm_storeu_si128(o + 1, _mm_unpackhi_epi64(b0, b4));
    _mm_storeu_si128(o + 2, _mm_unpacklo_epi64(b1, b5));
    _mm_storeu_si128(o + 3, _mm_unpackhi_epi64(b1, b5));
    _mm_storeu_si128(o + 4, _mm_unpacklo_epi64(b2, b6));
    _mm_storeu_si128(o + 5, _mm_unpackhi_epi64(b2, b6));
    _mm_storeu_si128(o + 6, _mm_unpacklo_epi64(b3, b7));
    _mm_storeu_si128(o + 7, _mm_unpackhi_epi64(b3, b7));
  }
}
#endif

// Vertical pass: a = (a +) sum_r w[r] * rows[r] over n bytes in the accumulator type (exact: the
// weights of one output row sum to axis_total(side), so a <= 255 * total fits). uint16 with AVX2
// above, else row by row in plain loops that -O3 vectorises.
template <typename Acc>
inline void rows_sum(Acc* __restrict a, const uint8_t* const* rows, const Acc* w, int nr,
                     int64_t n, bool add) {
#if FERFAST_X86_DISPATCH
  // The byte-pair path takes the weights as int8: at most 2 * kOutSide (bilinear units).
  if constexpr (std::is_same<Acc, uint16_t>::value && 2 * kOutSide <= 127) {
    if (kHaveAvx2) return rows_sum_avx2(a, rows, w, nr, n, add);
  }
#endif
  for (int r = 0; r < nr; ++r) {
    const uint8_t* __restrict p = rows[r];
    const Acc wr = w[r];
    if (r == 0 && !add) {
      for (int64_t j = 0; j < n; ++j) a[j] = static_cast<Acc>(wr * p[j]);
    } else {
      for (int64_t j = 0; j < n; ++j) a[j] = static_cast<Acc>(a[j] + wr * p[j]);
    }
  }
}
// uint16 via int32: converts to float with packed instructions.
inline int32_t widen(uint16_t v) { return v; }
inline int64_t widen(uint32_t v) { return v; }
inline uint64_t widen(uint64_t v) { return v; }

// at[j * kBlock + i] = a[i * stride + j] for j < cols (a multiple of 16).
template <typename Acc>
inline void transpose_block(const Acc* __restrict a, int64_t stride, int64_t cols,
                            Acc* __restrict at) {
#if FERFAST_X86_DISPATCH
  if constexpr (std::is_same<Acc, uint16_t>::value) {
    return kHaveAvx2 ? transpose_avx2(a, stride, cols, at) : transpose_sse2(a, stride, cols, at);
  }
#endif
  for (int64_t j = 0; j < cols; ++j) {
    for (int i = 0; i < kBlock; ++i) at[j * kBlock + i] = a[i * stride + j];
  }
}
// out[i * 48 + u] = tile[u * kBlock + i]: the (u, row) tile written as kBlock output rows.
inline void store_rows(const float* __restrict tile, float* __restrict out) {
#if defined(__SSE2__)
  for (int u = 0; u < kOutSide; u += 4) {
    for (int i = 0; i < kBlock; i += 4) {
      __m128 r0 = _mm_loadu_ps(tile + u * kBlock + i);
      __m128 r1 = _mm_loadu_ps(tile + (u + 1) * kBlock + i);
      __m128 r2 = _mm_loadu_ps(tile + (u + 2) * kBlock + i);
      __m128 r3 = _mm_loadu_ps(tile + (u + 3) * kBlock + i);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      _mm_storeu_ps(out + i * kOutSide + u, r0);
      _mm_storeu_ps(out + (i + 1) * kOutSide + u, r1);
      _mm_storeu_ps(out + (i + 2) * kOutSide + u, r2);
      _mm_storeu_ps(out + (i + 3) * kOutSide + u, r3);
    }
  }
#else
  for (int i = 0; i < kBlock; ++i) {
    for (int u = 0; u < kOutSide; ++u) out[i * kOutSide + u] = tile[u * kBlock + i];
  }
#endif
}

#if FERFAST_X86_DISPATCH
__attribute__((target("avx2"))) inline __m256 u16x8_to_ps(const uint16_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(v));
}

// The horizontal pass below for uint16 with AVX2: per-channel sums with fused multiply-adds (the
// sums are exact integers, so fusing changes nothing), stored to hsum (u, channel, row).
__attribute__((target("avx2,fma"))) void channel_sums_avx2(const uint16_t* __restrict vt,
                                                           const AxisTable& tab, int64_t c,
                                                           float* __restrict hsum) {
  const int span = tab.span;
  const int cg = c == 1 ? 1 : 3;
  for (int u = 0; u < kOutSide; ++u) {
    const int32_t* w = &tab.w[static_cast<size_t>(u) * span];
    const uint16_t* col = vt + static_cast<int64_t>(tab.start[u]) * c * kBlock;
    float* hs = hsum + u * 3 * kBlock;
    if (cg == 1) {
      __m256 h = _mm256_setzero_ps();
      for (int t = 0; t < span; ++t, col += kBlock) {
        h = _mm256_fmadd_ps(_mm256_set1_ps(static_cast<float>(w[t])), u16x8_to_ps(col), h);
      }
      _mm256_storeu_ps(hs, h);
    } else {
      __m256 hb = _mm256_setzero_ps(), hg = hb, hr = hb;
      for (int t = 0; t < span; ++t, col += c * kBlock) {
        const __m256 wt = _mm256_set1_ps(static_cast<float>(w[t]));
        hb = _mm256_fmadd_ps(wt, u16x8_to_ps(col), hb);
        hg = _mm256_fmadd_ps(wt, u16x8_to_ps(col + kBlock), hg);
        hr = _mm256_fmadd_ps(wt, u16x8_to_ps(col + 2 * kBlock), hr);
      }
      _mm256_storeu_ps(hs, hb);
      _mm256_storeu_ps(hs + kBlock, hg);
      _mm256_storeu_ps(hs + 2 * kBlock, hr);
    }
  }
}

// Gray and scale of those sums (AVX2 without FMA: multiplies and adds stay apart, the plain
// loop's rounding).
__attribute__((target("avx2"))) void horizontal_avx2(const uint16_t* __restrict vt,
                                                     const AxisTable& tab, int64_t c, float kf,
                                                     float bias, float* __restrict tile) {
  alignas(32) float hsum[kOutSide * 3 * kBlock];
  channel_sums_avx2(vt, tab, c, hsum);
  const __m256 vk = _mm256_set1_ps(kf), vb = _mm256_set1_ps(bias);
  const __m256 wb = _mm256_set1_ps(kWB), wg = _mm256_set1_ps(kWG), wr = _mm256_set1_ps(kWR);
  for (int u = 0; u < kOutSide; ++u) {
    const float* hs = hsum + u * 3 * kBlock;
    __m256 g = _mm256_load_ps(hs);
    if (c != 1) {
      const __m256 bg =
          _mm256_add_ps(_mm256_mul_ps(wb, g), _mm256_mul_ps(wg, _mm256_load_ps(hs + kBlock)));
      g = _mm256_add_ps(bg, _mm256_mul_ps(wr, _mm256_load_ps(hs + 2 * kBlock)));
    }
    _mm256_storeu_ps(tile + u * kBlock, _mm256_add_ps(_mm256_mul_ps(g, vk), vb));
  }
}
#endif

// Horizontal pass over kBlock transposed rows, per channel: tile[u * kBlock + i] = scaled gray of
// output (u, row i).
template <typename Acc, typename Sum>
inline void horizontal(const Acc* __restrict vt, const AxisTable& tab, int64_t c, float kf,
                       float bias, float* __restrict tile) {
#if FERFAST_X86_DISPATCH
  if constexpr (std::is_same<Acc, uint16_t>::value) {
    if (kHaveAvx2) return horizontal_avx2(vt, tab, c, kf, bias, tile);
  }
#endif
  const int span = tab.span;
  for (int u = 0; u < kOutSide; ++u) {
    const int32_t* w = &tab.w[static_cast<size_t>(u) * span];
    const Acc* col = vt + static_cast<int64_t>(tab.start[u]) * c * kBlock;
    float* g = tile + u * kBlock;
    if (c == 1) {
      Sum h[kBlock] = {};
      for (int t = 0; t < span; ++t, col += kBlock) {
        const Sum wt = static_cast<Sum>(w[t]);
        for (int i = 0; i < kBlock; ++i) h[i] += wt * static_cast<Sum>(widen(col[i]));
      }
      for (int i = 0; i < kBlock; ++i) g[i] = static_cast<float>(h[i]) * kf + bias;
    } else {
      // BGR / BGRA (alpha is not read).
      Sum hb[kBlock] = {}, hg[kBlock] = {}, hr[kBlock] = {};
      for (int t = 0; t < span; ++t, col += c * kBlock) {
        const Sum wt = static_cast<Sum>(w[t]);
        for (int i = 0; i < kBlock; ++i) {
          hb[i] += wt * static_cast<Sum>(widen(col[i]));
          hg[i] += wt * static_cast<Sum>(widen(col[kBlock + i]));
          hr[i] += wt * static_cast<Sum>(widen(col[2 * kBlock + i]));
        }
      }
      for (int i = 0; i < kBlock; ++i) {
        const float gray = kWB * static_cast<float>(hb[i]) + kWG * static_cast<float>(hg[i]) +
                           kWR * static_cast<float>(hr[i]);
        g[i] = gray * kf + bias;
      }
    }
  }
}

// Box crop: vertical pass in integers on the raw interleaved bytes, kBlock output rows at a time,
// transposed so that the horizontal pass runs over the kBlock rows with contiguous multiply-adds,
// per channel; Sum holds the per-channel 2-D weighted sums exactly (float: below 2^24). BGR->gray
// and the scale apply to those exact sums only.
template <typename Acc, typename Sum>
FERFAST_MULTIVERSION void crop_box(const FrameView& f, const CropSquare& sq,
                                   const AxisTable& tab, float kf, float bias, float* out,
                                   int v_begin, int v_end, Scratch& s) {
  const int64_t side = sq.side, c = f.c, n = side * c;
  const int span = tab.span;
  // Padded taps (weight 0) read up to span - 1 pixels past the crop: a zero tail.
  const int64_t npad = ((side + span) * c + 15) / 16 * 16;
  s.vert.resize(static_cast<size_t>(kBlock * npad) * sizeof(Acc) / sizeof(uint64_t) + 1);
  s.vert_t.resize(s.vert.size());
  Acc* va = reinterpret_cast<Acc*>(s.vert.data());
  Acc* vt = reinterpret_cast<Acc*>(s.vert_t.data());
  for (int i = 0; i < kBlock; ++i) std::fill(va + i * npad + n, va + (i + 1) * npad, Acc{0});

  // Contiguous pixels fully inside the frame horizontally: read rows in place.
  const bool direct = f.sx == c && f.sc == 1 && sq.x0 >= 0 && sq.x0 + side <= f.w;
  if (!direct) {
    s.row.resize(kRowGroup * n);
    s.colx.resize(side);
    for (int64_t k = 0; k < side; ++k) s.colx[k] = clamp64(sq.x0 + k, 0, f.w - 1) * f.sx;
  }
  // Source row k of the crop (in place, or gathered into a slot of s.row).
  auto source_row = [&](int64_t k, int slot) -> const uint8_t* {
    const uint8_t* base = f.data + clamp64(sq.y0 + k, 0, f.h - 1) * f.sy;
    if (direct) return base + sq.x0 * c;
    uint8_t* dst = s.row.data() + slot * n;
    if (c == 1) {
      for (int64_t j = 0; j < side; ++j) dst[j] = base[s.colx[j]];
    } else {
      for (int64_t j = 0; j < side; ++j) {
        const uint8_t* px = base + s.colx[j];
        for (int64_t ch = 0; ch < c; ++ch) dst[j * c + ch] = px[ch * f.sc];
      }
    }
    return dst;
  };

  for (int v0 = v_begin; v0 < v_end; v0 += kBlock) {
    for (int i = 0; i < kBlock; ++i) {
      const int v = v0 + i;
      const int32_t* w = &tab.w[static_cast<size_t>(v) * span];
      Acc* a = va + i * npad;
      // Nonzero taps, kRowGroup source rows at a time (gathered rows use one slot each).
      const uint8_t* rows[kRowGroup];
      Acc wr[kRowGroup];
      int nr = 0;
      bool add = false;
      for (int t = 0; t < span; ++t) {
        if (w[t] == 0) continue;
        rows[nr] = source_row(tab.start[v] + t, nr);
        wr[nr++] = static_cast<Acc>(w[t]);
        if (nr == kRowGroup) rows_sum(a, rows, wr, nr, n, add), nr = 0, add = true;
      }
      if (nr > 0) rows_sum(a, rows, wr, nr, n, add);
    }
    transpose_block(va, npad, npad, vt);

    float tile[kOutSide * kBlock];
    horizontal<Acc, Sum>(vt, tab, c, kf, bias, tile);
    store_rows(tile, out + v0 * kOutSide);
  }
}

// Output rows [v_begin, v_end) (multiples of kBlock) of one box crop. The accumulator widths by
// crop size (all sums exact): uint16 / float up to 256 px (255 * 256 * 256 < 2^24), uint32 /
// double while 255 * total fits 32 bits, else uint64 / double.
void crop_box(const FrameView& f, const CropSquare& sq, const FramingParams& fr, float* out,
              int v_begin, int v_end, Scratch& s) {
  const AxisTable& tab = axis_table(sq.side, s);
  const int64_t total = axis_total(sq.side);
  const float kf = static_cast<float>(static_cast<double>(fr.scale) /
                                      (static_cast<double>(total) * static_cast<double>(total)));
  if (total <= 256) {
    crop_box<uint16_t, float>(f, sq, tab, kf, fr.bias, out, v_begin, v_end, s);
  } else if (total <= 16843009) {
    crop_box<uint32_t, double>(f, sq, tab, kf, fr.bias, out, v_begin, v_end, s);
  } else {
    crop_box<uint64_t, double>(f, sq, tab, kf, fr.bias, out, v_begin, v_end, s);
  }
}

// Similarity transform output (u, v) -> source (x, y), OpenCV pixel-centre convention.
struct Similarity {
  double a, b, tx, ty;  // x = a*u - b*v + tx ; y = b*u + a*v + ty
};

Similarity eye_similarity(const double* lm, const FramingParams& fr) {
  const double dox = fr.eye_right[0] - fr.eye_left[0], doy = fr.eye_right[1] - fr.eye_left[1];
  const double dsx = lm[2] - lm[0], dsy = lm[3] - lm[1];
  const double d2 = dox * dox + doy * doy;
  Similarity m{};
  m.a = (dsx * dox + dsy * doy) / d2;
  m.b = (dsy * dox - dsx * doy) / d2;
  m.tx = lm[0] - (m.a * fr.eye_left[0] - m.b * fr.eye_left[1]);
  m.ty = lm[1] - (m.b * fr.eye_left[0] + m.a * fr.eye_left[1]);
  return m;
}

// Gray image box-filtered by an integer factor fct: dst[iy * iw + ix] = mean gray of the frame
// pixels [ox + ix*fct, +fct) x [oy + iy*fct, +fct), coordinates clamped (edge replication).
FERFAST_MULTIVERSION void box_gray(const FrameView& f, int64_t ox, int64_t oy, int64_t fct,
                                   int64_t iw, int64_t ih, float* dst, Scratch& s) {
  const int64_t c = f.c, cols = iw * fct, n = cols * c;
  s.isum.resize(n);
  const bool direct = f.sx == c && f.sc == 1 && ox >= 0 && ox + cols <= f.w;
  if (!direct) {
    s.row.resize(2 * n);
    s.colx.resize(cols);
    for (int64_t k = 0; k < cols; ++k) s.colx[k] = clamp64(ox + k, 0, f.w - 1) * f.sx;
  }
  auto source_row = [&](int64_t y, int slot) -> const uint8_t* {
    const uint8_t* base = f.data + clamp64(y, 0, f.h - 1) * f.sy;
    if (direct) return base + ox * c;
    uint8_t* out = s.row.data() + slot * n;
    for (int64_t j = 0; j < cols; ++j) {
      const uint8_t* px = base + s.colx[j];
      for (int64_t ch = 0; ch < c; ++ch) out[j * c + ch] = px[ch * f.sc];
    }
    return out;
  };
  uint16_t* isum = s.isum.data();
  const float inv = 1.0f / static_cast<float>(fct * fct);
  for (int64_t iy = 0; iy < ih; ++iy) {
    const int64_t y0 = oy + iy * fct;
    int64_t dy = 0;
    isum_assign(isum, source_row(y0 + dy++, 0), n);
    for (; dy + 1 < fct; dy += 2) isum_add2(isum, source_row(y0 + dy, 0), source_row(y0 + dy + 1, 1), n);
    if (dy < fct) isum_add(isum, source_row(y0 + dy, 0), n);
    float* d = dst + iy * iw;
    for (int64_t ix = 0; ix < iw; ++ix) {
      const uint16_t* px = isum + ix * fct * c;
      if (c == 1) {
        uint32_t sum = 0;
        for (int64_t dx = 0; dx < fct; ++dx) sum += px[dx];
        d[ix] = static_cast<float>(sum) * inv;
      } else {
        uint32_t sb = 0, sg = 0, sr = 0;
        for (int64_t dx = 0; dx < fct; ++dx) {
          sb += px[dx * c];
          sg += px[dx * c + 1];
          sr += px[dx * c + 2];
        }
        d[ix] = (kWB * static_cast<float>(sb) + kWG * static_cast<float>(sg) +
                 kWR * static_cast<float>(sr)) * inv;
      }
    }
  }
}

// Eye-aligning similarity warp (geometry: warp_geometry below): the touched frame region
// box-filtered by fct, then ns x ns bilinear samples per output pixel.
void crop_warp(const FrameView& f, const double* lm, const FramingParams& fr, float* out,
               Scratch& s) {
  const WarpGeometry g = warp_geometry(f, lm, fr);
  const int64_t iw = g.iw, ih = g.ih;
  s.region.resize(iw * ih);
  float* reg = s.region.data();
  box_gray(f, g.ox, g.oy, g.fct, iw, ih, reg, s);

  const int ns = g.ns;
  const double ga = g.ga, gb = g.gb, gtx = g.gtx, gty = g.gty;
  const float fa = g.fa, fb = g.fb, xhi = g.xhi, yhi = g.yhi, inv = g.inv;
  const float* offs = g.offs;
  const int iw32 = static_cast<int>(iw);
  float acc[kOutSide];
  for (int v = 0; v < kOutSide; ++v) {
    std::fill(acc, acc + kOutSide, 0.0f);
    for (int j = 0; j < ns; ++j) {
      const double ov = v + static_cast<double>(offs[j]);
      const float rx = static_cast<float>(-gb * ov + gtx), ry = static_cast<float>(ga * ov + gty);
      for (int u = 0; u < kOutSide; ++u) {
        float sum = 0.0f;
        for (int i = 0; i < ns; ++i) {
          const float ou = static_cast<float>(u) + offs[i];
          float x = fa * ou + rx, y = fb * ou + ry;
          x = x < 0.0f ? 0.0f : (x > xhi ? xhi : x);
          y = y < 0.0f ? 0.0f : (y > yhi ? yhi : y);
          const int x0 = static_cast<int>(x), y0 = static_cast<int>(y);
          const int dx = x0 + 1 < iw32 ? 1 : 0;
          const int dy = y0 + 1 < static_cast<int>(ih) ? iw32 : 0;
          const float fx = x - static_cast<float>(x0), fy = y - static_cast<float>(y0);
          const float* p0 = reg + static_cast<int64_t>(y0) * iw + x0;
          const float top = p0[0] + fx * (p0[dx] - p0[0]);
          const float bot = p0[dy] + fx * (p0[dy + dx] - p0[dy]);
          sum += top + fy * (bot - top);
        }
        acc[u] += sum;
      }
    }
    float* o = out + v * kOutSide;
    for (int u = 0; u < kOutSide; ++u) o[u] = acc[u] * inv * fr.scale + fr.bias;
  }
}

}  // namespace

int axis_span(int64_t side) {
  return side >= kOutSide
             ? static_cast<int>(std::ceil(static_cast<double>(side) / kOutSide)) + 1
             : 2;
}

int64_t axis_total(int64_t side) { return side >= kOutSide ? side : 2 * kOutSide; }

int32_t axis_taps(int64_t side, int u, int32_t* w) {
  const int span = axis_span(side);
  std::fill(w, w + span, 0);
  if (side >= kOutSide) {
    // Area (as cv2.INTER_AREA): in units of 1/48 pixel output u covers [u*side, (u+1)*side) and
    // crop pixel k covers [48k, 48k + 48); the weights are the overlaps.
    const int64_t a = u * side, b = a + side, k0 = a / kOutSide;
    for (int64_t k = k0; k * kOutSide < b; ++k) {
      w[k - k0] = static_cast<int32_t>(std::min<int64_t>((k + 1) * kOutSide, b) -
                                       std::max<int64_t>(k * kOutSide, a));
    }
    return static_cast<int32_t>(k0);
  }
  // Bilinear, half-pixel centres, clamped to the crop (as cv2.resize INTER_LINEAR on the crop):
  // source position (u + 0.5) * side / 48 - 0.5 = num / 96.
  const int64_t num = (2 * static_cast<int64_t>(u) + 1) * side - kOutSide;
  int64_t k = num >= 0 ? num / (2 * kOutSide) : -1;
  int64_t r = num - 2 * kOutSide * k;
  if (k < 0) k = 0, r = 0;
  if (k >= side - 1) k = side - 1, r = 0;
  w[0] = static_cast<int32_t>(2 * kOutSide - r);
  w[1] = static_cast<int32_t>(r);
  return static_cast<int32_t>(k);
}

// When the warp shrinks by s >= 2 source pixels per output pixel, the frame region is first
// box-filtered by fct = floor(s) (block grid aligned with output pixel (0, 0): an axis-aligned
// integer shrink is then an exact area average); each output pixel then averages ns x ns bilinear
// samples spread over its footprint, ns = ceil(s / fct / 1.5) (1 or 2 once box-filtered), so that
// samples are at most 1.5 filtered pixels apart.
WarpGeometry warp_geometry(const FrameView& f, const double* lm, const FramingParams& fr) {
  const Similarity m0 = eye_similarity(lm, fr);
  WarpGeometry g{};
  g.a = m0.a, g.b = m0.b, g.tx = m0.tx, g.ty = m0.ty;
  const double scale = std::sqrt(g.a * g.a + g.b * g.b);
  g.fct = static_cast<int64_t>(std::min(256.0, std::max(1.0, std::floor(scale + 1e-9))));
  // Samples per axis: bilinear taps 1.5 block pixels apart at most (so no pixel is skipped).
  g.ns = static_cast<int>(
      std::min<double>(kMaxSupersample, std::max(1.0, std::ceil(scale / g.fct / 1.5 - 1e-6))));

  // Source bounding box of the output square (pixel edges -0.5 .. 47.5), relative to (tx, ty).
  double dx_lo = 1e300, dx_hi = -1e300, dy_lo = 1e300, dy_hi = -1e300;
  for (double cu : {-0.5, kOutSide - 0.5}) {
    for (double cv : {-0.5, kOutSide - 0.5}) {
      const double dx = g.a * cu - g.b * cv, dy = g.b * cu + g.a * cv;
      dx_lo = std::min(dx_lo, dx), dx_hi = std::max(dx_hi, dx);
      dy_lo = std::min(dy_lo, dy), dy_hi = std::max(dy_hi, dy);
    }
  }
  // Entirely beside the frame: every sample clamps to the same edge, so slide the warp up to the
  // frame (same output) to keep all coordinates small (set, not shifted: no cancellation).
  const double fw = static_cast<double>(f.w), fh = static_cast<double>(f.h);
  if (g.tx + dx_lo > fw) g.tx = fw - dx_lo;
  if (g.tx + dx_hi < -1.0) g.tx = -1.0 - dx_hi;
  if (g.ty + dy_lo > fh) g.ty = fh - dy_lo;
  if (g.ty + dy_hi < -1.0) g.ty = -1.0 - dy_hi;
  const double xmin = g.tx + dx_lo, xmax = g.tx + dx_hi, ymin = g.ty + dy_lo, ymax = g.ty + dy_hi;

  // Block grid: block centres at ox + i*fct + (fct-1)/2, one of them at output pixel (0, 0).
  const double half = 0.5 * static_cast<double>(g.fct - 1);
  const double fd = static_cast<double>(g.fct);
  auto grid_origin = [&](double centre0, double lo) {
    const double o = std::floor(centre0 - half + 0.5);
    return static_cast<int64_t>(o - fd * std::ceil((o - (lo - 2.0)) / fd));
  };
  g.ox = grid_origin(g.tx, xmin);
  g.oy = grid_origin(g.ty, ymin);
  g.iw = static_cast<int64_t>(std::ceil((xmax + 2.0 - static_cast<double>(g.ox)) / fd)) + 1;
  g.ih = static_cast<int64_t>(std::ceil((ymax + 2.0 - static_cast<double>(g.oy)) / fd)) + 1;

  // Output (u, v) -> block-grid coordinates.
  g.ga = g.a / fd;
  g.gb = g.b / fd;
  g.gtx = (g.tx - static_cast<double>(g.ox) - half) / fd;
  g.gty = (g.ty - static_cast<double>(g.oy) - half) / fd;
  g.fa = static_cast<float>(g.ga);
  g.fb = static_cast<float>(g.gb);
  g.xhi = static_cast<float>(g.iw - 1);
  g.yhi = static_cast<float>(g.ih - 1);
  g.inv = 1.0f / static_cast<float>(g.ns * g.ns);
  for (int i = 0; i < g.ns; ++i) g.offs[i] = static_cast<float>((i + 0.5) / g.ns - 0.5);
  return g;
}

CropSquare box_crop(const double* box, const FramingParams& fr, const FrameView& frame) {
  const double x = box[0], y = box[1], w = box[2], h = box[3];
  const double side_d = std::max(w, h) * fr.margin;
  const double cx = x + 0.5 * w + fr.offset_x * side_d;
  const double cy = y + 0.5 * h + fr.offset_y * side_d;
  // Callers cap the side; clamp here too so that no int64 conversion can overflow.
  const double cap = static_cast<double>(kMaxSideFactor * std::max(frame.h, frame.w)) + 1.0;
  const double side_r = std::min(std::max(1.0, std::round(side_d)), cap);
  const int64_t side = static_cast<int64_t>(side_r);
  // A crop entirely left of / above the frame reads only the edge, so clamping the origin to
  // [-side, W] (resp. H) changes nothing but keeps the numbers small.
  const double ox = std::floor(cx - 0.5 * side_r + 0.5);
  const double oy = std::floor(cy - 0.5 * side_r + 0.5);
  const double x0 = std::min(std::max(ox, -side_r), static_cast<double>(frame.w));
  const double y0 = std::min(std::max(oy, -side_r), static_cast<double>(frame.h));
  return CropSquare{static_cast<int64_t>(x0), static_cast<int64_t>(y0), side};
}

double warp_scale(const double* landmarks, const FramingParams& fr) {
  const Similarity m = eye_similarity(landmarks, fr);
  return std::sqrt(m.a * m.a + m.b * m.b);
}

namespace {

// One preprocess call split into units that write disjoint output: kBlock output rows of one
// box crop, or one whole landmark warp.
struct Job {
  const FrameView* frame;
  const double* boxes;
  const double* landmarks;
  const FramingParams* fr;
  float* out;
  int64_t first;  // unit index of this job's unit 0 (large calls run as several jobs)
  int per_face;   // units per face
};

void run_unit(const Job& job, int64_t unit, Scratch& s) {
  const int64_t u = job.first + unit;
  const int64_t i = u / job.per_face;
  float* o = job.out + i * kOutPixels;
  if (job.landmarks != nullptr) {
    crop_warp(*job.frame, job.landmarks + i * 10, *job.fr, o, s);
  } else {
    const int v = static_cast<int>(u % job.per_face) * kBlock;
    crop_box(*job.frame, box_crop(job.boxes + i * 4, *job.fr, *job.frame), *job.fr, o, v,
             v + kBlock, s);
  }
}

inline void cpu_relax() {
#if defined(__SSE2__)
  _mm_pause();
#endif
}

// Helper threads for calls with enough pixels to pay for the hand-off. The calling thread works
// too and claims units from the same counter, so a helper that wakes late only leaves more units
// to the caller. A helper that is preempted after claiming a unit delays the call until it runs
// again: on a loaded machine this lengthens the slowest calls (FERFAST_PREPROCESS_THREADS=1 avoids
// it). Helpers spin briefly after a job (back-to-back calls skip the wake-up), then sleep on a
// condition variable. One call uses the pool at a time; concurrent callers run alone.
class Pool {
 public:
  // The process's pool, or nullptr when threading is off or no helper could start.
  static Pool* get();

  // Runs units [0, units) of job with the helpers; false when another call holds the pool. An
  // exception from a unit (std::bad_alloc) is rethrown here once every claimed unit has finished,
  // so no helper touches the caller's buffers after the call returns.
  bool run(const Job& job, int64_t units) {
    if (busy_.exchange(true, std::memory_order_acquire)) return false;
    struct Release {
      std::atomic<bool>& busy;
      ~Release() { busy.store(false, std::memory_order_release); }
    } release{busy_};
    Scratch& s = scratch();
    error_ = nullptr;
    failed_.store(false, std::memory_order_relaxed);
    for (int64_t first = 0; first < units && error_ == nullptr; first += kMaxUnits) {
      const uint64_t count = static_cast<uint64_t>(std::min<int64_t>(units - first, kMaxUnits));
      job_ = job;
      job_.first = job.first + first;
      done_.store(0, std::memory_order_relaxed);
      gen_ = (gen_ + 1) & kGenMask;
      state_.store((gen_ << 40) | (count << 20), std::memory_order_release);
      {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (sleeping_ > 0) wake_.notify_all();
      }
      work(gen_, s);
      // Units a helper has claimed finish in microseconds; yield in case it was preempted.
      for (int spins = 0; done_.load(std::memory_order_acquire) < count; ++spins) {
        if (spins < 4096) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
      }
    }
    if (error_ != nullptr) std::rethrow_exception(error_);
    return true;
  }

  int helpers() const { return helpers_; }

  // Starts up to `helpers` threads; fewer when the system refuses more.
  explicit Pool(int helpers) {
    try {
      for (; helpers_ < helpers; ++helpers_) std::thread([this] { helper(); }).detach();
    } catch (const std::system_error&) {
    }
  }

 private:
  // state_: generation (24 bits) | units of the job (20 bits) | next unclaimed unit (20 bits).
  static constexpr uint64_t kGenMask = (uint64_t{1} << 24) - 1;
  static constexpr int64_t kMaxUnits = (int64_t{1} << 20) - 1;
  static constexpr std::chrono::microseconds kSpin{20};

  // Claims and runs units of generation gen until none is left. After a failed unit the others
  // are still claimed and counted (not run), so the caller's wait ends.
  void work(uint64_t gen, Scratch& s) {
    uint64_t st = state_.load(std::memory_order_acquire);
    for (;;) {
      const uint64_t count = (st >> 20) & kMaxUnits, next = st & kMaxUnits;
      if ((st >> 40) != gen || next >= count) return;
      // A claim succeeds only while the job is current, so job_ cannot change under this unit:
      // the caller waits for every claimed unit before it publishes the next job.
      if (state_.compare_exchange_weak(st, st + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        if (!failed_.load(std::memory_order_relaxed)) {
          try {
            run_unit(job_, static_cast<int64_t>(next), s);
          } catch (...) {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (error_ == nullptr) error_ = std::current_exception();
            failed_.store(true, std::memory_order_relaxed);
          }
        }
        done_.fetch_add(1, std::memory_order_release);
        st = state_.load(std::memory_order_acquire);
      }
    }
  }

  void helper() {
    Scratch& s = scratch();
    uint64_t seen = gen_of(state_.load(std::memory_order_acquire));
    for (;;) {
      const auto until = std::chrono::steady_clock::now() + kSpin;
      uint64_t gen = seen;
      for (int spins = 0; gen == seen; ++spins) {
        cpu_relax();
        gen = gen_of(state_.load(std::memory_order_acquire));
        if (gen == seen && (spins & 63) == 0 && std::chrono::steady_clock::now() > until) {
          std::unique_lock<std::mutex> lock(mutex_);
          ++sleeping_;
          wake_.wait(lock, [&] { return gen_of(state_.load(std::memory_order_acquire)) != seen; });
          --sleeping_;
          gen = gen_of(state_.load(std::memory_order_acquire));
        }
      }
      seen = gen;
      work(gen, s);
    }
  }

  static uint64_t gen_of(uint64_t st) { return st >> 40; }

  std::atomic<uint64_t> state_{0};
  std::atomic<uint64_t> done_{0};
  std::atomic<bool> busy_{false};
  std::atomic<bool> failed_{false};  // a unit of the current call threw (cleared per call)
  uint64_t gen_ = 0;                 // written by the caller holding busy_
  Job job_{};
  std::exception_ptr error_;  // first exception of the current call (guarded by mutex_ when set)
  std::mutex mutex_;
  std::condition_variable wake_;
  int sleeping_ = 0;  // helpers waiting on wake_ (guarded by mutex_)
  int helpers_ = 0;
};

// CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (containers).
int usable_cpus() {
  int cpus = static_cast<int>(std::thread::hardware_concurrency());
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
  if (std::FILE* f = std::fopen("/sys/fs/cgroup/cpu.max", "r")) {
    long quota = 0, period = 0;
    if (std::fscanf(f, "%ld %ld", &quota, &period) == 2 && quota > 0 && period > 0) {
      cpus = std::min(cpus, static_cast<int>(std::max(1L, (quota + period - 1) / period)));
    }
    std::fclose(f);  // "max <period>" (no quota) does not parse as two numbers
  }
#endif
  return std::max(1, cpus);
}

// Helper threads: FERFAST_PREPROCESS_THREADS - 1 if set (1 turns threading off), else one per
// further usable CPU, at most 3 (a few faces do not split further usefully).
int helper_count() {
  if (const char* env = std::getenv("FERFAST_PREPROCESS_THREADS")) {
    const long v = std::strtol(env, nullptr, 10);
    return v > 1 ? static_cast<int>(std::min(v, 64L)) - 1 : 0;
  }
  return std::min(usable_cpus(), 4) - 1;
}

// The pool is made once per process (nullptr when off) and never destroyed: helpers may still
// sleep in it at exit. A forked child starts without the parent's threads, so it makes its own.
struct PoolSlot {
  std::once_flag once;
  Pool* pool = nullptr;
};
std::atomic<PoolSlot*> g_slot{new PoolSlot};

Pool* Pool::get() {
  static const bool registered = [] {
#if !defined(_WIN32)
    pthread_atfork(nullptr, nullptr, [] { g_slot.store(new PoolSlot); });
#endif
    return true;
  }();
  (void)registered;
  PoolSlot* slot = g_slot.load(std::memory_order_acquire);
  std::call_once(slot->once, [slot] {
    const int helpers = helper_count();
    if (helpers == 0) return;
    auto* p = new Pool(helpers);
    if (p->helpers() == 0) {
      delete p;  // no thread started, so nothing refers to it
      return;
    }
    slot->pool = p;
  });
  return slot->pool;
}

// Source bytes read for a call, as the measure of whether threading pays (stops counting at limit).
int64_t work_bytes(const FrameView& frame, const double* boxes, const double* landmarks, int64_t n,
                   const FramingParams& fr, int64_t limit) {
  int64_t bytes = 0;
  for (int64_t i = 0; i < n && bytes < limit; ++i) {
    int64_t side;
    if (landmarks != nullptr) {
      side = static_cast<int64_t>(kOutSide * std::min(warp_scale(landmarks + i * 10, fr), 1e4));
    } else {
      side = box_crop(boxes + i * 4, fr, frame).side;
    }
    side = std::min<int64_t>(std::max<int64_t>(side, kOutSide), 1 << 20);
    bytes += side * side * frame.c;
  }
  return bytes;
}

// Below this many source bytes one thread finishes before a helper could join (~4 us).
constexpr int64_t kParallelBytes = 96 * 1024;

}  // namespace

void preprocess_faces(const FrameView& frame, const double* boxes, const double* landmarks,
                      int64_t n, const FramingParams& fr, float* out) {
  const int per_face = landmarks != nullptr ? 1 : kOutSide / kBlock;
  const Job job{&frame, boxes, landmarks, &fr, out, 0, per_face};
  const int64_t units = n * per_face;
  if (units >= 2 && work_bytes(frame, boxes, landmarks, n, fr, kParallelBytes) >= kParallelBytes) {
    Pool* pool = Pool::get();
    if (pool != nullptr && pool->run(job, units)) return;
  }
  Scratch& s = scratch();
  for (int64_t u = 0; u < units; ++u) run_unit(job, u, s);
}

}  // namespace ferfast
