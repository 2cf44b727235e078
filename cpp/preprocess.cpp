// ferfast preprocessing kernel (see preprocess.hpp).
//
// Box mode: the square crop is resampled separably with one weight table per axis (the crop is
// square, so both axes share it): exact fractional-overlap area weights (cv2.INTER_AREA) when the
// crop is at least 48 px, bilinear with half-pixel centres (cv2.INTER_LINEAR) when smaller. The
// vertical pass runs on the raw interleaved bytes of each needed source row (contiguous, so the
// compiler vectorises it), the BGR->gray weights are applied once per output row on the vertically
// reduced row, then the horizontal taps. Rows/columns outside the frame replicate the edge.
//
// Landmark mode: a similarity warp (eyes -> fixed output positions) sampled with ceil(scale)^2
// bilinear taps per output pixel (a box-filter approximation of area averaging), reading a gray
// copy of only the source region the warp touches.
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
  for (auto* v : {&tab.start, &tab.k_a, &tab.k_b, &tab.full0, &tab.full1}) v->assign(kOutSide, 0);
  for (auto* v : {&tab.w_a, &tab.w_b, &tab.w_full}) v->assign(kOutSide, 0.0f);
  const double s = static_cast<double>(side) / kOutSide;
  tab.lin.assign(static_cast<size_t>(kOutSide) * (static_cast<size_t>(std::ceil(s)) + 2), 0.0f);
  float* lin = tab.lin.data();
  if (side >= kOutSide) {
    // Area: output u covers the crop interval [u*s, (u+1)*s) (as cv2.INTER_AREA).
    tab.span = static_cast<int>(std::ceil(s)) + 1;
    for (int u = 0; u < kOutSide; ++u) {
      const double a = static_cast<double>(u) * side / kOutSide;
      const double b = static_cast<double>(u + 1) * side / kOutSide;
      const int64_t ka = static_cast<int64_t>(std::floor(a));
      const int64_t kf0 = static_cast<int64_t>(std::ceil(a));
      const int64_t kf1 = static_cast<int64_t>(std::floor(b));
      tab.start[u] = static_cast<int32_t>(ka);
      tab.full0[u] = static_cast<int32_t>(kf0);
      tab.full1[u] = static_cast<int32_t>(kf1);
      tab.w_full[u] = static_cast<float>(1.0 / s);
      tab.k_a[u] = static_cast<int32_t>(ka);
      tab.w_a[u] = kf0 > ka ? static_cast<float>((kf0 - a) / s) : 0.0f;
      tab.k_b[u] = static_cast<int32_t>(std::min<int64_t>(kf1, side - 1));
      tab.w_b[u] = (kf1 < side && b > kf1) ? static_cast<float>((b - kf1) / s) : 0.0f;
      for (int64_t k = ka; k < std::min<int64_t>(static_cast<int64_t>(std::ceil(b)), side); ++k) {
        const double overlap = std::min<double>(k + 1, b) - std::max<double>(k, a);
        lin[u * tab.span + (k - ka)] = static_cast<float>(std::max(overlap, 0.0) / s);
      }
    }
  } else {
    // Bilinear, half-pixel centres, clamped to the crop (as cv2.resize INTER_LINEAR on the crop).
    tab.span = 2;
    for (int u = 0; u < kOutSide; ++u) {
      const double src = (u + 0.5) * s - 0.5;
      int64_t k = static_cast<int64_t>(std::floor(src));
      double f = src - static_cast<double>(k);
      if (k < 0) k = 0, f = 0.0;
      if (k >= side - 1) k = side - 1, f = 0.0;
      tab.start[u] = tab.k_a[u] = static_cast<int32_t>(k);
      tab.k_b[u] = static_cast<int32_t>(std::min<int64_t>(k + 1, side - 1));
      tab.full0[u] = tab.full1[u] = 0;
      tab.w_a[u] = static_cast<float>(1.0 - f);
      tab.w_b[u] = static_cast<float>(f);
      lin[u * 2] = tab.w_a[u];
      lin[u * 2 + 1] = tab.w_b[u];
    }
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

FERFAST_MULTIVERSION void crop_warp(const FrameView& f, const double* lm, const FramingParams& fr, float* out,
               Scratch& s) {
  const Similarity m = eye_similarity(lm, fr);
  const double scale = std::sqrt(m.a * m.a + m.b * m.b);
  const int ns = static_cast<int>(
      std::min<double>(kMaxSupersample, std::max(1.0, std::ceil(scale - 1e-6))));

  // Source bounding box of the output square (corners -0.5 .. 47.5), intersected with the frame.
  double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
  for (double cu : {-0.5, kOutSide - 0.5}) {
    for (double cv : {-0.5, kOutSide - 0.5}) {
      const double x = m.a * cu - m.b * cv + m.tx, y = m.b * cu + m.a * cv + m.ty;
      xmin = std::min(xmin, x), xmax = std::max(xmax, x);
      ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  }
  auto clampd = [](double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); };
  const int64_t rx0 = static_cast<int64_t>(clampd(std::floor(xmin) - 1, 0, f.w - 1));
  const int64_t rx1 = static_cast<int64_t>(clampd(std::ceil(xmax) + 1, 0, f.w - 1));
  const int64_t ry0 = static_cast<int64_t>(clampd(std::floor(ymin) - 1, 0, f.h - 1));
  const int64_t ry1 = static_cast<int64_t>(clampd(std::ceil(ymax) + 1, 0, f.h - 1));
  const int64_t rw = rx1 - rx0 + 1, rh = ry1 - ry0 + 1;

  // Gray copy of the region only.
  s.region.resize(rw * rh);
  float* reg = s.region.data();
  for (int64_t y = 0; y < rh; ++y) {
    const uint8_t* row = f.data + (ry0 + y) * f.sy + rx0 * f.sx;
    float* r = reg + y * rw;
    if (f.c == 1) {
      for (int64_t x = 0; x < rw; ++x) r[x] = row[x * f.sx];
    } else {
      for (int64_t x = 0; x < rw; ++x) {
        const uint8_t* px = row + x * f.sx;
        r[x] = kWB * px[0] + kWG * px[f.sc] + kWR * px[2 * f.sc];
      }
    }
  }

  // Supersampled bilinear: ns x ns taps spread evenly over each output pixel.
  const double inv = 1.0 / (ns * ns);
  const double fx_hi = static_cast<double>(f.w - 1), fy_hi = static_cast<double>(f.h - 1);
  for (int v = 0; v < kOutSide; ++v) {
    for (int u = 0; u < kOutSide; ++u) {
      double sum = 0.0;
      for (int j = 0; j < ns; ++j) {
        const double ov = v - 0.5 + (j + 0.5) / ns;
        for (int i = 0; i < ns; ++i) {
          const double ou = u - 0.5 + (i + 0.5) / ns;
          // Edge replication: clamp to the frame, then to the region (a no-op up to rounding).
          const double x = clampd(m.a * ou - m.b * ov + m.tx, 0.0, fx_hi);
          const double y = clampd(m.b * ou + m.a * ov + m.ty, 0.0, fy_hi);
          int64_t x0 = clamp64(static_cast<int64_t>(x), rx0, rx1);
          int64_t y0 = clamp64(static_cast<int64_t>(y), ry0, ry1);
          const double fx = clampd(x - static_cast<double>(x0), 0.0, 1.0);
          const double fy = clampd(y - static_cast<double>(y0), 0.0, 1.0);
          const int64_t x1 = std::min(x0 + 1, rx1), y1 = std::min(y0 + 1, ry1);
          const float* r0 = reg + (y0 - ry0) * rw;
          const float* r1 = reg + (y1 - ry0) * rw;
          x0 -= rx0;
          const int64_t x1r = x1 - rx0;
          const double top = r0[x0] + fx * (r0[x1r] - r0[x0]);
          const double bot = r1[x0] + fx * (r1[x1r] - r1[x0]);
          sum += top + fy * (bot - top);
        }
      }
      out[v * kOutSide + u] = static_cast<float>(sum * inv) * fr.scale + fr.bias;
    }
  }
}

}  // namespace

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
