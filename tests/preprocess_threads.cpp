// Test harness (tests/test_preprocess_threads.py), built with -fsanitize=thread: several callers
// run preprocess_faces at once (so some share the helper pool and some run alone, box and landmark
// mode), and every result must equal the first caller's. Prints "<calls> <mismatches>".
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "preprocess.hpp"

using namespace ferfast;

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 50;
  const int64_t h = 480, w = 640, c = 3;
  std::mt19937 rng(5);
  std::vector<uint8_t> img(static_cast<size_t>(h * w * c));
  for (auto& p : img) p = static_cast<uint8_t>(rng() % 256);
  const FrameView f{img.data(), h, w, c, w * c, c, 1};
  const FramingParams fr{1.1, 0.0, 0.05, {16.0, 20.0}, {31.0, 20.0}, 1.0f / 255.0f, 0.0f};
  const int n = 6;
  std::vector<double> boxes, lms(n * 10, 0.0);
  for (int i = 0; i < n; ++i) {
    const double x = 20 + 90 * i, y = 40 + 30 * i, s = 120 + 20 * i;
    boxes.insert(boxes.end(), {x, y, s, s});
    lms[i * 10] = x + 0.3 * s, lms[i * 10 + 1] = y + 0.4 * s;
    lms[i * 10 + 2] = x + 0.7 * s, lms[i * 10 + 3] = y + 0.42 * s;
  }
  const size_t size = static_cast<size_t>(n) * kOutPixels;
  std::vector<float> ref_box(size), ref_lm(size);
  preprocess_faces(f, boxes.data(), nullptr, n, fr, ref_box.data());
  preprocess_faces(f, boxes.data(), lms.data(), n, fr, ref_lm.data());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&, t] {
      std::vector<float> out(size);
      for (int k = 0; k < calls; ++k) {
        const bool lm = (k + t) % 3 == 0;
        preprocess_faces(f, boxes.data(), lm ? lms.data() : nullptr, n, fr, out.data());
        if (out != (lm ? ref_lm : ref_box)) ++mismatches;
      }
    });
  }
  for (auto& th : callers) th.join();
  std::printf("%d %d\n", 3 * calls, mismatches.load());
  return 0;
}
