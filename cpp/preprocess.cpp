// ferfast preprocessing kernel (see preprocess.hpp).
//
// Box mode: the square crop is resampled separably with one weight table for both axes (the crop
// is square): exact fractional-overlap area weights (as cv2.INTER_AREA) when the crop is at least
// 48 px, bilinear with half-pixel centres (as cv2.INTER_LINEAR) when smaller. Per output row, the
// vertical pass sums the full-weight source rows as uint16 on the raw interleaved bytes (read in
// place when the crop lies inside the frame and pixels are packed) and adds the two partially
// covered edge rows in float; BGR->gray is applied to that one reduced row, stored transposed, so
// that the horizontal pass runs 48 output rows at a time with contiguous multiply-adds. Rows and
// columns outside the frame replicate the edge; nothing outside the crop is read (no whole-frame
// conversion).
//
// Landmark mode: a similarity warp (eyes -> fixed output positions); the touched region is
// box-filtered by an integer factor, then sampled with 1 or 2 (x 1 or 2) bilinear taps per output
// pixel: an approximation of area averaging that is exact for axis-aligned integer shrinks.
#include "preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

// The hot loops are plain C++ that -O3 vectorises for the baseline ISA (SSE2 / NEON). On x86-64
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
constexpr int64_t kMaxIntRows = 256;  // rows summed in uint16 before a float flush (256*255 fits)

inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Resampling weights of one axis, per output index u (the crop is square: one table for both).
// Output u = w_a * crop[k_a] + w_full * sum(crop[k_full0 .. k_full1)) + w_b * crop[k_b]: the
// equal-weight interior of an area cell is summed in integers, only its two partial edges (or the
// two bilinear taps) are weighted in float.
struct WeightTable {
  int64_t side = -1;
  int span = 0;                  // crop indices spanned by one output index (max over u)
  std::vector<int32_t> start;    // first crop index of output u
  std::vector<int32_t> k_a, k_b, full0, full1;
  std::vector<float> w_a, w_b, w_full;
  std::vector<float> lin;        // all weights of output u: lin[u * span + t] for start[u] + t
};

void build_table(int64_t side, WeightTable& tab) {
  if (tab.side == side) return;
  tab.side = side;
  tab.span = axis_span(side);
  for (auto* v : {&tab.start, &tab.k_a, &tab.k_b, &tab.full0, &tab.full1}) v->assign(kOutSide, 0);
  for (auto* v : {&tab.w_a, &tab.w_b, &tab.w_full}) v->assign(kOutSide, 0.0f);
  tab.lin.assign(static_cast<size_t>(kOutSide) * tab.span, 0.0f);
  for (int u = 0; u < kOutSide; ++u) {
    const AxisTaps t = axis_taps(side, u, &tab.lin[static_cast<size_t>(u) * tab.span]);
    tab.start[u] = t.start;
    tab.k_a[u] = t.k_a;
    tab.k_b[u] = t.k_b;
    tab.full0[u] = t.full0;
    tab.full1[u] = t.full1;
    tab.w_a[u] = t.w_a;
    tab.w_b[u] = t.w_b;
    tab.w_full[u] = t.w_full;
  }
}

// Scratch memory reused across calls (one set per thread).
struct Scratch {
  WeightTable tab;
  std::vector<uint16_t> isum;  // integer sum of the full-weight rows of one output row
  std::vector<float> acc;      // vertically resampled interleaved row, side * c
  std::vector<float> acc_big;  // earlier 256-row chunks of one output row (very large crops)
  std::vector<float> gray_t;   // gray of all 48 resampled rows, transposed: (side + span) x 48
  std::vector<uint8_t> row;    // gathered source rows (edge replication / odd strides), 3 rows
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
// acc = wf * isum + wa * ra + wb * rb in one pass (any term may be absent: nullptr).
inline void combine_rows(float* __restrict acc, const uint16_t* __restrict isum, float wf,
                         const uint8_t* __restrict ra, float wa, const uint8_t* __restrict rb,
                         float wb, int64_t n) {
  if (isum != nullptr && ra != nullptr && rb != nullptr) {
    for (int64_t i = 0; i < n; ++i)
      acc[i] = wf * static_cast<float>(isum[i]) + wa * static_cast<float>(ra[i]) +
               wb * static_cast<float>(rb[i]);
  } else if (isum != nullptr && (ra != nullptr || rb != nullptr)) {
    const uint8_t* __restrict r = ra != nullptr ? ra : rb;
    const float w = ra != nullptr ? wa : wb;
    for (int64_t i = 0; i < n; ++i)
      acc[i] = wf * static_cast<float>(isum[i]) + w * static_cast<float>(r[i]);
  } else if (isum != nullptr) {
    for (int64_t i = 0; i < n; ++i) acc[i] = wf * static_cast<float>(isum[i]);
  } else if (ra != nullptr && rb != nullptr) {
    for (int64_t i = 0; i < n; ++i)
      acc[i] = wa * static_cast<float>(ra[i]) + wb * static_cast<float>(rb[i]);
  } else if (ra != nullptr || rb != nullptr) {
    const uint8_t* __restrict r = ra != nullptr ? ra : rb;
    const float w = ra != nullptr ? wa : wb;
    for (int64_t i = 0; i < n; ++i) acc[i] = w * static_cast<float>(r[i]);
  } else {
    std::fill(acc, acc + n, 0.0f);
  }
}
inline void acc_add_isum(float* __restrict acc, const uint16_t* __restrict d, int64_t n, float w) {
  for (int64_t i = 0; i < n; ++i) acc[i] += w * static_cast<float>(d[i]);
}

// Gray of one interleaved float row, stored as column v of the transposed (k, 48) buffer.
inline void gray_column(const float* __restrict acc, float* __restrict gt, int64_t side, int64_t c,
                        int v) {
  if (c == 1) {
    for (int64_t k = 0; k < side; ++k) gt[k * kOutSide + v] = acc[k];
  } else if (c == 3) {
    for (int64_t k = 0; k < side; ++k)
      gt[k * kOutSide + v] = kWB * acc[3 * k] + kWG * acc[3 * k + 1] + kWR * acc[3 * k + 2];
  } else {
    for (int64_t k = 0; k < side; ++k)
      gt[k * kOutSide + v] = kWB * acc[4 * k] + kWG * acc[4 * k + 1] + kWR * acc[4 * k + 2];
  }
}

FERFAST_MULTIVERSION void crop_box(const FrameView& f, const CropSquare& sq, const FramingParams& fr, float* out,
              Scratch& s) {
  const int64_t side = sq.side, c = f.c, n = side * c;
  build_table(side, s.tab);
  const WeightTable& tab = s.tab;
  const int span = tab.span;
  s.isum.resize(n);
  s.acc.resize(n);
  s.gray_t.resize((side + span) * kOutSide);
  // Zero tail: padded taps (weight 0) may read up to span - 1 entries past the crop.
  std::fill(s.gray_t.begin() + side * kOutSide, s.gray_t.end(), 0.0f);

  // Contiguous pixels fully inside the frame horizontally: read rows in place.
  const bool direct = f.sx == c && f.sc == 1 && sq.x0 >= 0 && sq.x0 + side <= f.w;
  if (!direct) {
    s.row.resize(2 * n);
    s.colx.resize(side);
    for (int64_t k = 0; k < side; ++k) s.colx[k] = clamp64(sq.x0 + k, 0, f.w - 1) * f.sx;
  }
  // Source row k of the crop (in place, or gathered into slot 0/1 of s.row).
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

  // Vertical pass, one output row at a time, on the interleaved bytes; then gray, transposed.
  float* acc = s.acc.data();
  if (side > kMaxIntRows * kOutSide) s.acc_big.resize(n);
  float* acc_big = s.acc_big.data();
  uint16_t* isum = s.isum.data();
  float* gt = s.gray_t.data();
  for (int v = 0; v < kOutSide; ++v) {
    // Full-weight rows: integer sums (more than 256 rows: earlier chunks flushed to acc_big).
    const uint16_t* isum_used = nullptr;
    bool big = false;
    for (int64_t k = tab.full0[v]; k < tab.full1[v];) {
      if (isum_used != nullptr) {
        if (!big) std::fill(acc_big, acc_big + n, 0.0f), big = true;
        acc_add_isum(acc_big, isum, n, tab.w_full[v]);
      }
      const int64_t k_end = std::min<int64_t>(tab.full1[v], k + kMaxIntRows);
      isum_assign(isum, source_row(k++, 0), n);
      for (; k + 1 < k_end; k += 2) isum_add2(isum, source_row(k, 0), source_row(k + 1, 1), n);
      if (k < k_end) isum_add(isum, source_row(k++, 0), n);
      isum_used = isum;
    }
    // Partial edge rows: gathered rows use slots 0 and 1 (isum is already reduced).
    const uint8_t* ra = tab.w_a[v] != 0.0f ? source_row(tab.k_a[v], 0) : nullptr;
    const uint8_t* rb = tab.w_b[v] != 0.0f ? source_row(tab.k_b[v], 1) : nullptr;
    combine_rows(acc, isum_used, tab.w_full[v], ra, tab.w_a[v], rb, tab.w_b[v], n);
    if (big) {
      for (int64_t i = 0; i < n; ++i) acc[i] += acc_big[i];
    }
    gray_column(acc, gt, side, c, v);
  }

  // Horizontal pass for all 48 rows at once: 48-wide contiguous multiply-adds per tap.
  float col[kOutSide];
  for (int u = 0; u < kOutSide; ++u) {
    const float* w = &tab.lin[u * span];
    const float* g = gt + static_cast<int64_t>(tab.start[u]) * kOutSide;
    for (int v = 0; v < kOutSide; ++v) col[v] = w[0] * g[v];
    for (int t = 1; t < span; ++t) {
      const float wt = w[t];
      const float* gr = g + t * kOutSide;
      for (int v = 0; v < kOutSide; ++v) col[v] += wt * gr[v];
    }
    for (int v = 0; v < kOutSide; ++v) out[v * kOutSide + u] = col[v] * fr.scale + fr.bias;
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

AxisTaps axis_taps(int64_t side, int u, float* lin) {
  const double s = static_cast<double>(side) / kOutSide;
  AxisTaps t{};
  if (side >= kOutSide) {
    // Area: output u covers the crop interval [u*s, (u+1)*s) (as cv2.INTER_AREA).
    const double a = static_cast<double>(u) * side / kOutSide;
    const double b = static_cast<double>(u + 1) * side / kOutSide;
    const int64_t ka = static_cast<int64_t>(std::floor(a));
    const int64_t kf0 = static_cast<int64_t>(std::ceil(a));
    const int64_t kf1 = static_cast<int64_t>(std::floor(b));
    t.start = static_cast<int32_t>(ka);
    t.full0 = static_cast<int32_t>(kf0);
    t.full1 = static_cast<int32_t>(kf1);
    t.w_full = static_cast<float>(1.0 / s);
    t.k_a = static_cast<int32_t>(ka);
    t.w_a = kf0 > ka ? static_cast<float>((kf0 - a) / s) : 0.0f;
    t.k_b = static_cast<int32_t>(std::min<int64_t>(kf1, side - 1));
    t.w_b = (kf1 < side && b > kf1) ? static_cast<float>((b - kf1) / s) : 0.0f;
    for (int64_t k = ka; k < std::min<int64_t>(static_cast<int64_t>(std::ceil(b)), side); ++k) {
      const double overlap = std::min<double>(k + 1, b) - std::max<double>(k, a);
      lin[k - ka] = static_cast<float>(std::max(overlap, 0.0) / s);
    }
  } else {
    // Bilinear, half-pixel centres, clamped to the crop (as cv2.resize INTER_LINEAR on the crop).
    const double src = (u + 0.5) * s - 0.5;
    int64_t k = static_cast<int64_t>(std::floor(src));
    double f = src - static_cast<double>(k);
    if (k < 0) k = 0, f = 0.0;
    if (k >= side - 1) k = side - 1, f = 0.0;
    t.start = t.k_a = static_cast<int32_t>(k);
    t.k_b = static_cast<int32_t>(std::min<int64_t>(k + 1, side - 1));
    t.full0 = t.full1 = 0;
    t.w_a = static_cast<float>(1.0 - f);
    t.w_b = static_cast<float>(f);
    t.w_full = 0.0f;
    lin[0] = t.w_a;
    lin[1] = t.w_b;
  }
  return t;
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

void preprocess_faces(const FrameView& frame, const double* boxes, const double* landmarks,
                      int64_t n, const FramingParams& fr, float* out) {
  Scratch& s = scratch();
  for (int64_t i = 0; i < n; ++i) {
    float* o = out + i * kOutPixels;
    if (landmarks != nullptr) {
      crop_warp(frame, landmarks + i * 10, fr, o, s);
    } else {
      crop_box(frame, box_crop(boxes + i * 4, fr, frame), fr, o, s);
    }
  }
}

}  // namespace ferfast
