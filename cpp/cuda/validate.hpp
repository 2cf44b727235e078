// Python-boundary validation for the GPU entry points (preprocess_cuda, TrtRuntime.run_frame):
// the same checks and messages as ferfast._core.preprocess (module.cpp). Header-only.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "../preprocess.hpp"

namespace ferfast {
namespace pyval {

namespace py = pybind11;

inline std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

inline std::string type_of(const py::handle& obj) {
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

// Validated inputs; the arrays keep the memory alive.
struct Inputs {
  py::array frame_arr;
  FrameView frame{};
  py::array_t<double> boxes;
  py::array_t<double> landmarks;
  const double* lp = nullptr;
  int64_t n = 0;
  FramingParams fr{};
};

inline FramingParams framing(double margin, double offset_x, double offset_y,
                             std::pair<double, double> eye_left,
                             std::pair<double, double> eye_right, double scale, double bias) {
  for (double p : {margin, offset_x, offset_y, eye_left.first, eye_left.second, eye_right.first,
                   eye_right.second, scale, bias}) {
    if (!std::isfinite(p)) throw py::value_error("framing parameters must be finite");
  }
  if (margin <= 0) throw py::value_error("margin must be > 0, got " + std::to_string(margin));
  if (eye_left == eye_right) throw py::value_error("eye_left and eye_right must differ");
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

inline py::array_t<double> real_array(const py::object& obj, const char* name, const char* hint) {
  if (!py::isinstance<py::array>(obj) && !py::isinstance<py::list>(obj) &&
      !py::isinstance<py::tuple>(obj))
    throw py::type_error(std::string(name) + " must be a float array of shape " + hint + ", got " +
                         type_of(obj));
  py::array arr = py::array::ensure(obj);
  if (!arr) throw py::type_error(std::string(name) + " must be a float array of shape " + hint);
  const char kind = arr.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    throw py::type_error(std::string(name) + " must be float32 or float64, got dtype " +
                         py::str(arr.dtype()).cast<std::string>());
  return py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(arr);
}

inline Inputs inputs(const py::object& frame_obj, const py::object& boxes_obj,
                     const py::object& landmarks_obj, const FramingParams& fr) {
  Inputs in;
  in.fr = fr;
  if (!py::isinstance<py::array>(frame_obj))
    throw py::type_error("frame must be a uint8 numpy array (H, W), (H, W, 3) or (H, W, 4), got " +
                         type_of(frame_obj));
  in.frame_arr = py::reinterpret_borrow<py::array>(frame_obj);
  const py::array& a = in.frame_arr;
  if (a.dtype().kind() != 'u' || a.itemsize() != 1)
    throw py::type_error("frame must have dtype uint8, got " +
                         py::str(a.dtype()).cast<std::string>());
  if (a.ndim() != 2 && a.ndim() != 3)
    throw py::value_error("frame must be 2-D (H, W) gray or 3-D (H, W, C) colour, got shape " +
                          shape_of(a));
  FrameView& f = in.frame;
  f.data = static_cast<const uint8_t*>(a.data());
  f.h = a.shape(0);
  f.w = a.shape(1);
  f.c = a.ndim() == 3 ? a.shape(2) : 1;
  f.sy = a.strides(0);
  f.sx = a.strides(1);
  f.sc = a.ndim() == 3 ? a.strides(2) : 1;
  if (f.c != 1 && f.c != 3 && f.c != 4)
    throw py::value_error("frame must have 1, 3 (BGR) or 4 (BGRA) channels, got shape " +
                          shape_of(a));
  if (f.h <= 0 || f.w <= 0) throw py::value_error("frame is empty (shape " + shape_of(a) + ")");
  const int64_t max_side = kMaxSideFactor * std::max(f.h, f.w);

  in.boxes = real_array(boxes_obj, "boxes", "(N, 4)");
  if (in.boxes.ndim() != 2 || in.boxes.shape(1) != 4)
    throw py::value_error("boxes must have shape (N, 4) (x, y, w, h), got " + shape_of(in.boxes));
  in.n = in.boxes.shape(0);
  const double* bp = in.boxes.data();
  for (int64_t i = 0; i < in.n; ++i) {
    for (int j = 0; j < 4; ++j) {
      if (!std::isfinite(bp[i * 4 + j]))
        throw py::value_error("boxes[" + std::to_string(i) + "] contains NaN or inf");
    }
    const double w = bp[i * 4 + 2], h = bp[i * 4 + 3];
    if (!(w > 0) || !(h > 0))
      throw py::value_error("boxes[" + std::to_string(i) + "] has non-positive width or height");
    if (std::max(w, h) * fr.margin > static_cast<double>(max_side))
      throw py::value_error("boxes[" + std::to_string(i) + "] crop side exceeds " +
                            std::to_string(kMaxSideFactor) + "x the frame's larger side");
  }
  if (!landmarks_obj.is_none()) {
    in.landmarks = real_array(landmarks_obj, "landmarks", "(N, 5, 2)");
    const py::array_t<double>& l = in.landmarks;
    if (l.ndim() != 3 || l.shape(0) != in.n || l.shape(1) != 5 || l.shape(2) != 2)
      throw py::value_error("landmarks must have shape (N, 5, 2) with N = " +
                            std::to_string(in.n) + " boxes, got " + shape_of(l));
    in.lp = l.data();
    const double max_scale = static_cast<double>(max_side) / kOutSide;
    for (int64_t i = 0; i < in.n; ++i) {
      for (int j = 0; j < 10; ++j) {
        if (!std::isfinite(in.lp[i * 10 + j]))
          throw py::value_error("landmarks[" + std::to_string(i) + "] contains NaN or inf");
      }
      if (warp_scale(in.lp + i * 10, fr) > max_scale)
        throw py::value_error("landmarks[" + std::to_string(i) +
                              "] eye distance is too large for the frame");
    }
  }
  return in;
}

// out: None -> a new (n, 1, 48, 48) array; else a writable C-contiguous float32 (M >= n, 1, 48, 48).
inline py::array_t<float> output(const py::object& out_obj, int64_t n) {
  if (out_obj.is_none()) {
    return py::array_t<float>({static_cast<py::ssize_t>(n), py::ssize_t{1},
                               py::ssize_t{kOutSide}, py::ssize_t{kOutSide}});
  }
  if (!py::isinstance<py::array>(out_obj))
    throw py::type_error("out must be a float32 numpy array of shape (M, 1, 48, 48), got " +
                         type_of(out_obj));
  py::array a = py::reinterpret_borrow<py::array>(out_obj);
  if (a.dtype().kind() != 'f' || a.itemsize() != 4)
    throw py::type_error("out must have dtype float32, got " +
                         py::str(a.dtype()).cast<std::string>());
  if (a.ndim() != 4 || a.shape(1) != 1 || a.shape(2) != kOutSide || a.shape(3) != kOutSide)
    throw py::value_error("out must have shape (M, 1, 48, 48), got " + shape_of(a));
  if (a.shape(0) < n)
    throw py::value_error("out has room for " + std::to_string(a.shape(0)) + " faces but " +
                          std::to_string(n) + " boxes were given");
  if (!a.writeable()) throw py::value_error("out is read-only");
  if (!(a.flags() & py::array::c_style)) throw py::value_error("out must be C-contiguous");
  return py::reinterpret_borrow<py::array_t<float>>(a);
}

// The first n rows of out as a view sharing its memory.
inline py::array first_rows(const py::array_t<float>& out, int64_t n) {
  if (out.shape(0) == n) return out;
  return out[py::slice(0, static_cast<py::ssize_t>(n), 1)];
}

}  // namespace pyval
}  // namespace ferfast
