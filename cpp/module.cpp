// pybind11 bindings for ferfast._core: input validation at the Python boundary (validate.hpp,
// shared with the GPU entry points), then the kernel runs with the GIL released. Bad input
// raises TypeError (wrong type / dtype) or ValueError (wrong shape / values), never crashes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <utility>

#include "contract.hpp"
#include "preprocess.hpp"
#include "validate.hpp"

// ---- optional GPU parts (cpp/cuda, cpp/trt), compiled in by CMake when found -----------------
#ifdef FERFAST_WITH_CUDA
namespace ferfast { void register_cuda(pybind11::module_& m); }
#endif
#ifdef FERFAST_WITH_TENSORRT
namespace ferfast { void register_trt(pybind11::module_& m); }
#endif

namespace py = pybind11;

namespace {

py::array preprocess(const py::object& frame_obj, const py::object& boxes_obj,
                     const py::object& out_obj, const py::object& landmarks_obj, double margin,
                     double offset_x, double offset_y, std::pair<double, double> eye_left,
                     std::pair<double, double> eye_right, double scale, double bias) {
  namespace pyval = ferfast::pyval;
  const ferfast::FramingParams fr =
      pyval::framing(margin, offset_x, offset_y, eye_left, eye_right, scale, bias);
  const pyval::Inputs in(frame_obj, boxes_obj, landmarks_obj, fr);
  pyval::Output out(out_obj, in.n);
  if (in.n > 0) {
    py::gil_scoped_release release;
    ferfast::preprocess_faces(in.frame, in.boxes.data(), in.lp, in.n, in.fr, out.data);
  }
  return out.rows(in.n);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "ferfast native kernels (zero-copy face preprocessing)";
  m.attr("OUT_SIDE") = ferfast::kOutSide;
  m.attr("MAX_SIDE_FACTOR") = ferfast::kMaxSideFactor;
  namespace d = ferfast::defaults;
  m.def("preprocess", &preprocess, py::arg("frame"), py::arg("boxes"), py::arg("out") = py::none(),
        py::arg("landmarks") = py::none(), py::arg("margin") = d::kMargin,
        py::arg("offset_x") = d::kOffsetX, py::arg("offset_y") = d::kOffsetY,
        py::arg("eye_left") = std::make_pair(d::kEyeLeftX, d::kEyeLeftY),
        py::arg("eye_right") = std::make_pair(d::kEyeRightX, d::kEyeRightY),
        py::arg("scale") = d::kScale, py::arg("bias") = d::kBias,
        R"doc(Crop, gray-convert and resize faces to float32 (N, 1, 48, 48).

frame: uint8 (H, W) / (H, W, 3) BGR / (H, W, 4) BGRA, any strides, read in place.
boxes: (N, 4) x, y, w, h. out: optional writable C-contiguous float32 (M >= N, 1, 48, 48);
the result is then a view of out[:N]. landmarks: optional (N, 5, 2) YuNet points; when given,
a similarity warp puts landmarks[:, 0] at eye_left and landmarks[:, 1] at eye_right.
Values are gray * scale + bias. The defaults are ferfast.framing.FRAMING (YuNet framing).)doc");
  // ---- optional GPU parts: preprocess_cuda / cuda_device_count, TrtRuntime ----
#ifdef FERFAST_WITH_CUDA
  ferfast::register_cuda(m);
#else
  m.attr("WITH_CUDA") = false;
#endif
#ifdef FERFAST_WITH_TENSORRT
  ferfast::register_trt(m);
#else
  m.attr("WITH_TENSORRT") = false;
#endif
}
