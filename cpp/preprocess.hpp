// ferfast preprocessing kernel: face boxes (and optional eye landmarks) -> float32 48x48 gray crops.
// Pure C++ (no Python): the bindings in module.cpp validate inputs and release the GIL around it.
#pragma once

#include <cstdint>

#include "contract.hpp"  // generated from src/ferfast/contract.py at configure time (CMakeLists.txt)

namespace ferfast {

constexpr int kOutSide = contract::kSide;  // model input side (N, 1, 48, 48) with SIDE = 48
constexpr int kOutPixels = kOutSide * kOutSide;
constexpr int64_t kMaxSideFactor = 16;  // crop side (and warp scale) cap: 16x the frame's larger side
constexpr int kMaxSupersample = 16;     // landmark warp: at most 16x16 bilinear taps per output pixel

// A uint8 image read in place: pixel (y, x) channel c lives at data + y*sy + x*sx + c*sc.
// Strides are in bytes and may be negative (numpy views such as frame[::-1] or frame[..., ::-1]).
struct FrameView {
  const uint8_t* data;
  int64_t h, w, c;  // c is 1 (gray), 3 (BGR) or 4 (BGRA)
  int64_t sy, sx, sc;
};

// Framing: how a detector box / the eye landmarks map onto the 48x48 model input.
struct FramingParams {
  double margin;          // square side = max(w, h) * margin
  double offset_x;        // centre shift, as a fraction of the square side
  double offset_y;
  double eye_left[2];     // output position of landmarks[:, 0] (the eye with the smaller x)
  double eye_right[2];    // output position of landmarks[:, 1]
  float scale;            // value = gray * scale + bias
  float bias;
};

// Integer crop square (in frame pixels, may extend outside the frame) for one (x, y, w, h) box.
struct CropSquare {
  int64_t x0, y0, side;
};

// Square crop for a finite box with w, h > 0. side = max(1, round(max(w, h) * margin)); the origin
// is rounded to whole pixels and clamped so that far-outside boxes stay within int64 range.
CropSquare box_crop(const double* box, const FramingParams& fr, const FrameView& frame);

// Source pixels per output pixel of the eye-landmark similarity warp (eyes = landmarks[0..1]).
double warp_scale(const double* landmarks, const FramingParams& fr);

// Box mode: resampling of output index u along one axis of a square crop of `side` pixels (one
// table serves both axes) with integer weights: output u = sum_t w[t] * crop[start + t] /
// axis_total(side), t < axis_span(side). Exact fractional-overlap area weights when side >= 48 (as
// cv2.INTER_AREA; in units of 1/48 pixel, total = side), bilinear with half-pixel centres when
// smaller (as cv2.INTER_LINEAR; units of 1/96, total = 96). Weights past the last tap are 0.
int axis_span(int64_t side);
int64_t axis_total(int64_t side);

// Writes the axis_span(side) weights of output u to w and returns start. Shared by the CPU and
// GPU kernels.
int32_t axis_taps(int64_t side, int u, int32_t* w);

// Landmark mode: geometry of the eye-aligning warp of one face, shared by the CPU and GPU
// kernels. Output (u, v) -> frame (a*u - b*v + tx, b*u + a*v + ty) (slid up to the frame when it
// lies entirely beside it: same output, small numbers). The frame is box-filtered by fct on a
// block grid at (ox, oy) of iw x ih blocks and each output pixel averages ns x ns bilinear taps
// at block coordinates x = fa*u' + float(-gb*v' + gtx), y = fb*u' + float(ga*v' + gty) with
// u' = u + offs[i], v' = v + offs[j], clamped to [0, xhi] x [0, yhi]; the sum is scaled by inv.
struct WarpGeometry {
  double a, b, tx, ty;
  int64_t fct;
  int ns;
  int64_t ox, oy, iw, ih;
  double ga, gb, gtx, gty;
  float fa, fb, xhi, yhi, inv;
  float offs[kMaxSupersample];
};

WarpGeometry warp_geometry(const FrameView& frame, const double* landmarks,
                           const FramingParams& fr);

// Writes n crops of kOutPixels floats each to out (C-contiguous (n, 1, 48, 48)).
// boxes: n*4 doubles (x, y, w, h); landmarks: n*10 doubles (5 points x, y) or nullptr.
// Inputs must already be validated (finite, w/h > 0, side <= cap). Thread-safe, no Python calls.
void preprocess_faces(const FrameView& frame, const double* boxes, const double* landmarks,
                      int64_t n, const FramingParams& fr, float* out);

}  // namespace ferfast
