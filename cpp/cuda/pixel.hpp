// Per-output-pixel math of the GPU preprocessing, shared by the CUDA kernel (nvcc) and a host
// emulation (g++) so that CI without a GPU can check it against the CPU kernel (preprocess.cpp).
//
// It reproduces preprocess.cpp operation for operation (same float/double types, same order,
// same zero-weight skips): box mode = separable area/bilinear weights, vertical taps on the raw
// channels, BT.601 gray, horizontal taps; landmark mode = similarity warp with ns x ns bilinear
// taps on gray computed from the frame. The .cu file is compiled with --fmad=false so that nvcc
// does not contract a*b+c into FMA, which keeps GPU results bit-identical to x86-64 CPU results.
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
  int32_t taps;  // box: weights per output index
  int64_t x0, y0, side;
  int64_t tab_off;    // box: offset of this face's 48*taps weights in the weight table
  int64_t start_off;  // box: offset of this face's 48 start indices in the start table
  // landmark warp: x = a*u - b*v + tx ; y = b*u + a*v + ty, ns x ns taps, source region bounds
  double a, b, tx, ty;
  int32_t ns, pad_;
  int64_t rx0, rx1, ry0, ry1;
};

FERFAST_HD int64_t clamp_i64(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}
FERFAST_HD double clamp_d(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Gray value (float) of crop column k after the vertical pass of output row v (box mode).
FERFAST_HD float box_gray_column(const FrameDesc& f, const FaceJob& job, const int32_t* start,
                                 const float* w, int v, int64_t k) {
  const int64_t x = clamp_i64(job.x0 + k, 0, f.w - 1);
  const float* wv = w + v * job.taps;
  float acc0 = 0.0f, acc1 = 0.0f, acc2 = 0.0f;
  bool first = true;
  for (int t = 0; t < job.taps; ++t) {
    const float wt = wv[t];
    if (wt == 0.0f) continue;
    const int64_t y = clamp_i64(job.y0 + start[v] + t, 0, f.h - 1);
    const uint8_t* px = f.data + y * f.sy + x * f.sx;
    const float p0 = static_cast<float>(px[0]);
    if (f.c == 1) {
      acc0 = first ? wt * p0 : acc0 + wt * p0;
    } else {
      const float p1 = static_cast<float>(px[f.sc]);
      const float p2 = static_cast<float>(px[2 * f.sc]);
      if (first) {
        acc0 = wt * p0;
        acc1 = wt * p1;
        acc2 = wt * p2;
      } else {
        acc0 = acc0 + wt * p0;
        acc1 = acc1 + wt * p1;
        acc2 = acc2 + wt * p2;
      }
    }
    first = false;
  }
  if (f.c == 1) return acc0;
  return kWB * acc0 + kWG * acc1 + kWR * acc2;
}

FERFAST_HD float box_pixel(const FrameDesc& f, const FaceJob& job, const int32_t* start,
                           const float* w, int u, int v, float scale, float bias) {
  const float* wu = w + u * job.taps;
  float sum = 0.0f;
  for (int t = 0; t < job.taps; ++t) {
    const int64_t k = start[u] + t;
    // preprocess.cpp pads the gray row with zeros past the crop: those taps add wu[t] * 0.
    const float g = k < job.side ? box_gray_column(f, job, start, w, v, k) : 0.0f;
    sum = sum + wu[t] * g;
  }
  return sum * scale + bias;
}

FERFAST_HD float gray_at(const FrameDesc& f, int64_t x, int64_t y) {
  const uint8_t* px = f.data + y * f.sy + x * f.sx;
  if (f.c == 1) return static_cast<float>(px[0]);
  return kWB * px[0] + kWG * px[f.sc] + kWR * px[2 * f.sc];
}

FERFAST_HD float warp_pixel(const FrameDesc& f, const FaceJob& m, int u, int v, float scale,
                            float bias) {
  const int ns = m.ns;
  const double inv = 1.0 / (ns * ns);
  const double fx_hi = static_cast<double>(f.w - 1), fy_hi = static_cast<double>(f.h - 1);
  double sum = 0.0;
  for (int j = 0; j < ns; ++j) {
    const double ov = v - 0.5 + (j + 0.5) / ns;
    for (int i = 0; i < ns; ++i) {
      const double ou = u - 0.5 + (i + 0.5) / ns;
      const double x = clamp_d(m.a * ou - m.b * ov + m.tx, 0.0, fx_hi);
      const double y = clamp_d(m.b * ou + m.a * ov + m.ty, 0.0, fy_hi);
      const int64_t x0 = clamp_i64(static_cast<int64_t>(x), m.rx0, m.rx1);
      const int64_t y0 = clamp_i64(static_cast<int64_t>(y), m.ry0, m.ry1);
      const double fx = clamp_d(x - static_cast<double>(x0), 0.0, 1.0);
      const double fy = clamp_d(y - static_cast<double>(y0), 0.0, 1.0);
      const int64_t x1 = x0 + 1 < m.rx1 ? x0 + 1 : m.rx1;
      const int64_t y1 = y0 + 1 < m.ry1 ? y0 + 1 : m.ry1;
      // float differences promoted to double afterwards, exactly as preprocess.cpp's region rows
      const float g00 = gray_at(f, x0, y0), g01 = gray_at(f, x1, y0);
      const float g10 = gray_at(f, x0, y1), g11 = gray_at(f, x1, y1);
      const double top = g00 + fx * (g01 - g00);
      const double bot = g10 + fx * (g11 - g10);
      sum += top + fy * (bot - top);
    }
  }
  return static_cast<float>(sum * inv) * scale + bias;
}

FERFAST_HD float face_pixel(const FrameDesc& f, const FaceJob& job, const int32_t* starts,
                            const float* weights, int u, int v, float scale, float bias) {
  if (job.mode == 1) return warp_pixel(f, job, u, v, scale, bias);
  return box_pixel(f, job, starts + job.start_off, weights + job.tab_off, u, v, scale, bias);
}

}  // namespace gpu
}  // namespace ferfast
