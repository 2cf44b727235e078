// CUDA preprocessing kernel (see preprocess_cuda.hpp and pixel.hpp): one thread per output pixel,
// one grid row per face. The frame is read in place through mapped host memory on integrated GPUs
// (Jetson: cudaHostRegister + cudaHostGetDevicePointer, no copy); on discrete GPUs only the rows
// the faces touch are copied to the device. Compiled with --fmad=false (see CMakeLists.txt).
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <string>

#include "plan.hpp"
#include "preprocess_cuda.hpp"

namespace ferfast {
namespace gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kPixels = kSide * kSide;
constexpr int64_t kMaxFacesPerLaunch = 65535;  // gridDim.y limit

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
  }
}

__global__ void preprocess_kernel(FrameDesc f, const FaceJob* jobs, const int32_t* axis,
                                  const int32_t* lin, float scale, float bias, float* out) {
  const int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= kPixels) return;
  const int64_t face = blockIdx.y;
  out[face * kPixels + p] =
      face_pixel(f, jobs[face], axis, lin, p % kSide, p / kSide, scale, bias);
}

// Device allocation that only grows.
struct DeviceBuffer {
  void* ptr = nullptr;
  size_t size = 0;
  void* reserve(size_t bytes) {
    if (bytes > size) {
      if (ptr != nullptr) cudaFree(ptr);
      ptr = nullptr;
      size = 0;
      check(cudaMalloc(&ptr, bytes), "cudaMalloc");
      size = bytes;
    }
    return ptr;
  }
};

// Process-wide state: one stream, buffers reused across calls, guarded by a mutex.
struct State {
  std::mutex mu;
  bool ready = false;
  int device = 0;
  bool mapped = false;  // integrated GPU that can map host memory
  cudaStream_t stream = nullptr;
  DeviceBuffer frame, jobs, axis, lin, out;
};

State& state() {
  static State* s = new State();  // never destroyed: no CUDA calls during interpreter shutdown
  return *s;
}

void ensure_ready(State& s) {
  if (s.ready) {
    check(cudaSetDevice(s.device), "cudaSetDevice");
    return;
  }
  if (device_count() == 0) {
    throw std::runtime_error(
        "no CUDA GPU available for preprocess_cuda (use ferfast.preprocess on the CPU)");
  }
  check(cudaGetDevice(&s.device), "cudaGetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, s.device), "cudaGetDeviceProperties");
  // Zero copy needs an integrated GPU (shared DRAM) that can register host pages (I/O coherent,
  // cudaDevAttrHostRegisterSupported: Xavier, Orin, Thor); otherwise the touched rows are copied.
  int host_register = 0;
  if (cudaDeviceGetAttribute(&host_register, cudaDevAttrHostRegisterSupported, s.device) !=
      cudaSuccess) {
    cudaGetLastError();
    host_register = 0;
  }
  s.mapped = prop.integrated != 0 && prop.canMapHostMemory != 0 && host_register != 0;
  check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  s.ready = true;
}

// Runs the kernel for all faces into out_dev on stream; the caller holds the lock.
void run_locked(State& s, const FrameView& frame, const double* boxes, const double* landmarks,
                int64_t n, const FramingParams& fr, float* out_dev, cudaStream_t stream) {
  const Plan plan = plan_faces(frame, boxes, landmarks, n, fr);
  int64_t lo = 0, hi = 0;
  row_span_bytes(frame, plan.row_lo, plan.row_hi, &lo, &hi);
  const size_t bytes = static_cast<size_t>(hi - lo + 1);
  const uint8_t* host_lo = frame.data + lo;

  // The frame: mapped (zero copy) on integrated GPUs, else the touched rows copied over.
  const uint8_t* dev_lo = nullptr;
  void* registered = nullptr;
  if (s.mapped) {
    void* p = const_cast<uint8_t*>(host_lo);
    if (cudaHostRegister(p, bytes, cudaHostRegisterMapped) == cudaSuccess) {
      void* d = nullptr;
      if (cudaHostGetDevicePointer(&d, p, 0) == cudaSuccess) {
        registered = p;
        dev_lo = static_cast<const uint8_t*>(d);
      } else {
        cudaHostUnregister(p);
      }
    }
    cudaGetLastError();  // a failed registration (e.g. overlapping pages) falls back to a copy
  }
  if (dev_lo == nullptr) {
    void* d = s.frame.reserve(bytes);
    check(cudaMemcpyAsync(d, host_lo, bytes, cudaMemcpyHostToDevice, stream), "frame upload");
    dev_lo = static_cast<const uint8_t*>(d);
  }
  const FrameDesc f{dev_lo - lo, frame.h, frame.w, frame.c, frame.sy, frame.sx, frame.sc};

  const size_t job_bytes = plan.jobs.size() * sizeof(FaceJob);
  const size_t axis_bytes = plan.axis.size() * sizeof(int32_t);
  const size_t lin_bytes = plan.lin.size() * sizeof(int32_t);
  auto* d_jobs = static_cast<FaceJob*>(s.jobs.reserve(job_bytes));
  auto* d_axis = static_cast<int32_t*>(s.axis.reserve(std::max<size_t>(axis_bytes, 64)));
  auto* d_lin = static_cast<int32_t*>(s.lin.reserve(std::max<size_t>(lin_bytes, 64)));
  check(cudaMemcpyAsync(d_jobs, plan.jobs.data(), job_bytes, cudaMemcpyHostToDevice, stream),
        "job upload");
  if (axis_bytes > 0) {
    check(cudaMemcpyAsync(d_axis, plan.axis.data(), axis_bytes, cudaMemcpyHostToDevice, stream),
          "table upload");
    check(cudaMemcpyAsync(d_lin, plan.lin.data(), lin_bytes, cudaMemcpyHostToDevice, stream),
          "table upload");
  }
  for (int64_t first = 0; first < n; first += kMaxFacesPerLaunch) {
    const int64_t count = std::min<int64_t>(kMaxFacesPerLaunch, n - first);
    const dim3 grid((kPixels + kThreads - 1) / kThreads, static_cast<unsigned>(count));
    preprocess_kernel<<<grid, kThreads, 0, stream>>>(f, d_jobs + first, d_axis, d_lin, fr.scale,
                                                     fr.bias, out_dev + first * kPixels);
    check(cudaGetLastError(), "kernel launch");
  }
  // Plan vectors are host-pageable: wait before they (and a mapped frame) go away.
  const cudaError_t err = cudaStreamSynchronize(stream);
  if (registered != nullptr) cudaHostUnregister(registered);
  check(err, "preprocess kernel");
}

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

std::string device_name() {
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
  return prop.name;
}

bool uses_mapped_frames() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  ensure_ready(s);
  return s.mapped;
}

void preprocess_to_host(const FrameView& frame, const double* boxes, const double* landmarks,
                        int64_t n, const FramingParams& fr, float* out_host) {
  if (n <= 0) return;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  ensure_ready(s);
  const size_t out_bytes = static_cast<size_t>(n) * kPixels * sizeof(float);
  auto* d_out = static_cast<float*>(s.out.reserve(out_bytes));
  run_locked(s, frame, boxes, landmarks, n, fr, d_out, s.stream);
  check(cudaMemcpyAsync(out_host, d_out, out_bytes, cudaMemcpyDeviceToHost, s.stream),
        "result download");
  check(cudaStreamSynchronize(s.stream), "result download");
}

void preprocess_to_device(const FrameView& frame, const double* boxes, const double* landmarks,
                          int64_t n, const FramingParams& fr, float* out_dev, void* stream) {
  if (n <= 0) return;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  ensure_ready(s);
  cudaStream_t st = stream != nullptr ? static_cast<cudaStream_t>(stream) : s.stream;
  run_locked(s, frame, boxes, landmarks, n, fr, out_dev, st);
}

}  // namespace gpu
}  // namespace ferfast
