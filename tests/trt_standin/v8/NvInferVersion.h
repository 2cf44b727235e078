// Stand-in for TensorRT 8.6's NvInferVersion.h (JetPack 5): hand-written, not NVIDIA's file.
// Version macros as in NVIDIA/TensorRT include/NvInferVersion.h (release 8.6).
#ifndef NV_INFER_VERSION_H
#define NV_INFER_VERSION_H

#define NV_TENSORRT_MAJOR 8
#define NV_TENSORRT_MINOR 6
#define NV_TENSORRT_PATCH 2
#define NV_TENSORRT_BUILD 3

#endif  // NV_INFER_VERSION_H
