// Per-output-pixel math of the GPU preprocessing, shared by the CUDA kernel (nvcc) and a host
// emulation (g++) so that CI without a GPU can check it against the CPU kernel (preprocess.cpp).
//
// It reproduces preprocess.cpp operation for operation (same float/double types, same order):
// box mode = vertical pass (integer sum of the full-weight rows, then w_full*sum + w_a*edge_a +
// w_b*edge_b in float), BT.601 gray, horizontal pass over the dense per-output weights; landmark
// mode = similarity warp with ns x ns bilinear taps on gray computed from the frame. The .cu file
// is compiled with --fmad=false so that nvcc does not contract a*b+c into FMA: results then equal
// the CPU kernel's baseline (SSE2) build bit for bit; its AVX2+FMA clone may differ in the last
// float bit.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define FERFAST_HD __host__ __device__ __forceinline__
#else
#define FERFAST_HD inline
#endif

namespace ferfast {
namespace gpu {

constexpr int kSide = 48;
constexpr int64_t kMaxIntRows = 256;  // preprocess.cpp: rows summed in integers per chunk

// Resampling of one output index u along one axis (preprocess.cpp WeightTable entries).
struct AxisTap {
  int32_t start;         // first crop index of the horizontal taps (lin weights)
  int32_t k_a, k_b;      // partial edge rows (vertical pass)
  int32_t full0, full1;  // full-weight rows [full0, full1)
  float w_a, w_b, w_full;
};
constexpr float kWB = 0.114f, kWG = 0.587f, kWR = 0.299f;  // as preprocess.cpp

// The frame as the kernel reads it: byte strides (may be negative), any base pointer.
struct FrameDesc {
  const uint8_t* data;
  int64_t h, w, c;
  int64_t sy, sx, sc;
};

// One face, fully planned on the host (geometry and weight tables).
struct FaceJob {
  int32_t mode;  // 0 = box crop, 1 = landmark warp
  int32_t span;  // box: horizontal taps per output index
  int64_t x0, y0, side;
  int64_t lin_off;   // box: offset of this face's 48*span horizontal weights in the weight table
  int64_t axis_off;  // box: offset of this face's 48 AxisTap entries in the axis table
  // landmark warp (preprocess.cpp crop_warp): the frame box-filtered by fct on a block grid at
  // (ox, oy) of iw x ih blocks, sampled with ns x ns bilinear taps in block coordinates
  // x = fa*u' + rx(v'), y = fb*u' + ry(v'), rx = float(-gb*v' + gtx), ry = float(ga*v' + gty).
  double ga, gb, gtx, gty;
  float fa, fb, xhi, yhi, inv;
  int32_t ns;
  int64_t fct, ox, oy, iw, ih;
  float offs[16];
};

FERFAST_HD int64_t clamp_i64(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// Vertically resampled value of crop column k, channel byte offset ch, for output row v.
FERFAST_HD float box_vertical(const FrameDesc& f, const FaceJob& job, const AxisTap& t,
                              const uint8_t* col) {
  auto px = [&](int64_t row) {
    return col[clamp_i64(job.y0 + row, 0, f.h - 1) * f.sy];
  };
  // Full-weight rows: exact integer sums in chunks of 256 rows; earlier chunks go to acc_big.
  bool have_sum = false, big = false;
  int64_t isum = 0;
  float acc_big = 0.0f;
  for (int64_t k = t.full0; k < t.full1;) {
    if (have_sum) {
      acc_big = big ? acc_big + t.w_full * static_cast<float>(isum) : t.w_full * static_cast<float>(isum);
      big = true;
    }
    const int64_t k_end = k + kMaxIntRows < t.full1 ? k + kMaxIntRows : t.full1;
    isum = 0;
    for (; k < k_end; ++k) isum += px(k);
    have_sum = true;
  }
  const bool has_a = t.w_a != 0.0f, has_b = t.w_b != 0.0f;
  const float ra = has_a ? static_cast<float>(px(t.k_a)) : 0.0f;
  const float rb = has_b ? static_cast<float>(px(t.k_b)) : 0.0f;
  const float fs = static_cast<float>(isum);
  float acc;  // preprocess.cpp combine_rows, term by term
  if (have_sum && has_a && has_b) {
    acc = t.w_full * fs + t.w_a * ra + t.w_b * rb;
  } else if (have_sum && (has_a || has_b)) {
    acc = has_a ? t.w_full * fs + t.w_a * ra : t.w_full * fs + t.w_b * rb;
  } else if (have_sum) {
    acc = t.w_full * fs;
  } else if (has_a && has_b) {
    acc = t.w_a * ra + t.w_b * rb;
  } else if (has_a || has_b) {
    acc = has_a ? t.w_a * ra : t.w_b * rb;
  } else {
    acc = 0.0f;
  }
  if (big) acc = acc + acc_big;
  return acc;
}

// Gray (float) of crop column k after the vertical pass of output row v.
FERFAST_HD float box_gray(const FrameDesc& f, const FaceJob& job, const AxisTap& tv, int64_t k) {
  const uint8_t* col = f.data + clamp_i64(job.x0 + k, 0, f.w - 1) * f.sx;
  if (f.c == 1) return box_vertical(f, job, tv, col);
  const float a0 = box_vertical(f, job, tv, col);
  const float a1 = box_vertical(f, job, tv, col + f.sc);
  const float a2 = box_vertical(f, job, tv, col + 2 * f.sc);
  return kWB * a0 + kWG * a1 + kWR * a2;
}

FERFAST_HD float box_pixel(const FrameDesc& f, const FaceJob& job, const AxisTap* axis,
                           const float* lin, int u, int v, float scale, float bias) {
  const float* w = lin + u * job.span;
  const int64_t start = axis[u].start;
  float col = 0.0f;
  for (int t = 0; t < job.span; ++t) {
    const int64_t k = start + t;
    // Past the crop preprocess.cpp reads a zero tail; a zero weight adds an exact 0 either way.
    const float g = (k < job.side && w[t] != 0.0f) ? box_gray(f, job, axis[v], k) : 0.0f;
    col = t == 0 ? w[0] * g : col + w[t] * g;
  }
  return col * scale + bias;
}

// Box-filtered gray of block (ix, iy) (preprocess.cpp box_gray): exact integer sums of the
// fct x fct block (coordinates clamped to the frame), then float weights and 1 / fct^2.
FERFAST_HD float block_gray(const FrameDesc& f, const FaceJob& m, int64_t ix, int64_t iy) {
  const int64_t x0 = m.ox + ix * m.fct, y0 = m.oy + iy * m.fct;
  uint32_t s0 = 0, s1 = 0, s2 = 0;
  for (int64_t dy = 0; dy < m.fct; ++dy) {
    const uint8_t* row = f.data + clamp_i64(y0 + dy, 0, f.h - 1) * f.sy;
    for (int64_t dx = 0; dx < m.fct; ++dx) {
      const uint8_t* px = row + clamp_i64(x0 + dx, 0, f.w - 1) * f.sx;
      s0 += px[0];
      if (f.c != 1) {
        s1 += px[f.sc];
        s2 += px[2 * f.sc];
      }
    }
  }
  const float inv = 1.0f / static_cast<float>(m.fct * m.fct);
  if (f.c == 1) return static_cast<float>(s0) * inv;
  return (kWB * static_cast<float>(s0) + kWG * static_cast<float>(s1) +
          kWR * static_cast<float>(s2)) * inv;
}

FERFAST_HD float warp_pixel(const FrameDesc& f, const FaceJob& m, int u, int v, float scale,
                            float bias) {
  const int iw = static_cast<int>(m.iw), ih = static_cast<int>(m.ih);
  float acc = 0.0f;
  for (int j = 0; j < m.ns; ++j) {
    const double ov = v + static_cast<double>(m.offs[j]);
    const float rx = static_cast<float>(-m.gb * ov + m.gtx);
    const float ry = static_cast<float>(m.ga * ov + m.gty);
    float sum = 0.0f;
    for (int i = 0; i < m.ns; ++i) {
      const float ou = static_cast<float>(u) + m.offs[i];
      float x = m.fa * ou + rx, y = m.fb * ou + ry;
      x = x < 0.0f ? 0.0f : (x > m.xhi ? m.xhi : x);
      y = y < 0.0f ? 0.0f : (y > m.yhi ? m.yhi : y);
      const int x0 = static_cast<int>(x), y0 = static_cast<int>(y);
      const int x1 = x0 + 1 < iw ? x0 + 1 : x0;
      const int y1 = y0 + 1 < ih ? y0 + 1 : y0;
      const float fx = x - static_cast<float>(x0), fy = y - static_cast<float>(y0);
      const float p00 = block_gray(f, m, x0, y0), p01 = block_gray(f, m, x1, y0);
      const float p10 = block_gray(f, m, x0, y1), p11 = block_gray(f, m, x1, y1);
      const float top = p00 + fx * (p01 - p00);
      const float bot = p10 + fx * (p11 - p10);
      sum += top + fy * (bot - top);
    }
    acc += sum;
  }
  return acc * m.inv * scale + bias;
}

FERFAST_HD float face_pixel(const FrameDesc& f, const FaceJob& job, const AxisTap* axis,
                            const float* lin, int u, int v, float scale, float bias) {
  if (job.mode == 1) return warp_pixel(f, job, u, v, scale, bias);
  return box_pixel(f, job, axis + job.axis_off, lin + job.lin_off, u, v, scale, bias);
}

}  // namespace gpu
}  // namespace ferfast
