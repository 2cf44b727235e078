// Host-side planning of the GPU preprocessing: crop squares, weight tables and warps per face,
// computed exactly as the CPU kernel does (preprocess.cpp), plus a host emulation of the kernel.
#pragma once

#include <cstdint>
#include <vector>

#include "../preprocess.hpp"
#include "pixel.hpp"

namespace ferfast {
namespace gpu {

struct Plan {
  std::vector<FaceJob> jobs;
  std::vector<int32_t> axis;  // box faces: 48 first crop indices each (preprocess.hpp axis_taps)
  std::vector<int32_t> lin;   // box faces: 48 * span integer weights each
  int64_t row_lo = 0, row_hi = -1;  // frame rows any face reads (inclusive; empty when lo > hi)
};

// Plans n faces (inputs already validated as for ferfast::preprocess_faces).
Plan plan_faces(const FrameView& frame, const double* boxes, const double* landmarks, int64_t n,
                const FramingParams& fr);

// Byte range [lo, hi] (offsets from frame.data, may be negative) covering rows row_lo..row_hi.
void row_span_bytes(const FrameView& frame, int64_t row_lo, int64_t row_hi, int64_t* lo,
                    int64_t* hi);

// Runs the kernel's per-pixel code on the CPU (test reference for the CUDA path).
void emulate(const FrameView& frame, const Plan& plan, const FramingParams& fr, float* out);

}  // namespace gpu
}  // namespace ferfast
