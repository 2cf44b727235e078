// GPU preprocessing: the same crop / gray / resize / scale+bias as ferfast::preprocess_faces, on a
// CUDA device. No CUDA types here, so plain C++ translation units (bindings, TensorRT runtime) can
// include it. Every function throws std::runtime_error on a CUDA error or when no GPU is present.
#pragma once

#include <cstdint>
#include <string>

#include "../preprocess.hpp"

namespace ferfast {
namespace gpu {

// Number of CUDA devices (0 when there is no GPU or no driver; never throws).
int device_count();

// Name of the current CUDA device, e.g. "Orin" or "NVIDIA H100 80GB HBM3".
std::string device_name();

// True when the frame is read through mapped host memory (integrated GPU that supports
// cudaHostRegister, e.g. Jetson Xavier / Orin) instead of being copied to the device.
bool uses_mapped_frames();

// frame (host memory, any strides) -> out_host (n * 48 * 48 floats, host). Returns when done.
void preprocess_to_host(const FrameView& frame, const double* boxes, const double* landmarks,
                        int64_t n, const FramingParams& fr, float* out_host);

// frame (host memory) -> out_dev (n * 48 * 48 floats, device memory), enqueued on `stream`
// (a cudaStream_t; nullptr = the module's own stream). Returns when the kernel has finished.
void preprocess_to_device(const FrameView& frame, const double* boxes, const double* landmarks,
                          int64_t n, const FramingParams& fr, float* out_dev, void* stream);

}  // namespace gpu
}  // namespace ferfast
