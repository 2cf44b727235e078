// Test harness (tests/test_cuda.py): the GPU kernel's per-pixel code (cpp/cuda/pixel.hpp via
// plan.cpp's host emulation) against the CPU kernel (cpp/preprocess.cpp) on random frames, boxes
// and eye landmarks. Prints "<max abs difference> <bit-exact cases> <cases>".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cuda/plan.hpp"
#include "preprocess.hpp"

using namespace ferfast;

int main(int argc, char** argv) {
  const int trials = argc > 1 ? std::atoi(argv[1]) : 300;
  std::mt19937 rng(3);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  double worst = 0;
  int exact = 0;
  for (int trial = 0; trial < trials; ++trial) {
    const int64_t h = 20 + rng() % 400, w = 20 + rng() % 400;
    const int64_t c = trial % 3 == 0 ? 1 : (trial % 3 == 1 ? 3 : 4);
    std::vector<uint8_t> img(static_cast<size_t>(h * w * c));
    for (auto& p : img) p = static_cast<uint8_t>(rng() % 256);
    const FrameView f{img.data(), h, w, c, w * c, c, 1};
    const int n = 1 + static_cast<int>(rng() % 4);
    std::vector<double> boxes(n * 4), lms(n * 10, 0.0);
    for (int i = 0; i < n; ++i) {
      boxes[i * 4] = uni(-50, w);
      boxes[i * 4 + 1] = uni(-50, h);
      boxes[i * 4 + 2] = uni(3, 500);
      boxes[i * 4 + 3] = uni(3, 500);
      const double cx = uni(0, w), cy = uni(0, h), d = uni(5, 80), a = uni(-0.5, 0.5);
      lms[i * 10] = cx;
      lms[i * 10 + 1] = cy;
      lms[i * 10 + 2] = cx + d * std::cos(a);
      lms[i * 10 + 3] = cy + d * std::sin(a);
    }
    const FramingParams fr{uni(0.8, 1.6), uni(-0.2, 0.2), uni(-0.2, 0.2), {15.5, 19.0},
                           {31.5, 19.0},  1.0f / 255.0f,  0.0f};
    const double* lp = trial % 4 == 3 ? lms.data() : nullptr;
    std::vector<float> cpu(n * 2304), emu(n * 2304);
    preprocess_faces(f, boxes.data(), lp, n, fr, cpu.data());
    const gpu::Plan plan = gpu::plan_faces(f, boxes.data(), lp, n, fr);
    gpu::emulate(f, plan, fr, emu.data());
    double d = 0;
    for (size_t i = 0; i < cpu.size(); ++i) d = std::max(d, double(std::fabs(cpu[i] - emu[i])));
    worst = std::max(worst, d);
    exact += d == 0;
  }
  std::printf("%g %d %d\n", worst, exact, trials);
}
