// ferfast engine file: b"FERFTRT1" | uint32 LE header length | "key=value\n" header | TRT plan.
// Written by src/ferfast/tensorrt/header.py; this is the C++ reader (no TensorRT needed).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ferfast {
namespace trt {

struct EngineFile {
  std::map<std::string, std::string> header;
  std::vector<char> plan;
  std::string get(const std::string& key, const std::string& fallback = "") const;
};

// Reads and splits an engine file; throws std::invalid_argument (not a ferfast engine / corrupt)
// or std::runtime_error (cannot open).
EngineFile read_engine_file(const std::string& path);

// Parses the header block alone (exposed for tests).
std::map<std::string, std::string> parse_header(const std::string& text);

// "major.minor.patch" of a TensorRT version string or getInferLibVersion() number.
std::string version_key(const std::string& version);
std::string decode_lib_version(int32_t v);  // 8601 -> "8.6.1", 100130 -> "10.13.0"

// Empty when compatible, else a message naming both TensorRT versions / GPUs (as header.py).
std::string mismatch(const EngineFile& f, const std::string& path, const std::string& trt_version,
                     const std::string& gpu_name, const std::string& compute_capability);

}  // namespace trt
}  // namespace ferfast
