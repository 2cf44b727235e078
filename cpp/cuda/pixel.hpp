// Per-output-pixel math of the GPU preprocessing, shared by the CUDA kernel (nvcc) and a host
// emulation (g++) so that CI without a GPU can check it against the CPU kernel (preprocess.cpp).
//
// It reproduces preprocess.cpp operation for operation (same float/double types, same order):
// box mode = the exact integer sums of the separable integer weights per channel, then BT.601
// gray and the scale in float; landmark mode = similarity warp with ns x ns bilinear taps on gray
// computed from the frame. The .cu file is compiled with --fmad=false so that nvcc does not
// contract a*b+c into FMA: results then equal the CPU kernel's baseline (SSE2) build bit for bit;
// its AVX2+FMA clone may differ in the last float bit.
#pragma once

#include <cstdint>

#include "../preprocess.hpp"

#if defined(__CUDACC__)
#define FERFAST_HD __host__ __device__ __forceinline__
#else
#define FERFAST_HD inline
#endif

namespace ferfast {
namespace gpu {

constexpr int kSide = kOutSide;

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
  int32_t span;  // box: taps per output index (preprocess.hpp axis_span)
  int64_t x0, y0, side;
  int64_t lin_off;   // box: offset of this face's 48*span integer weights in the weight table
  int64_t axis_off;  // box: offset of this face's 48 first crop indices in the start table
  float kf;          // box: scale / axis_total(side)^2 (float, as preprocess.cpp)
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

// Output pixel (u, v) of a box crop: the exact 2-D weighted sums per channel (integers, which
// preprocess.cpp holds exactly in float or double), then gray and scale in float.
FERFAST_HD float box_pixel(const FrameDesc& f, const FaceJob& job, const int32_t* start,
                           const int32_t* lin, int u, int v, float bias) {
  const int32_t* wu = lin + u * job.span;
  const int32_t* wv = lin + v * job.span;
  const int cg = f.c == 1 ? 1 : 3;
  int64_t h[3] = {0, 0, 0};
  for (int tv = 0; tv < job.span; ++tv) {
    if (wv[tv] == 0) continue;
    const uint8_t* row = f.data + clamp_i64(job.y0 + start[v] + tv, 0, f.h - 1) * f.sy;
    for (int tu = 0; tu < job.span; ++tu) {
      if (wu[tu] == 0) continue;
      const uint8_t* px = row + clamp_i64(job.x0 + start[u] + tu, 0, f.w - 1) * f.sx;
      const int64_t wt = static_cast<int64_t>(wv[tv]) * wu[tu];
      for (int ch = 0; ch < cg; ++ch) h[ch] += wt * px[ch * f.sc];
    }
  }
  const float g = cg == 1 ? static_cast<float>(h[0])
                          : kWB * static_cast<float>(h[0]) + kWG * static_cast<float>(h[1]) +
                                kWR * static_cast<float>(h[2]);
  return g * job.kf + bias;
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

FERFAST_HD float face_pixel(const FrameDesc& f, const FaceJob& job, const int32_t* start,
                            const int32_t* lin, int u, int v, float scale, float bias) {
  if (job.mode == 1) return warp_pixel(f, job, u, v, scale, bias);
  return box_pixel(f, job, start + job.axis_off, lin + job.lin_off, u, v, bias);
}

}  // namespace gpu
}  // namespace ferfast
