/* A stand-in for the NVIDIA driver's libcuda.so.1, compiled by the tests on machines without
 * one (gcc -shared -fPIC -Wl,-soname,libcuda.so.1).
 *
 * It defines the driver functions that libmxnet.so of mxnet-cu112 1.9.1 links (so the GPU build
 * can be imported and run its CPU paths) and those dmrnet.utils.cuda asks through ctypes. What
 * it reports comes from the environment, so that every answer of a real driver can be tried:
 *   STANDIN_CUDA_VERSION   cuDriverGetVersion, e.g. 12040 (default) or 11020
 *   STANDIN_CUDA_DEVICES   how many GPUs cuInit finds (default 0: CUDA_ERROR_NO_DEVICE)
 *   STANDIN_CUDA_CC        their compute capability as major*10+minor (default 86)
 * With devices > 0 only the ctypes queries are meaningful: nothing can run on them.
 */
#include <stdio.h>
#include <stdlib.h>

typedef int CUresult;
typedef int CUdevice;
enum { CUDA_SUCCESS = 0, CUDA_ERROR_INVALID_VALUE = 1, CUDA_ERROR_NO_DEVICE = 100,
       CUDA_ERROR_INVALID_DEVICE = 101 };

static int setting(const char *name, int fallback) {
    const char *text = getenv(name);
    return text && *text ? atoi(text) : fallback;
}

static int devices(void) { return setting("STANDIN_CUDA_DEVICES", 0); }

CUresult cuInit(unsigned int flags) {
    (void)flags;
    return devices() > 0 ? CUDA_SUCCESS : CUDA_ERROR_NO_DEVICE;
}

CUresult cuDriverGetVersion(int *version) {
    *version = setting("STANDIN_CUDA_VERSION", 12040);
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count) {
    *count = devices();
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *device, int ordinal) {
    if (ordinal < 0 || ordinal >= devices()) return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int length, CUdevice device) {
    snprintf(name, (size_t)length, "Stand-in GPU %d", device);
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *value, int attribute, CUdevice device) {
    int cc = setting("STANDIN_CUDA_CC", 86);
    (void)device;
    if (attribute == 75) { *value = cc / 10; return CUDA_SUCCESS; }  /* capability major */
    if (attribute == 76) { *value = cc % 10; return CUDA_SUCCESS; }  /* capability minor */
    return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult error, const char **text) {
    *text = error == CUDA_ERROR_NO_DEVICE ? "no CUDA-capable device is detected (stand-in driver)"
                                          : "stand-in driver error";
    return CUDA_SUCCESS;
}

/* The rest of libmxnet.so's driver imports: reached only with a device, which there is not. */
CUresult cuDevicePrimaryCtxRetain(void **context, CUdevice device) {
    (void)context; (void)device; return CUDA_ERROR_NO_DEVICE;
}
CUresult cuGraphKernelNodeGetParams(void *node, void *params) {
    (void)node; (void)params; return CUDA_ERROR_NO_DEVICE;
}
CUresult cuGraphNodeGetType(void *node, int *type) {
    (void)node; (void)type; return CUDA_ERROR_NO_DEVICE;
}
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shared, void *stream, void **params, void **extra) {
    (void)f; (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)shared;
    (void)stream; (void)params; (void)extra; return CUDA_ERROR_NO_DEVICE;
}
CUresult cuModuleGetFunction(void **function, void *module, const char *name) {
    (void)function; (void)module; (void)name; return CUDA_ERROR_NO_DEVICE;
}
CUresult cuModuleLoadData(void **module, const void *image) {
    (void)module; (void)image; return CUDA_ERROR_NO_DEVICE;
}
CUresult cuModuleLoadDataEx(void **module, const void *image, unsigned n, void *options,
                            void **values) {
    (void)module; (void)image; (void)n; (void)options; (void)values; return CUDA_ERROR_NO_DEVICE;
}
CUresult cuModuleUnload(void *module) { (void)module; return CUDA_ERROR_NO_DEVICE; }
