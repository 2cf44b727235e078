#include "engine_file.hpp"

#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace ferfast {
namespace trt {
namespace {
constexpr char kMagic[] = "FERFTRT1";
constexpr size_t kMagicLen = 8;
constexpr uint32_t kMaxHeader = 1u << 16;
}  // namespace

std::string EngineFile::get(const std::string& key, const std::string& fallback) const {
  const auto it = header.find(key);
  return it == header.end() ? fallback : it->second;
}

std::map<std::string, std::string> parse_header(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos)
      throw std::invalid_argument("malformed engine header line '" + line + "'");
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  for (const char* key : {"trt_version", "gpu_name", "compute_capability", "precision", "emotions"}) {
    if (out.find(key) == out.end())
      throw std::invalid_argument(std::string("engine header lacks ") + key);
  }
  return out;
}

EngineFile read_engine_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("engine file not found or unreadable: " + path);
  std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() < kMagicLen + 4 || std::memcmp(data.data(), kMagic, kMagicLen) != 0)
    throw std::invalid_argument(
        "not a ferfast engine file (missing FERFTRT1 header): " + path +
        "; build it with `ferfast build-engine MODEL.onnx -o OUT.engine`");
  const auto* b = reinterpret_cast<const unsigned char*>(data.data() + kMagicLen);
  const uint32_t n = static_cast<uint32_t>(b[0]) | (static_cast<uint32_t>(b[1]) << 8) |
                     (static_cast<uint32_t>(b[2]) << 16) | (static_cast<uint32_t>(b[3]) << 24);
  const size_t start = kMagicLen + 4;
  if (n > kMaxHeader || start + n >= data.size())
    throw std::invalid_argument("truncated or corrupt ferfast engine file: " + path);
  EngineFile f;
  f.header = parse_header(std::string(data.data() + start, n));
  f.plan.assign(data.begin() + static_cast<std::ptrdiff_t>(start + n), data.end());
  return f;
}

std::string version_key(const std::string& version) {
  size_t dots = 0, i = 0;
  for (; i < version.size(); ++i) {
    if (version[i] == '.' && ++dots == 3) break;
  }
  return version.substr(0, i);
}

std::string decode_lib_version(int32_t v) {
  // TensorRT 8.x: major*1000 + minor*100 + patch; 10.x and later: major*10000 + minor*100 + patch.
  int32_t major, minor, patch;
  if (v >= 100000) {
    major = v / 10000;
    minor = (v / 100) % 100;
    patch = v % 100;
  } else {
    major = v / 1000;
    minor = (v / 100) % 10;
    patch = v % 100;
  }
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

std::string mismatch(const EngineFile& f, const std::string& path, const std::string& trt_version,
                     const std::string& gpu_name, const std::string& compute_capability) {
  std::string problems;
  const std::string built = f.get("trt_version");
  if (version_key(built) != version_key(trt_version))
    problems += "built with TensorRT " + built + ", this runtime is TensorRT " + trt_version;
  const std::string gpu = f.get("gpu_name"), cc = f.get("compute_capability");
  if (gpu != gpu_name || cc != compute_capability) {
    if (!problems.empty()) problems += "; ";
    problems += "built for GPU '" + gpu + "' (sm " + cc + "), this GPU is '" + gpu_name +
                "' (sm " + compute_capability + ")";
  }
  if (problems.empty()) return problems;
  return "engine " + path + " does not match this machine: " + problems +
         ". TensorRT engines are specific to the TensorRT version and GPU: rebuild it here with "
         "`ferfast build-engine MODEL.onnx -o OUT.engine`.";
}

}  // namespace trt
}  // namespace ferfast
