// Host planning for the CUDA preprocessing kernel (see plan.hpp). The crop squares, weight tables
// and warp geometry come from the CPU kernel's own functions (box_crop, axis_taps,
// warp_geometry in preprocess.cpp), so the kernel reproduces the CPU path by construction.
#include "plan.hpp"

#include <algorithm>
#include <cmath>

namespace ferfast {
namespace gpu {
namespace {

// The box-mode weight table of one face (preprocess.cpp's axis_taps, one for both axes): 48
// first crop indices and 48 * span integer weights. Returns span.
int build_table(int64_t side, std::vector<int32_t>& axis, std::vector<int32_t>& lin_all) {
  const int span = axis_span(side);
  const size_t l0 = lin_all.size();
  lin_all.resize(l0 + static_cast<size_t>(kSide) * span, 0);
  for (int u = 0; u < kSide; ++u) {
    axis.push_back(axis_taps(side, u, lin_all.data() + l0 + static_cast<size_t>(u) * span));
  }
  return span;
}

// The landmark-mode job of one face (preprocess.cpp's warp_geometry).
void plan_warp(const FrameView& f, const double* lm, const FramingParams& fr, FaceJob& job) {
  const WarpGeometry g = warp_geometry(f, lm, fr);
  job.fct = g.fct;
  job.ns = g.ns;
  job.ox = g.ox;
  job.oy = g.oy;
  job.iw = g.iw;
  job.ih = g.ih;
  job.ga = g.ga;
  job.gb = g.gb;
  job.gtx = g.gtx;
  job.gty = g.gty;
  job.xhi = g.xhi;
  job.yhi = g.yhi;
  job.inv = g.inv;
  job.fa = g.fa;
  job.fb = g.fb;
  for (int i = 0; i < g.ns; ++i) job.offs[i] = g.offs[i];
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
      const double total = static_cast<double>(axis_total(sq.side));
      job.kf = static_cast<float>(static_cast<double>(fr.scale) / (total * total));
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
