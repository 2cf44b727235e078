// Python-boundary validation shared by every preprocess entry point: ferfast._core.preprocess
// (module.cpp), preprocess_cuda / _preprocess_cuda_emulated (cuda/bindings.cpp) and
// TrtRuntime.run_frame (trt/runtime.cpp). One set of checks and messages: bad input raises
// TypeError (wrong type / dtype) or ValueError (wrong shape / values), never crashes.
// Header-only.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "preprocess.hpp"

namespace ferfast {
namespace pyval {

namespace py = pybind11;

// RAII Py_buffer (read in place, any strides); movable, not copyable.
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept : view_(other.view_), held_(other.held_) { other.held_ = false; }
  Buffer& operator=(Buffer&&) = delete;
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

[[noreturn]] inline void value_error(const std::string& msg) { throw py::value_error(msg); }
[[noreturn]] inline void type_error(const std::string& msg) { throw py::type_error(msg); }

inline std::string type_name(const py::handle& obj) {
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

// "uint8"-style name for error messages: the numpy dtype when there is one, else the format.
inline std::string dtype_name(const py::handle& obj, const Py_buffer* view) {
  if (py::hasattr(obj, "dtype")) return py::str(obj.attr("dtype")).cast<std::string>();
  if (view != nullptr && view->format != nullptr)
    return std::string("format '") + view->format + "'";
  return type_name(obj);
}

// Buffer format char with byte-order prefixes stripped ("<f" -> 'f'); 0 when not a single item.
inline char format_char(const Py_buffer& v) {
  const char* f = v.format != nullptr ? v.format : "B";
  while (*f == '@' || *f == '=' || *f == '<' || *f == '>' || *f == '!') ++f;
  return (f[0] != 0 && f[1] == 0) ? f[0] : 0;
}

inline std::string shape_str(const py::ssize_t* shape, int ndim) {
  std::ostringstream os;
  os << "(";
  for (int i = 0; i < ndim; ++i) os << (i ? ", " : "") << shape[i];
  if (ndim == 1) os << ",";
  os << ")";
  return os.str();
}

inline std::string shape_str(const py::array& a) {
  return shape_str(a.shape(), static_cast<int>(a.ndim()));
}

// Framing parameters -> FramingParams (finite, margin > 0, distinct eye targets).
inline FramingParams framing(double margin, double offset_x, double offset_y,
                             std::pair<double, double> eye_left,
                             std::pair<double, double> eye_right, double scale, double bias) {
  for (double p : {margin, offset_x, offset_y, eye_left.first, eye_left.second, eye_right.first,
                   eye_right.second, scale, bias}) {
    if (!std::isfinite(p)) value_error("framing parameters must be finite");
  }
  if (margin <= 0) value_error("margin must be > 0, got " + std::to_string(margin));
  if (eye_left == eye_right) value_error("eye_left and eye_right must differ");
  FramingParams fr{};
  fr.margin = margin;
  fr.offset_x = offset_x;
  fr.offset_y = offset_y;
  fr.eye_left[0] = eye_left.first;
  fr.eye_left[1] = eye_left.second;
  fr.eye_right[0] = eye_right.first;
  fr.eye_right[1] = eye_right.second;
  fr.scale = static_cast<float>(scale);
  fr.bias = static_cast<float>(bias);
  return fr;
}

// uint8 (H, W) / (H, W, 3) / (H, W, 4) buffer with any strides, read in place through buf.
inline FrameView frame_view(const py::object& frame, Buffer& buf) {
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
  FrameView f{};
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
  if (f.h <= 0 || f.w <= 0)
    value_error("frame is empty (shape " + shape_str(v.shape, v.ndim) + ")");
  return f;
}

// Real-valued numeric array -> C-contiguous float64 copy (boxes and landmarks are tiny).
inline py::array_t<double> real_array(const py::object& obj, const char* name,
                                      const char* shape_hint) {
  const std::string expect = std::string(name) + " must be a float array of shape " + shape_hint;
  if (obj.is_none()) type_error(expect + ", got None");
  py::array arr;
  try {
    arr = py::array::ensure(obj);
  } catch (const py::error_already_set&) {
    arr = py::array();
  }
  if (!arr) type_error(expect + ", got " + type_name(obj));
  const char kind = arr.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    type_error(std::string(name) + " must be float32 or float64, got dtype " +
               py::str(arr.dtype()).cast<std::string>());
  return py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(arr);
}

inline void check_finite(const double* p, int64_t count, int64_t n, const char* name) {
  for (int64_t i = 0; i < n * count; ++i) {
    if (!std::isfinite(p[i]))
      value_error(std::string(name) + "[" + std::to_string(i / count) + "] contains NaN or inf");
  }
}

// Validated frame, boxes (N, 4) and optional landmarks (N, 5, 2); keeps their memory alive.
struct Inputs {
  Buffer frame_buf;
  FrameView frame{};
  py::array_t<double> boxes;
  py::array_t<double> landmarks;
  const double* lp = nullptr;  // landmarks data, nullptr without landmarks
  int64_t n = 0;
  FramingParams fr{};

  Inputs(const py::object& frame_obj, const py::object& boxes_obj,
         const py::object& landmarks_obj, const FramingParams& framing)
      : fr(framing) {
    frame = frame_view(frame_obj, frame_buf);
    const int64_t max_side = kMaxSideFactor * std::max(frame.h, frame.w);

    boxes = real_array(boxes_obj, "boxes", "(N, 4)");
    if (boxes.ndim() != 2 || boxes.shape(1) != 4)
      value_error("boxes must have shape (N, 4) (x, y, w, h), got " + shape_str(boxes));
    n = boxes.shape(0);
    const double* bp = boxes.data();
    check_finite(bp, 4, n, "boxes");
    for (int64_t i = 0; i < n; ++i) {
      const double w = bp[i * 4 + 2], h = bp[i * 4 + 3];
      if (!(w > 0) || !(h > 0))
        value_error("boxes[" + std::to_string(i) + "] has non-positive width or height (w=" +
                    std::to_string(w) + ", h=" + std::to_string(h) + ")");
      // A box that does not overlap the frame would give a crop of replicated edge pixels and a
      // confident-looking emotion for nothing; partly outside boxes stay valid (edge replication).
      const double x = bp[i * 4], y = bp[i * 4 + 1];
      if (x >= static_cast<double>(frame.w) || y >= static_cast<double>(frame.h) || x + w <= 0 ||
          y + h <= 0) {
        std::ostringstream os;
        os.precision(10);
        os << "boxes[" << i << "] (x=" << x << ", y=" << y << ", w=" << w << ", h=" << h
           << ") lies entirely outside the frame (width " << frame.w << ", height " << frame.h
           << ")";
        value_error(os.str());
      }
      const double side = std::max(w, h) * fr.margin;
      if (side > static_cast<double>(max_side))
        value_error("boxes[" + std::to_string(i) + "] crop side " + std::to_string(side) +
                    " exceeds the limit of " + std::to_string(kMaxSideFactor) +
                    "x the frame's larger side (" + std::to_string(max_side) + ")");
    }

    if (landmarks_obj.is_none()) return;
    landmarks = real_array(landmarks_obj, "landmarks", "(N, 5, 2)");
    if (landmarks.ndim() != 3 || landmarks.shape(0) != n || landmarks.shape(1) != 5 ||
        landmarks.shape(2) != 2)
      value_error("landmarks must have shape (N, 5, 2) with N = " + std::to_string(n) +
                  " boxes, got " + shape_str(landmarks));
    lp = landmarks.data();
    check_finite(lp, 10, n, "landmarks");
    const double max_scale = static_cast<double>(max_side) / kOutSide;
    for (int64_t i = 0; i < n; ++i) {
      if (warp_scale(lp + i * 10, fr) > max_scale)
        value_error("landmarks[" + std::to_string(i) + "] eye distance is too large for the frame");
    }
  }
};

// The output buffer: the caller's writable C-contiguous float32 (M >= n, 1, 48, 48) `out`, or a
// new (n, 1, 48, 48) array when `out` is None.
struct Output {
  Buffer buf;
  py::object base;  // the array the result views
  float* data = nullptr;
  bool fresh = false;

  static std::string shape() {
    const std::string side = std::to_string(kOutSide);
    return "(M, 1, " + side + ", " + side + ")";
  }

  Output(const py::object& out_obj, int64_t n) {
    if (out_obj.is_none()) {
      py::array_t<float> a({static_cast<py::ssize_t>(n), py::ssize_t{1}, py::ssize_t{kOutSide},
                            py::ssize_t{kOutSide}});
      data = a.mutable_data();
      base = a;
      fresh = true;
      return;
    }
    if (!PyObject_CheckBuffer(out_obj.ptr()) || !buf.acquire(out_obj.ptr()))
      type_error("out must be a float32 numpy array of shape " + shape() + ", got " +
                 type_name(out_obj));
    const Py_buffer& v = buf.view();
    if (v.itemsize != 4 || format_char(v) != 'f')
      type_error("out must have dtype float32, got " + dtype_name(out_obj, &v));
    if (v.ndim != 4 || v.shape[1] != 1 || v.shape[2] != kOutSide || v.shape[3] != kOutSide)
      value_error("out must have shape " + shape() + ", got " + shape_str(v.shape, v.ndim));
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
    data = static_cast<float*>(v.buf);
    base = out_obj;
  }

  // The result: the new array, or a view of the first n rows of `out` (same memory, keeps it
  // alive).
  py::array rows(int64_t n) const {
    if (fresh) return py::reinterpret_borrow<py::array>(base);
    const py::ssize_t plane = kOutPixels * sizeof(float);
    return py::array(py::dtype::of<float>(),
                     std::vector<py::ssize_t>{static_cast<py::ssize_t>(n), 1, kOutSide, kOutSide},
                     std::vector<py::ssize_t>{plane, plane,
                                              static_cast<py::ssize_t>(kOutSide * sizeof(float)),
                                              static_cast<py::ssize_t>(sizeof(float))},
                     data, base);
  }
};

}  // namespace pyval
}  // namespace ferfast
