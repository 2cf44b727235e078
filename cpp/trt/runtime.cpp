// C++ TensorRT runtime: ferfast._core.TrtRuntime (compiled when CMake finds TensorRT and CUDA).
//
// Name-based tensor API only (setInputShape / setTensorAddress / enqueueV3, getIOTensorName /
// getTensorIOMode / getProfileShape), so one source builds against TensorRT 8.6 (JetPack 5),
// 10.x (JetPack 6) and 11. Pinned host buffers (cudaHostAlloc), one CUDA stream per runtime,
// one execution context; calls are serialized by a mutex and run with the GIL released.
#include <NvInfer.h>
#include <cuda_runtime.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../preprocess.hpp"
#include "contract.hpp"
#include "engine_file.hpp"

#ifdef FERFAST_WITH_CUDA
#include "../cuda/preprocess_cuda.hpp"
#include "../validate.hpp"
#endif

#if !defined(NV_TENSORRT_MAJOR) || NV_TENSORRT_MAJOR < 8 || \
    (NV_TENSORRT_MAJOR == 8 && NV_TENSORRT_MINOR < 5)
#error "ferfast's TensorRT runtime needs TensorRT >= 8.5 (name-based tensor API)"
#endif

namespace py = pybind11;

namespace ferfast {
namespace trt {
namespace {

constexpr int kFace = kOutPixels;
// The engine input shape for n faces, as messages print it.
std::string input_shape(const std::string& n) {
  const std::string side = std::to_string(kOutSide);
  return "(" + n + ", 1, " + side + ", " + side + ")";
}

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
}

class Logger : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override {
    if (severity <= Severity::kWARNING) std::fprintf(stderr, "[TensorRT] %s\n", msg);
  }
};

Logger& logger() {
  static Logger l;
  return l;
}

// TensorRT objects are released with delete from TensorRT 8.0 on (destroy() is gone in 10).
template <typename T>
struct TrtDelete {
  void operator()(T* p) const { delete p; }
};
template <typename T>
using TrtPtr = std::unique_ptr<T, TrtDelete<T>>;

struct HostFree {
  void operator()(float* p) const {
    if (p != nullptr) cudaFreeHost(p);
  }
};
struct DeviceFree {
  void operator()(float* p) const {
    if (p != nullptr) cudaFree(p);
  }
};

float* pinned_alloc(size_t count) {
  void* p = nullptr;
  check(cudaHostAlloc(&p, count * sizeof(float), cudaHostAllocPortable), "cudaHostAlloc");
  return static_cast<float*>(p);
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t end = s.find(',', pos);
    out.push_back(s.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return out;
}

class TrtRuntime {
 public:
  TrtRuntime(const std::string& path, int device) : path_(path), device_(device) {
    EngineFile file = read_engine_file(path);
    header_ = file.header;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
      cudaGetLastError();
      throw std::runtime_error("TrtRuntime: no CUDA GPU available");
    }
    if (device < 0 || device >= count)
      throw std::invalid_argument("TrtRuntime: CUDA device " + std::to_string(device) +
                                  " requested but " + std::to_string(count) + " present");
    check(cudaSetDevice(device), "cudaSetDevice");
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    gpu_name_ = prop.name;
    const std::string cc = std::to_string(prop.major) + "." + std::to_string(prop.minor);
    trt_version_ = decode_lib_version(getInferLibVersion());
    const std::string problem = mismatch(file, path, trt_version_, gpu_name_, cc);
    if (!problem.empty()) throw std::runtime_error(problem);

    runtime_.reset(nvinfer1::createInferRuntime(logger()));
    if (!runtime_) throw std::runtime_error("TensorRT: createInferRuntime failed");
    engine_.reset(runtime_->deserializeCudaEngine(file.plan.data(), file.plan.size()));
    if (!engine_) throw std::runtime_error("TensorRT could not deserialize the engine in " + path);
    context_.reset(engine_->createExecutionContext());
    if (!context_) throw std::runtime_error("TensorRT: createExecutionContext failed");

    for (int32_t i = 0; i < engine_->getNbIOTensors(); ++i) {
      const char* name = engine_->getIOTensorName(i);
      if (engine_->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT) {
        if (!input_.empty()) throw std::invalid_argument(path + ": engine has several inputs");
        input_ = name;
      } else {
        if (!output_.empty()) throw std::invalid_argument(path + ": engine has several outputs");
        output_ = name;
      }
    }
    if (input_.empty() || output_.empty())
      throw std::invalid_argument(path + ": engine needs one input and one output tensor");
    if (engine_->getTensorDataType(input_.c_str()) != nvinfer1::DataType::kFLOAT ||
        engine_->getTensorDataType(output_.c_str()) != nvinfer1::DataType::kFLOAT)
      throw std::invalid_argument(path + ": engine input/output must be float32");
    const nvinfer1::Dims out_shape = engine_->getTensorShape(output_.c_str());
    classes_ = static_cast<int64_t>(out_shape.d[out_shape.nbDims - 1]);
    const nvinfer1::Dims maxs =
        engine_->getProfileShape(input_.c_str(), 0, nvinfer1::OptProfileSelector::kMAX);
    max_batch_ = static_cast<int64_t>(maxs.d[0]);
    emotions_ = split_commas(file.get("emotions"));
    if (static_cast<int64_t>(emotions_.size()) != classes_)
      throw std::invalid_argument(path + ": engine output has " + std::to_string(classes_) +
                                  " classes but its header lists " +
                                  std::to_string(emotions_.size()) + " emotions");
    // A header without them means the contract's defaults.
    const auto number = [&file](const char* key, double fallback) {
      return file.header.count(key) != 0 ? std::stod(file.get(key)) : fallback;
    };
    input_scale_ = number("input_scale", contract::kScale);
    input_bias_ = number("input_bias", contract::kBias);

    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    float* p = nullptr;
    check(cudaMalloc(reinterpret_cast<void**>(&p), max_batch_ * kFace * sizeof(float)),
          "cudaMalloc");
    d_in_.reset(p);
    check(cudaMalloc(reinterpret_cast<void**>(&p), max_batch_ * classes_ * sizeof(float)),
          "cudaMalloc");
    d_out_.reset(p);
    h_out_.reset(pinned_alloc(static_cast<size_t>(max_batch_ * classes_)));
    if (!context_->setTensorAddress(input_.c_str(), d_in_.get()) ||
        !context_->setTensorAddress(output_.c_str(), d_out_.get()))
      throw std::runtime_error("TensorRT: setTensorAddress failed");
  }

  ~TrtRuntime() {
    context_.reset();
    engine_.reset();
    runtime_.reset();
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  TrtRuntime(const TrtRuntime&) = delete;
  TrtRuntime& operator=(const TrtRuntime&) = delete;

  // host (n, 1, 48, 48) -> host (n, K), n <= max_batch. Thread-safe; no Python calls.
  void run(const float* host_in, int64_t n, float* host_out) {
    std::lock_guard<std::mutex> lock(mu_);
    check(cudaSetDevice(device_), "cudaSetDevice");
    check(cudaMemcpyAsync(d_in_.get(), host_in, n * kFace * sizeof(float),
                          cudaMemcpyHostToDevice, stream_),
          "input upload");
    execute_locked(n, host_out);
  }

#ifdef FERFAST_WITH_CUDA
  // frame + boxes -> probabilities: GPU preprocessing straight into the engine input.
  void run_frame(const FrameView& frame, const double* boxes, const double* landmarks, int64_t n,
                 const FramingParams& fr, float* host_out) {
    std::lock_guard<std::mutex> lock(mu_);
    check(cudaSetDevice(device_), "cudaSetDevice");
    gpu::preprocess_to_device(frame, boxes, landmarks, n, fr, d_in_.get(), stream_);
    execute_locked(n, host_out);
  }
#endif

  int64_t max_batch() const { return max_batch_; }
  int64_t classes() const { return classes_; }
  const std::vector<std::string>& emotions() const { return emotions_; }
  double input_scale() const { return input_scale_; }
  double input_bias() const { return input_bias_; }
  const std::map<std::string, std::string>& header() const { return header_; }
  const std::string& trt_version() const { return trt_version_; }
  const std::string& gpu_name() const { return gpu_name_; }

 private:
  void execute_locked(int64_t n, float* host_out) {
    nvinfer1::Dims dims{};
    dims.nbDims = 4;
    dims.d[0] = static_cast<std::remove_reference_t<decltype(dims.d[0])>>(n);
    dims.d[1] = 1;
    dims.d[2] = kOutSide;
    dims.d[3] = kOutSide;
    if (!context_->setInputShape(input_.c_str(), dims))
      throw std::runtime_error("TensorRT rejected input shape " + input_shape(std::to_string(n)));
    if (!context_->enqueueV3(stream_)) throw std::runtime_error("TensorRT enqueueV3 failed");
    const size_t out_bytes = static_cast<size_t>(n * classes_) * sizeof(float);
    check(cudaMemcpyAsync(h_out_.get(), d_out_.get(), out_bytes, cudaMemcpyDeviceToHost, stream_),
          "output download");
    check(cudaStreamSynchronize(stream_), "TensorRT inference");
    std::memcpy(host_out, h_out_.get(), out_bytes);
  }

  std::string path_;
  int device_;
  std::map<std::string, std::string> header_;
  std::string trt_version_, gpu_name_;
  TrtPtr<nvinfer1::IRuntime> runtime_;
  TrtPtr<nvinfer1::ICudaEngine> engine_;
  TrtPtr<nvinfer1::IExecutionContext> context_;
  std::string input_, output_;
  int64_t classes_ = 0, max_batch_ = 0;
  std::vector<std::string> emotions_;
  double input_scale_ = contract::kScale, input_bias_ = contract::kBias;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<float, DeviceFree> d_in_, d_out_;
  std::unique_ptr<float, HostFree> h_out_;
  std::mutex mu_;
};

py::array_t<float> checked_batch(const py::object& obj, int64_t max_batch) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error("batch must be a float32 numpy array " + input_shape("n"));
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (a.dtype().kind() != 'f' || a.itemsize() != 4)
    throw py::type_error("batch must have dtype float32, got " +
                         py::str(a.dtype()).cast<std::string>());
  if (a.ndim() != 4 || a.shape(1) != 1 || a.shape(2) != kOutSide || a.shape(3) != kOutSide)
    throw py::value_error("batch must have shape " + input_shape("n"));
  if (a.shape(0) > max_batch)
    throw py::value_error("batch of " + std::to_string(a.shape(0)) +
                          " exceeds the engine's max batch " + std::to_string(max_batch));
  return py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
}

}  // namespace
}  // namespace trt

void register_trt(py::module_& m) {
  using trt::TrtRuntime;
  py::class_<TrtRuntime>(m, "TrtRuntime",
                         "TensorRT engine runner (C++ runtime; see ferfast.tensorrt.TensorRTRunner)")
      .def(py::init<const std::string&, int>(), py::arg("path"), py::arg("device") = 0)
      .def_property_readonly("emotions",
                             [](const TrtRuntime& r) {
                               py::tuple t(r.emotions().size());
                               for (size_t i = 0; i < r.emotions().size(); ++i)
                                 t[i] = py::str(r.emotions()[i]);
                               return t;
                             })
      .def_property_readonly("input_scale", &TrtRuntime::input_scale)
      .def_property_readonly("input_bias", &TrtRuntime::input_bias)
      .def_property_readonly("max_batch", &TrtRuntime::max_batch)
      .def_property_readonly("header", &TrtRuntime::header)
      .def_property_readonly("trt_version", &TrtRuntime::trt_version)
      .def_property_readonly("gpu_name", &TrtRuntime::gpu_name)
      .def(
          "new_input_buffer",
          [](TrtRuntime&, int64_t n) {
            if (n < 1) throw py::value_error("n must be >= 1");
            float* p = trt::pinned_alloc(static_cast<size_t>(n) * trt::kFace);
            py::capsule owner(p, [](void* q) { cudaFreeHost(q); });
            return py::array_t<float>({static_cast<py::ssize_t>(n), py::ssize_t{1},
                                       py::ssize_t{kOutSide}, py::ssize_t{kOutSide}},
                                      p, owner);
          },
          py::arg("n"), "Pinned (page-locked) float32 (n, 1, 48, 48) buffer for preprocess.")
      .def(
          "run",
          [](TrtRuntime& r, const py::object& batch_obj) {
            py::array_t<float> batch = trt::checked_batch(batch_obj, r.max_batch());
            const int64_t n = batch.shape(0);
            py::array_t<float> out({static_cast<py::ssize_t>(n),
                                    static_cast<py::ssize_t>(r.classes())});
            if (n == 0) return out;
            const float* in = batch.data();
            float* o = out.mutable_data();
            {
              py::gil_scoped_release release;
              r.run(in, n, o);
            }
            return out;
          },
          py::arg("batch"), "float32 (n, 1, 48, 48) -> (n, K) probabilities (n <= max_batch).")
#ifdef FERFAST_WITH_CUDA
      .def(
          "run_frame",
          [](TrtRuntime& r, const py::object& frame, const py::object& boxes,
             const py::object& landmarks, double margin, double offset_x, double offset_y,
             std::pair<double, double> eye_left, std::pair<double, double> eye_right) {
            const FramingParams fr = pyval::framing(margin, offset_x, offset_y, eye_left,
                                                    eye_right, r.input_scale(), r.input_bias());
            const pyval::Inputs in(frame, boxes, landmarks, fr);
            if (in.n > r.max_batch())
              throw py::value_error(std::to_string(in.n) + " faces exceed the engine's max batch " +
                                    std::to_string(r.max_batch()));
            py::array_t<float> out({static_cast<py::ssize_t>(in.n),
                                    static_cast<py::ssize_t>(r.classes())});
            if (in.n == 0) return out;
            float* o = out.mutable_data();
            {
              py::gil_scoped_release release;
              r.run_frame(in.frame, in.boxes.data(), in.lp, in.n, in.fr, o);
            }
            return out;
          },
          py::arg("frame"), py::arg("boxes"), py::arg("landmarks") = py::none(),
          py::arg("margin") = defaults::kMargin, py::arg("offset_x") = defaults::kOffsetX,
          py::arg("offset_y") = defaults::kOffsetY,
          py::arg("eye_left") = std::make_pair(defaults::kEyeLeftX, defaults::kEyeLeftY),
          py::arg("eye_right") = std::make_pair(defaults::kEyeRightX, defaults::kEyeRightY),
          "Frame + boxes -> (n, K) probabilities, preprocessing on the GPU into the engine input.")
#endif
      ;
  m.attr("WITH_TENSORRT") = true;
}

}  // namespace ferfast
