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

namespace ferfast {
namespace {

constexpr float kWB = 0.114f, kWG = 0.587f, kWR = 0.299f;  // BGR -> gray (ITU-R BT.601)

inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Per output index u: `taps` (index, weight) pairs into the crop [0, side); zero-weight padding.
struct WeightTable {
  int64_t side = -1;
  int taps = 0;
  std::vector<int32_t> start;  // first crop index for output u
  std::vector<float> w;        // w[u * taps + t] weight of crop index start[u] + t
};

void build_table(int64_t side, WeightTable& tab) {
  if (tab.side == side) return;
  tab.side = side;
  tab.start.assign(kOutSide, 0);
  if (side >= kOutSide) {
    // Area: output u covers crop interval [u*s, (u+1)*s), s = side / 48.
    const double s = static_cast<double>(side) / kOutSide;
    tab.taps = static_cast<int>(std::ceil(s)) + 1;
    tab.w.assign(static_cast<size_t>(kOutSide) * tab.taps, 0.0f);
    for (int u = 0; u < kOutSide; ++u) {
      const double a = static_cast<double>(u) * side / kOutSide;
      const double b = static_cast<double>(u + 1) * side / kOutSide;
      const int64_t k0 = static_cast<int64_t>(std::floor(a));
      const int64_t k1 = std::min<int64_t>(static_cast<int64_t>(std::ceil(b)), side);
      tab.start[u] = static_cast<int32_t>(k0);
      for (int64_t k = k0; k < k1 && k - k0 < tab.taps; ++k) {
        const double overlap = std::min<double>(k + 1, b) - std::max<double>(k, a);
        tab.w[u * tab.taps + (k - k0)] = static_cast<float>(std::max(overlap, 0.0) / s);
      }
    }
  } else {
    // Bilinear, half-pixel centres, clamped to the crop (as cv2.resize INTER_LINEAR on the crop).
    const double s = static_cast<double>(side) / kOutSide;
    tab.taps = 2;
    tab.w.assign(static_cast<size_t>(kOutSide) * 2, 0.0f);
    for (int u = 0; u < kOutSide; ++u) {
      double src = (u + 0.5) * s - 0.5;
      int64_t k = static_cast<int64_t>(std::floor(src));
      double f = src - static_cast<double>(k);
      if (k < 0) {
        k = 0;
        f = 0.0;
      }
      if (k >= side - 1) {
        k = side - 1;
        f = 0.0;
      }
      tab.start[u] = static_cast<int32_t>(k);
      tab.w[u * 2] = static_cast<float>(1.0 - f);
      tab.w[u * 2 + 1] = static_cast<float>(f);  // index k+1 <= side-1 whenever f > 0
    }
  }
}

// Scratch memory reused across calls (one set per thread).
struct Scratch {
  WeightTable tab;
  std::vector<float> acc;     // vertically reduced interleaved row, side * c
  std::vector<float> gray;    // gray row, side + taps (zero tail for padded taps)
  std::vector<uint8_t> row;   // gathered source row (edge replication / odd strides)
  std::vector<int64_t> colx;  // byte offset of crop column k within a source row
  std::vector<float> region;  // landmark mode: gray copy of the touched source region
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// acc[i] (+)= w * p[i] for i < n. Plain loops: -O3 vectorises the uint8 -> float multiply-add.
inline void row_assign(float* __restrict acc, const uint8_t* __restrict p, int64_t n, float w) {
  for (int64_t i = 0; i < n; ++i) acc[i] = w * static_cast<float>(p[i]);
}
inline void row_accumulate(float* __restrict acc, const uint8_t* __restrict p, int64_t n, float w) {
  for (int64_t i = 0; i < n; ++i) acc[i] += w * static_cast<float>(p[i]);
}

void gray_row(const float* __restrict acc, float* __restrict gray, int64_t side, int64_t c) {
  if (c == 1) {
    std::memcpy(gray, acc, sizeof(float) * side);
  } else {
    for (int64_t k = 0; k < side; ++k) {
      const float* px = acc + k * c;
      gray[k] = kWB * px[0] + kWG * px[1] + kWR * px[2];
    }
  }
}

void crop_box(const FrameView& f, const CropSquare& sq, const FramingParams& fr, float* out,
              Scratch& s) {
  const int64_t side = sq.side, c = f.c, n = side * c;
  build_table(side, s.tab);
  const WeightTable& tab = s.tab;
  const int taps = tab.taps;
  s.acc.resize(n);
  s.gray.assign(side + taps, 0.0f);

  // Contiguous pixels fully inside the frame horizontally: read rows in place.
  const bool direct = f.sx == c && f.sc == 1 && sq.x0 >= 0 && sq.x0 + side <= f.w;
  if (!direct) {
    s.row.resize(n);
    s.colx.resize(side);
    for (int64_t k = 0; k < side; ++k) s.colx[k] = clamp64(sq.x0 + k, 0, f.w - 1) * f.sx;
  }
  auto source_row = [&](int64_t k) -> const uint8_t* {
    const uint8_t* base = f.data + clamp64(sq.y0 + k, 0, f.h - 1) * f.sy;
    if (direct) return base + sq.x0 * c;
    uint8_t* dst = s.row.data();
    for (int64_t j = 0; j < side; ++j) {
      const uint8_t* px = base + s.colx[j];
      for (int64_t ch = 0; ch < c; ++ch) dst[j * c + ch] = px[ch * f.sc];
    }
    return dst;
  };

  float* acc = s.acc.data();
  float* gray = s.gray.data();
  for (int v = 0; v < kOutSide; ++v) {
    const float* wv = &tab.w[v * taps];
    bool first = true;
    for (int t = 0; t < taps; ++t) {
      if (wv[t] == 0.0f) continue;
      const uint8_t* p = source_row(tab.start[v] + t);
      if (first) {
        row_assign(acc, p, n, wv[t]);
        first = false;
      } else {
        row_accumulate(acc, p, n, wv[t]);
      }
    }
    if (first) std::fill(acc, acc + n, 0.0f);
    gray_row(acc, gray, side, c);
    float* o = out + v * kOutSide;
    for (int u = 0; u < kOutSide; ++u) {
      const float* wu = &tab.w[u * taps];
      const float* g = gray + tab.start[u];
      float sum = 0.0f;
      for (int t = 0; t < taps; ++t) sum += wu[t] * g[t];
      o[u] = sum * fr.scale + fr.bias;
    }
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

void crop_warp(const FrameView& f, const double* lm, const FramingParams& fr, float* out,
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
