// pybind11 bindings for ferfast._core: input validation at the Python boundary, then the kernel
// runs with the GIL released. Bad input raises TypeError (wrong type / dtype) or ValueError
// (wrong shape / values), never crashes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "preprocess.hpp"

// ---- optional GPU parts (cpp/cuda, cpp/trt), compiled in by CMake when found -----------------
#ifdef FERFAST_WITH_CUDA
namespace ferfast { void register_cuda(pybind11::module_& m); }
#endif
#ifdef FERFAST_WITH_TENSORRT
namespace ferfast { void register_trt(pybind11::module_& m); }
#endif

namespace py = pybind11;

namespace {

// RAII Py_buffer (read in place, any strides).
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (held_) PyBuffer_Release(&view_);
  }
  // Returns false (with the Python error cleared) when obj does not export a strided buffer.
  bool acquire(PyObject* obj) {
    if (PyObject_GetBuffer(obj, &view_, PyBUF_STRIDES | PyBUF_FORMAT) != 0) {
      PyErr_Clear();
      return false;
    }
    held_ = true;
    return true;
  }
  const Py_buffer& view() const { return view_; }

 private:
  Py_buffer view_{};
  bool held_ = false;
};

std::string type_name(const py::handle& obj) {
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

// "uint8"-style name for error messages: the numpy dtype when there is one, else the format.
std::string dtype_name(const py::handle& obj, const Py_buffer* view) {
  if (py::hasattr(obj, "dtype")) return py::str(obj.attr("dtype")).cast<std::string>();
  if (view != nullptr && view->format != nullptr) return std::string("format '") + view->format + "'";
  return type_name(obj);
}

// Buffer format char with byte-order prefixes stripped ("<f" -> 'f'); 0 when not a single item.
char format_char(const Py_buffer& v) {
  const char* f = v.format != nullptr ? v.format : "B";
  while (*f == '@' || *f == '=' || *f == '<' || *f == '>' || *f == '!') ++f;
  return (f[0] != 0 && f[1] == 0) ? f[0] : 0;
}

std::string shape_str(const py::ssize_t* shape, int ndim) {
  std::ostringstream os;
  os << "(";
  for (int i = 0; i < ndim; ++i) os << (i ? ", " : "") << shape[i];
  if (ndim == 1) os << ",";
  os << ")";
  return os.str();
}

[[noreturn]] void value_error(const std::string& msg) { throw py::value_error(msg); }
[[noreturn]] void type_error(const std::string& msg) { throw py::type_error(msg); }

ferfast::FrameView frame_view(const py::object& frame, Buffer& buf) {
  const char* expect = "a uint8 numpy array of shape (H, W), (H, W, 3) BGR or (H, W, 4) BGRA";
  if (frame.is_none()) type_error(std::string("frame must be ") + expect + ", got None");
  if (!PyObject_CheckBuffer(frame.ptr()) || !buf.acquire(frame.ptr()))
    type_error(std::string("frame must be ") + expect + ", got " + type_name(frame));
  const Py_buffer& v = buf.view();
  if (v.itemsize != 1 || format_char(v) != 'B')
    type_error("frame must have dtype uint8, got " + dtype_name(frame, &v));
  if (v.ndim != 2 && v.ndim != 3)
    value_error("frame must be 2-D (H, W) gray or 3-D (H, W, C) colour, got ndim=" +
                std::to_string(v.ndim) + " with shape " + shape_str(v.shape, v.ndim));
  ferfast::FrameView f{};
  f.data = static_cast<const uint8_t*>(v.buf);
  f.h = v.shape[0];
  f.w = v.shape[1];
  f.c = v.ndim == 3 ? v.shape[2] : 1;
  f.sy = v.strides[0];
  f.sx = v.strides[1];
  f.sc = v.ndim == 3 ? v.strides[2] : 1;
  if (f.c != 1 && f.c != 3 && f.c != 4)
    value_error("frame must have 1, 3 (BGR) or 4 (BGRA) channels, got " + std::to_string(f.c) +
                " (shape " + shape_str(v.shape, v.ndim) + ")");
  if (f.h <= 0 || f.w <= 0) value_error("frame is empty (shape " + shape_str(v.shape, v.ndim) + ")");
  return f;
}

// Real-valued numeric array -> C-contiguous float64 copy (boxes and landmarks are tiny).
py::array_t<double> real_array(const py::object& obj, const char* name, const char* shape_hint) {
  if (obj.is_none()) type_error(std::string(name) + " must be a float array of shape " + shape_hint + ", got None");
  py::array arr;
  try {
    arr = py::array::ensure(obj);
  } catch (const py::error_already_set&) {
    arr = py::array();
  }
  if (!arr) type_error(std::string(name) + " must be a float array of shape " + shape_hint + ", got " + type_name(obj));
  const char kind = arr.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    type_error(std::string(name) + " must be float32 or float64, got dtype " +
               py::str(arr.dtype()).cast<std::string>());
  return py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(arr);
}

void check_finite(const double* p, int64_t count, int64_t n, const char* name) {
  for (int64_t i = 0; i < n * count; ++i) {
    if (!std::isfinite(p[i]))
      value_error(std::string(name) + "[" + std::to_string(i / count) + "] contains NaN or inf");
  }
}

py::array preprocess(const py::object& frame_obj, const py::object& boxes_obj,
                     const py::object& out_obj, const py::object& landmarks_obj, double margin,
                     double offset_x, double offset_y, std::pair<double, double> eye_left,
                     std::pair<double, double> eye_right, double scale, double bias) {
  // Framing parameters.
  for (double p : {margin, offset_x, offset_y, eye_left.first, eye_left.second, eye_right.first,
                   eye_right.second, scale, bias}) {
    if (!std::isfinite(p)) value_error("framing parameters must be finite");
  }
  if (margin <= 0) value_error("margin must be > 0, got " + std::to_string(margin));
  if (eye_left == eye_right) value_error("eye_left and eye_right must differ");
  ferfast::FramingParams fr{};
  fr.margin = margin;
  fr.offset_x = offset_x;
  fr.offset_y = offset_y;
  fr.eye_left[0] = eye_left.first;
  fr.eye_left[1] = eye_left.second;
  fr.eye_right[0] = eye_right.first;
  fr.eye_right[1] = eye_right.second;
  fr.scale = static_cast<float>(scale);
  fr.bias = static_cast<float>(bias);

  Buffer frame_buf;
  const ferfast::FrameView f = frame_view(frame_obj, frame_buf);
  const int64_t max_side = ferfast::kMaxSideFactor * std::max(f.h, f.w);

  // Boxes (N, 4): x, y, w, h.
  py::array_t<double> boxes = real_array(boxes_obj, "boxes", "(N, 4)");
  if (boxes.ndim() != 2 || boxes.shape(1) != 4)
    value_error("boxes must have shape (N, 4) (x, y, w, h), got " +
                shape_str(boxes.shape(), static_cast<int>(boxes.ndim())));
  const int64_t n = boxes.shape(0);
  const double* bp = boxes.data();
  check_finite(bp, 4, n, "boxes");
  for (int64_t i = 0; i < n; ++i) {
    const double w = bp[i * 4 + 2], h = bp[i * 4 + 3];
    if (!(w > 0) || !(h > 0))
      value_error("boxes[" + std::to_string(i) + "] has non-positive width or height (w=" +
                  std::to_string(w) + ", h=" + std::to_string(h) + ")");
    const double side = std::max(w, h) * margin;
    if (side > static_cast<double>(max_side))
      value_error("boxes[" + std::to_string(i) + "] crop side " + std::to_string(side) +
                  " exceeds the limit of " + std::to_string(ferfast::kMaxSideFactor) +
                  "x the frame's larger side (" + std::to_string(max_side) + ")");
  }

  // Landmarks (N, 5, 2), optional.
  py::array_t<double> lms;
  const double* lp = nullptr;
  if (!landmarks_obj.is_none()) {
    lms = real_array(landmarks_obj, "landmarks", "(N, 5, 2)");
    if (lms.ndim() != 3 || lms.shape(0) != n || lms.shape(1) != 5 || lms.shape(2) != 2)
      value_error("landmarks must have shape (N, 5, 2) with N = " + std::to_string(n) +
                  " boxes, got " + shape_str(lms.shape(), static_cast<int>(lms.ndim())));
    lp = lms.data();
    check_finite(lp, 10, n, "landmarks");
    const double max_scale = static_cast<double>(max_side) / ferfast::kOutSide;
    for (int64_t i = 0; i < n; ++i) {
      if (ferfast::warp_scale(lp + i * 10, fr) > max_scale)
        value_error("landmarks[" + std::to_string(i) + "] eye distance is too large for the frame");
    }
  }

  // Output: caller's C-contiguous writable float32 (M >= N, 1, 48, 48) buffer, or a new array.
  Buffer out_buf;
  py::object base;
  float* out_ptr = nullptr;
  if (out_obj.is_none()) {
    py::array_t<float> fresh({static_cast<py::ssize_t>(n), py::ssize_t{1},
                              py::ssize_t{ferfast::kOutSide}, py::ssize_t{ferfast::kOutSide}});
    out_ptr = fresh.mutable_data();
    base = fresh;
  } else {
    if (!PyObject_CheckBuffer(out_obj.ptr()) || !out_buf.acquire(out_obj.ptr()))
      type_error("out must be a float32 numpy array of shape (M, 1, 48, 48), got " + type_name(out_obj));
    const Py_buffer& v = out_buf.view();
    if (v.itemsize != 4 || format_char(v) != 'f')
      type_error("out must have dtype float32, got " + dtype_name(out_obj, &v));
    if (v.ndim != 4 || v.shape[1] != 1 || v.shape[2] != ferfast::kOutSide || v.shape[3] != ferfast::kOutSide)
      value_error("out must have shape (M, 1, 48, 48), got " + shape_str(v.shape, v.ndim));
    if (v.shape[0] < n)
      value_error("out has room for " + std::to_string(v.shape[0]) + " faces but " +
                  std::to_string(n) + " boxes were given");
    if (v.readonly) value_error("out is read-only");
    // C-contiguous (strides of length-1 dimensions do not matter).
    py::ssize_t expect = 4;
    for (int d = 3; d >= 0; --d) {
      if (v.shape[d] > 1 && v.strides[d] != expect) value_error("out must be C-contiguous");
      expect *= v.shape[d];
    }
    out_ptr = static_cast<float*>(v.buf);
    base = out_obj;
  }

  if (n > 0) {
    py::gil_scoped_release release;
    ferfast::preprocess_faces(f, bp, lp, n, fr, out_ptr);
  }

  if (out_obj.is_none()) return base;
  // View of the first n rows of `out` (same memory; keeps `out` alive).
  const py::ssize_t plane = ferfast::kOutPixels * sizeof(float);
  return py::array(py::dtype::of<float>(),
                   std::vector<py::ssize_t>{static_cast<py::ssize_t>(n), 1, ferfast::kOutSide, ferfast::kOutSide},
                   std::vector<py::ssize_t>{plane, plane, ferfast::kOutSide * sizeof(float), sizeof(float)},
                   out_ptr, base);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "ferfast native kernels (zero-copy face preprocessing)";
  m.attr("OUT_SIDE") = ferfast::kOutSide;
  m.attr("MAX_SIDE_FACTOR") = ferfast::kMaxSideFactor;
  m.def("preprocess", &preprocess, py::arg("frame"), py::arg("boxes"), py::arg("out") = py::none(),
        py::arg("landmarks") = py::none(), py::arg("margin") = 1.0, py::arg("offset_x") = 0.0,
        py::arg("offset_y") = 0.0, py::arg("eye_left") = std::make_pair(16.0, 20.0),
        py::arg("eye_right") = std::make_pair(31.0, 20.0), py::arg("scale") = 1.0 / 255.0,
        py::arg("bias") = 0.0,
        R"doc(Crop, gray-convert and resize faces to float32 (N, 1, 48, 48).

frame: uint8 (H, W) / (H, W, 3) BGR / (H, W, 4) BGRA, any strides, read in place.
boxes: (N, 4) x, y, w, h. out: optional writable C-contiguous float32 (M >= N, 1, 48, 48);
the result is then a view of out[:N]. landmarks: optional (N, 5, 2) YuNet points; when given,
a similarity warp puts landmarks[:, 0] at eye_left and landmarks[:, 1] at eye_right.
Values are gray * scale + bias. Use ferfast.preprocess for the measured framing defaults.)doc");
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
