// Host planning for the CUDA preprocessing kernel (see plan.hpp). The weight tables and the eye
// similarity are computed with the same code as preprocess.cpp (build_table / eye_similarity /
// crop_warp's region), so the kernel reproduces the CPU path.
#include "plan.hpp"

#include <algorithm>
#include <cmath>

namespace ferfast {
namespace gpu {
namespace {

// Same as preprocess.cpp build_table: area (side >= 48, as cv2.INTER_AREA) or bilinear (side < 48,
// half-pixel centres) weights, as the vertical decomposition (axis) and the dense horizontal
// weights (lin, span per output index). Returns span.
int build_table(int64_t side, std::vector<AxisTap>& axis, std::vector<float>& lin_all) {
  const size_t a0 = axis.size(), l0 = lin_all.size();
  axis.resize(a0 + kSide, AxisTap{});
  AxisTap* ax = axis.data() + a0;
  const double s = static_cast<double>(side) / kSide;
  int span;
  if (side >= kSide) {
    span = static_cast<int>(std::ceil(s)) + 1;
    lin_all.resize(l0 + static_cast<size_t>(kSide) * span, 0.0f);
    float* lin = lin_all.data() + l0;
    for (int u = 0; u < kSide; ++u) {
      const double a = static_cast<double>(u) * side / kSide;
      const double b = static_cast<double>(u + 1) * side / kSide;
      const int64_t ka = static_cast<int64_t>(std::floor(a));
      const int64_t kf0 = static_cast<int64_t>(std::ceil(a));
      const int64_t kf1 = static_cast<int64_t>(std::floor(b));
      ax[u].start = static_cast<int32_t>(ka);
      ax[u].full0 = static_cast<int32_t>(kf0);
      ax[u].full1 = static_cast<int32_t>(kf1);
      ax[u].w_full = static_cast<float>(1.0 / s);
      ax[u].k_a = static_cast<int32_t>(ka);
      ax[u].w_a = kf0 > ka ? static_cast<float>((kf0 - a) / s) : 0.0f;
      ax[u].k_b = static_cast<int32_t>(std::min<int64_t>(kf1, side - 1));
      ax[u].w_b = (kf1 < side && b > kf1) ? static_cast<float>((b - kf1) / s) : 0.0f;
      for (int64_t k = ka; k < std::min<int64_t>(static_cast<int64_t>(std::ceil(b)), side); ++k) {
        const double overlap = std::min<double>(k + 1, b) - std::max<double>(k, a);
        lin[u * span + (k - ka)] = static_cast<float>(std::max(overlap, 0.0) / s);
      }
    }
  } else {
    span = 2;
    lin_all.resize(l0 + static_cast<size_t>(kSide) * span, 0.0f);
    float* lin = lin_all.data() + l0;
    for (int u = 0; u < kSide; ++u) {
      const double src = (u + 0.5) * s - 0.5;
      int64_t k = static_cast<int64_t>(std::floor(src));
      double f = src - static_cast<double>(k);
      if (k < 0) k = 0, f = 0.0;
      if (k >= side - 1) k = side - 1, f = 0.0;
      ax[u].start = ax[u].k_a = static_cast<int32_t>(k);
      ax[u].k_b = static_cast<int32_t>(std::min<int64_t>(k + 1, side - 1));
      ax[u].full0 = ax[u].full1 = 0;
      ax[u].w_a = static_cast<float>(1.0 - f);
      ax[u].w_b = static_cast<float>(f);
      ax[u].w_full = 0.0f;
      lin[u * 2] = ax[u].w_a;
      lin[u * 2 + 1] = ax[u].w_b;
    }
  }
  return span;
}

// Same as preprocess.cpp eye_similarity + crop_warp's set-up (block grid, taps, offsets).
void plan_warp(const FrameView& f, const double* lm, const FramingParams& fr, FaceJob& job) {
  const double dox = fr.eye_right[0] - fr.eye_left[0], doy = fr.eye_right[1] - fr.eye_left[1];
  const double dsx = lm[2] - lm[0], dsy = lm[3] - lm[1];
  const double d2 = dox * dox + doy * doy;
  const double a = (dsx * dox + dsy * doy) / d2;
  const double b = (dsy * dox - dsx * doy) / d2;
  double tx = lm[0] - (a * fr.eye_left[0] - b * fr.eye_left[1]);
  double ty = lm[1] - (b * fr.eye_left[0] + a * fr.eye_left[1]);
  const double scale = std::sqrt(a * a + b * b);
  const int64_t fct =
      static_cast<int64_t>(std::min(256.0, std::max(1.0, std::floor(scale + 1e-9))));
  const int ns = static_cast<int>(std::min<double>(
      kMaxSupersample, std::max(1.0, std::ceil(scale / fct / 1.5 - 1e-6))));
  auto bbox = [&](double& xmin, double& xmax, double& ymin, double& ymax) {
    xmin = ymin = 1e300;
    xmax = ymax = -1e300;
    for (double cu : {-0.5, kSide - 0.5}) {
      for (double cv : {-0.5, kSide - 0.5}) {
        const double x = a * cu - b * cv + tx, y = b * cu + a * cv + ty;
        xmin = std::min(xmin, x), xmax = std::max(xmax, x);
        ymin = std::min(ymin, y), ymax = std::max(ymax, y);
      }
    }
  };
  double xmin, xmax, ymin, ymax;
  bbox(xmin, xmax, ymin, ymax);
  const double fw = static_cast<double>(f.w), fh = static_cast<double>(f.h);
  if (xmin > fw) tx -= xmin - fw;
  if (xmax < -1.0) tx += -1.0 - xmax;
  if (ymin > fh) ty -= ymin - fh;
  if (ymax < -1.0) ty += -1.0 - ymax;
  bbox(xmin, xmax, ymin, ymax);
  const double half = 0.5 * static_cast<double>(fct - 1);
  const double fd = static_cast<double>(fct);
  auto grid_origin = [&](double centre0, double lo) {
    const double o = std::floor(centre0 - half + 0.5);
    return static_cast<int64_t>(o - fd * std::ceil((o - (lo - 2.0)) / fd));
  };
  job.fct = fct;
  job.ns = ns;
  job.ox = grid_origin(tx, xmin);
  job.oy = grid_origin(ty, ymin);
  job.iw = static_cast<int64_t>(std::ceil((xmax + 2.0 - static_cast<double>(job.ox)) / fd)) + 1;
  job.ih = static_cast<int64_t>(std::ceil((ymax + 2.0 - static_cast<double>(job.oy)) / fd)) + 1;
  job.ga = a / fd;
  job.gb = b / fd;
  job.gtx = (tx - static_cast<double>(job.ox) - half) / fd;
  job.gty = (ty - static_cast<double>(job.oy) - half) / fd;
  job.xhi = static_cast<float>(job.iw - 1);
  job.yhi = static_cast<float>(job.ih - 1);
  job.inv = 1.0f / static_cast<float>(ns * ns);
  job.fa = static_cast<float>(job.ga);
  job.fb = static_cast<float>(job.gb);
  for (int i = 0; i < ns; ++i) job.offs[i] = static_cast<float>((i + 0.5) / ns - 0.5);
}

}  // namespace

Plan plan_faces(const FrameView& frame, const double* boxes, const double* landmarks, int64_t n,
                const FramingParams& fr) {
  Plan plan;
  plan.jobs.resize(static_cast<size_t>(n));
  plan.row_lo = frame.h;
  plan.row_hi = -1;
  for (int64_t i = 0; i < n; ++i) {
    FaceJob& job = plan.jobs[static_cast<size_t>(i)];
    job = FaceJob{};
    int64_t lo, hi;
    if (landmarks != nullptr) {
      job.mode = 1;
      plan_warp(frame, landmarks + i * 10, fr, job);
      lo = clamp_i64(job.oy, 0, frame.h - 1);
      hi = clamp_i64(job.oy + job.ih * job.fct - 1, 0, frame.h - 1);
    } else {
      job.mode = 0;
      const CropSquare sq = box_crop(boxes + i * 4, fr, frame);
      job.x0 = sq.x0;
      job.y0 = sq.y0;
      job.side = sq.side;
      job.lin_off = static_cast<int64_t>(plan.lin.size());
      job.axis_off = static_cast<int64_t>(plan.axis.size());
      job.span = build_table(sq.side, plan.axis, plan.lin);
      lo = clamp_i64(sq.y0, 0, frame.h - 1);
      hi = clamp_i64(sq.y0 + sq.side - 1, 0, frame.h - 1);
    }
    plan.row_lo = std::min(plan.row_lo, lo);
    plan.row_hi = std::max(plan.row_hi, hi);
  }
  return plan;
}

void row_span_bytes(const FrameView& f, int64_t row_lo, int64_t row_hi, int64_t* lo, int64_t* hi) {
  int64_t mn = 0, mx = 0;
  bool first = true;
  for (int64_t y : {row_lo, row_hi}) {
    for (int64_t x : {int64_t{0}, f.w - 1}) {
      for (int64_t c : {int64_t{0}, f.c - 1}) {
        const int64_t off = y * f.sy + x * f.sx + c * f.sc;
        mn = first ? off : std::min(mn, off);
        mx = first ? off : std::max(mx, off);
        first = false;
      }
    }
  }
  *lo = mn;
  *hi = mx;
}

void emulate(const FrameView& frame, const Plan& plan, const FramingParams& fr, float* out) {
  const FrameDesc f{frame.data, frame.h, frame.w, frame.c, frame.sy, frame.sx, frame.sc};
  for (size_t i = 0; i < plan.jobs.size(); ++i) {
    for (int v = 0; v < kSide; ++v) {
      for (int u = 0; u < kSide; ++u) {
        out[i * kSide * kSide + v * kSide + u] = face_pixel(
            f, plan.jobs[i], plan.axis.data(), plan.lin.data(), u, v, fr.scale, fr.bias);
      }
    }
  }
}

}  // namespace gpu
}  // namespace ferfast
