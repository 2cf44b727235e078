// pybind11 registration of the CUDA preprocessing (called from module.cpp when built with CUDA):
//   preprocess_cuda(...)          same arguments and result as ferfast._core.preprocess, on the GPU
//   cuda_device_count()           number of CUDA devices (0 without GPU / driver)
//   _preprocess_cuda_emulated(...) the kernel's per-pixel code run on the CPU (test reference)
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>

#include "contract.hpp"
#include "plan.hpp"
#include "preprocess_cuda.hpp"
#include "../validate.hpp"

namespace py = pybind11;

namespace ferfast {
namespace {

using Pair = std::pair<double, double>;

py::array preprocess_cuda(const py::object& frame, const py::object& boxes, const py::object& out,
                          const py::object& landmarks, double margin, double offset_x,
                          double offset_y, Pair eye_left, Pair eye_right, double scale,
                          double bias) {
  const FramingParams fr =
      pyval::framing(margin, offset_x, offset_y, eye_left, eye_right, scale, bias);
  const pyval::Inputs in(frame, boxes, landmarks, fr);
  pyval::Output res(out, in.n);
  if (in.n == 0) return res.rows(0);
  if (gpu::device_count() == 0) {
    throw std::runtime_error(
        "preprocess_cuda: no CUDA GPU available (ferfast was built with CUDA, but this machine "
        "has no usable NVIDIA GPU/driver); use ferfast.preprocess on the CPU");
  }
  {
    py::gil_scoped_release release;
    gpu::preprocess_to_host(in.frame, in.boxes.data(), in.lp, in.n, in.fr, res.data);
  }
  return res.rows(in.n);
}

py::array preprocess_emulated(const py::object& frame, const py::object& boxes,
                              const py::object& out, const py::object& landmarks, double margin,
                              double offset_x, double offset_y, Pair eye_left, Pair eye_right,
                              double scale, double bias) {
  const FramingParams fr =
      pyval::framing(margin, offset_x, offset_y, eye_left, eye_right, scale, bias);
  const pyval::Inputs in(frame, boxes, landmarks, fr);
  pyval::Output res(out, in.n);
  {
    py::gil_scoped_release release;
    const gpu::Plan plan = gpu::plan_faces(in.frame, in.boxes.data(), in.lp, in.n, in.fr);
    gpu::emulate(in.frame, plan, in.fr, res.data);
  }
  return res.rows(in.n);
}

}  // namespace

void register_cuda(py::module_& m) {
  for (const auto& entry :
       {std::make_pair("preprocess_cuda", &preprocess_cuda),
        std::make_pair("_preprocess_cuda_emulated", &preprocess_emulated)}) {
    const bool real = entry.second == &preprocess_cuda;
    namespace d = defaults;
    m.def(entry.first, entry.second, py::arg("frame"), py::arg("boxes"),
          py::arg("out") = py::none(), py::arg("landmarks") = py::none(),
          py::arg("margin") = d::kMargin, py::arg("offset_x") = d::kOffsetX,
          py::arg("offset_y") = d::kOffsetY,
          py::arg("eye_left") = std::make_pair(d::kEyeLeftX, d::kEyeLeftY),
          py::arg("eye_right") = std::make_pair(d::kEyeRightX, d::kEyeRightY),
          py::arg("scale") = d::kScale, py::arg("bias") = d::kBias,
          real ? "GPU version of preprocess(): same arguments, same float32 (N, 1, 48, 48) "
                 "result.\nRaises RuntimeError when no CUDA GPU is present. On integrated GPUs "
                 "(Jetson) the frame\nis read through mapped host memory without a copy."
               : "Test hook: the CUDA kernel's per-pixel code run on the CPU (same arguments).");
  }
  m.def("cuda_uses_mapped_frames", &gpu::uses_mapped_frames,
        "True when preprocess_cuda reads frames through mapped host memory (zero copy, e.g.\n"
        "Jetson); False when it copies them to the device. RuntimeError without a GPU.");
  m.def("cuda_device_count", &gpu::device_count,
        "Number of CUDA devices visible to ferfast (0 without GPU or driver).");
  m.attr("WITH_CUDA") = true;
}

}  // namespace ferfast
