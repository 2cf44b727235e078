// Default framing of the pybind11 entry points (preprocess, preprocess_cuda, TrtRuntime.run_frame):
// the values of ferfast.framing.FRAMING (YuNet, measured in docs/framing.md) and the model
// contract's input scale/bias (ferfast.contract). tests/test_contract.py compares the rendered
// signatures with the Python values, so a change on one side fails until the other follows.
#pragma once

namespace ferfast {
namespace defaults {

constexpr double kMargin = 0.966;
constexpr double kOffsetX = 0.0;
constexpr double kOffsetY = 0.016;
constexpr double kEyeLeftX = 14.55;
constexpr double kEyeLeftY = 17.7;
constexpr double kEyeRightX = 32.1;
constexpr double kEyeRightY = 17.7;
constexpr double kScale = 1.0 / 255.0;
constexpr double kBias = 0.0;

}  // namespace defaults
}  // namespace ferfast
