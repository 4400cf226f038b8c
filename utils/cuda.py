"""The GPU build of MXNet (mxnet-cu112 1.9.1) on a machine that has only an NVIDIA driver.

    import dmrnet.utils            # (any dmrnet package) before mxnet: preload() runs
    from dmrnet.utils import cuda
    cuda.gpu_problem([0, 1])       # None, or one line saying why these GPUs cannot run it

Loading. libmxnet.so of mxnet-cu112 links ten CUDA libraries by soname. Nine come from NVIDIA's
runtime wheels (requirements-gpu.txt), which put them in site-packages/nvidia/<part>/lib, a
folder the dynamic linker does not search; the tenth, libcuda.so.1, is the driver's. `preload()`
loads the nine by path, in dependency order and RTLD_GLOBAL, before mxnet is imported: the
linker matches libmxnet.so's DT_NEEDED entries against the sonames of objects already loaded
before it searches any folder, so no LD_LIBRARY_PATH and no re-exec is needed. A library the
linker finds by itself (a system CUDA or cuDNN on LD_LIBRARY_PATH or in ld.so.cache) is taken
from there and the wheel's copy is not loaded. With the CPU build nothing is loaded.

Checking. `gpu_problem(ids)` asks the driver through ctypes, without importing mxnet (the
training scripts and the Makefile call it before data is packed or a run folder made): the
installed build, the driver's presence and CUDA version, the visible GPUs and their compute
capabilities against the kernels the wheel carries (`WHEEL_SASS`, read off its libmxnet.so by
`fatbin_archs`; `make test-gpu-build` checks the constant against the installed binary).
Its command line is dmrnet.utils.gpus.
"""
import ctypes
import glob
import importlib.util
import logging
import mmap
import os
import struct
import sys

from dmrnet.utils import runtime

log = logging.getLogger('dmrnet.cuda')

# (wheel folder under site-packages/nvidia, soname): what libmxnet.so of mxnet-cu112 1.9.1 links
# from CUDA, dependencies first (cuBLAS needs cuBLASLt; cuSOLVER needs both). cuDNN's own
# sub-libraries (libcudnn_cnn_infer.so.8, ...) are opened by libcudnn.so.8 when first used and
# found through its RUNPATH ($ORIGIN).
WHEEL_LIBRARIES = (
    ('cuda_runtime', 'libcudart.so.11.0'),
    ('cuda_nvrtc', 'libnvrtc.so.11.2'),
    ('nvtx', 'libnvToolsExt.so.1'),
    ('cublas', 'libcublasLt.so.11'),
    ('cublas', 'libcublas.so.11'),
    ('cufft', 'libcufft.so.10'),
    ('curand', 'libcurand.so.10'),
    ('cusolver', 'libcusolver.so.11'),
    ('cudnn', 'libcudnn.so.8'),
    ('nccl', 'libnccl.so.2'),
)
DRIVER_LIBRARY = 'libcuda.so.1'

# Compute capabilities with machine code (SASS) in mxnet-cu112 1.9.1's libmxnet.so; it carries no
# PTX, so the driver cannot compile its kernels for any other GPU. SASS for sm_XY runs on every
# X.Z with Z >= Y: 5.0-5.3, 6.x, 7.x, 8.x are covered; 3.x (Kepler) and 9.0 and later are not.
WHEEL_SASS = ((5, 0), (6, 0), (7, 0), (8, 0), (8, 6))
# MXNet 1.9.1 compiles its fused GPU kernels at run time with NVRTC to PTX (nvrtcGetPTX), which
# the driver must then compile: PTX from the pinned NVRTC 11.8 needs a driver for CUDA 11.8.
MIN_DRIVER_CUDA = 11080
MIN_DRIVER_RELEASE = '520'
CPU_BUILD, GPU_BUILD, BOTH_BUILDS = 'cpu', 'gpu', 'cpu+gpu'
CUDA_ERROR_NO_DEVICE = 100
# What prepare() loaded in this process: {soname: path, or 'system'}
LOADED = {}


class DriverInfo:
    """What the NVIDIA driver says: version (1000 * major + 10 * minor, e.g. 12040), devices,
    and error (why it could not be asked, or None)."""

    def __init__(self, version=None, devices=(), error=None, init_status=None):
        self.version, self.devices, self.error = version, list(devices), error
        self.init_status = init_status

    def __repr__(self):
        return 'DriverInfo(version=%r, devices=%r, error=%r)' % (self.version, self.devices,
                                                                   self.error)


class Device:
    def __init__(self, index, name, capability):
        self.index, self.name, self.capability = index, name, tuple(capability)

    def __repr__(self):
        return 'Device(%d, %r, %d.%d)' % ((self.index, self.name) + self.capability)


def _site_folders():
    """The folders that hold the `mxnet` and `nvidia` packages, without importing either."""
    spec = importlib.util.find_spec('mxnet')
    return [os.path.dirname(p) for p in (spec.submodule_search_locations or [])] if spec else []


def mxnet_build():
    """'gpu' (an mxnet-cu* distribution), 'cpu' (mxnet), 'cpu+gpu' (both: they overwrite each
    other's files) or None (no MXNet), from the installed package metadata."""
    gpu = cpu = False
    for folder in _site_folders():
        gpu = gpu or bool(glob.glob(os.path.join(folder, 'mxnet_cu*.dist-info')))
        cpu = cpu or bool(glob.glob(os.path.join(folder, 'mxnet-*.dist-info')))
    if gpu and cpu:
        return BOTH_BUILDS
    return GPU_BUILD if gpu else CPU_BUILD if cpu else None


def wheel_library_folder(part):
    """site-packages/nvidia/<part>/lib of the installed runtime wheel, or None."""
    spec = importlib.util.find_spec('nvidia')
    for root in (spec.submodule_search_locations or []) if spec else []:
        folder = os.path.join(root, part, 'lib')
        if os.path.isdir(folder):
            return folder
    return None


def preload():
    """Make the GPU build's CUDA libraries loadable (see the module docstring); returns
    {soname: where it was loaded from}. Nothing happens with the CPU build, or once mxnet is
    imported (its libraries are resolved by then)."""
    if 'mxnet' in sys.modules or mxnet_build() not in (GPU_BUILD, BOTH_BUILDS):
        return {}
    loaded = {}
    for part, soname in WHEEL_LIBRARIES:
        try:
            ctypes.CDLL(soname, mode=ctypes.RTLD_GLOBAL)
            loaded[soname] = 'system'
            continue
        except OSError:
            pass
        folder = wheel_library_folder(part)
        path = os.path.join(folder, soname) if folder else None
        if path is None or not os.path.exists(path):
            # left for MXNet's own import error, which names the library; make venv BUILD=gpu
            # installs the wheel
            log.debug('%s: neither on the system nor from nvidia-%s', soname, part)
            continue
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        loaded[soname] = path
    return loaded


def prepare():
    """What importing dmrnet does before mxnet: preload(), and where the GPU build cannot even
    be imported for want of a driver, one line with the fix instead of MXNet's OSError (a
    dmrnet script exits 2 with it; other code gets it as an ImportError: runtime.startup_error)."""
    loaded = preload()
    LOADED.update(loaded)
    if not loaded or _load_driver()[0] is not None:
        return loaded
    message = ('the installed MXNet is the GPU build (mxnet-cu112), which needs the NVIDIA '
               'driver (%s), and this machine has none: install the driver (release %s or '
               'newer), or the CPU build with make venv BUILD=cpu'
               % (DRIVER_LIBRARY, MIN_DRIVER_RELEASE))
    runtime.startup_error(message)


def _load_driver(library=DRIVER_LIBRARY):
    try:
        return ctypes.CDLL(library), None
    except OSError as e:
        return None, str(e)


def driver_info(library=DRIVER_LIBRARY):
    """Ask the driver (libcuda.so.1, through ctypes) for its CUDA version and the visible GPUs
    (CUDA_VISIBLE_DEVICES applies). Does not import mxnet."""
    cuda, error = _load_driver(library)
    if cuda is None:
        return DriverInfo(error='%s cannot be loaded (%s)' % (library, error))
    version = ctypes.c_int(0)
    if cuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return DriverInfo(error='cuDriverGetVersion failed')
    status = cuda.cuInit(0)
    if status == CUDA_ERROR_NO_DEVICE:
        return DriverInfo(version.value, [], init_status=status)
    if status != 0:
        return DriverInfo(version.value, [], error='cuInit failed: %s' % _error_text(cuda, status),
                          init_status=status)
    count = ctypes.c_int(0)
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return DriverInfo(version.value, [], error='cuDeviceGetCount failed', init_status=status)
    devices = []
    for index in range(count.value):
        handle, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        name = ctypes.create_string_buffer(256)
        if cuda.cuDeviceGet(ctypes.byref(handle), index) != 0:
            continue
        cuda.cuDeviceGetName(name, len(name), handle)
        # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR
        cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, handle)
        cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, handle)
        devices.append(Device(index, name.value.decode(errors='replace'),
                              (major.value, minor.value)))
    return DriverInfo(version.value, devices, init_status=status)


def _error_text(cuda, status):
    text = ctypes.c_char_p()
    if cuda.cuGetErrorString(status, ctypes.byref(text)) == 0 and text.value:
        return '%s (%d)' % (text.value.decode(errors='replace'), status)
    return 'CUDA error %d' % status


def has_kernels_for(capability):
    """Whether the wheel's machine code runs on a GPU of this compute capability."""
    return any(sass[0] == capability[0] and sass[1] <= capability[1] for sass in WHEEL_SASS)


def _cuda_text(version):
    return '%d.%d' % (version // 1000, version % 1000 // 10)


def _ids_text(ids):
    return ','.join(map(str, ids))


def gpu_problem(ids, build=None, library=DRIVER_LIBRARY):
    """None when GPUs `ids` can run the installed MXNet, else one line with the cause and the
    fix. `build` and `library` are for tests (default: the installed build, the driver)."""
    ids = list(ids)
    if not ids:
        return None
    asked = '--gpus %s' % _ids_text(ids)
    build = mxnet_build() if build is None else build
    if build is None:
        return '%s: MXNet is not installed: run make venv' % asked
    if build == CPU_BUILD:
        return ('%s: the installed MXNet is the CPU build (mxnet), which cannot use GPUs: on a '
                'machine with an NVIDIA driver run make venv BUILD=gpu (or pip install -e .[gpu]), '
                'or leave --gpus empty to run on the CPU' % asked)
    if build == BOTH_BUILDS:
        return ('%s: both mxnet and mxnet-cu112 are installed and overwrite each other\'s files: '
                'pip uninstall -y mxnet mxnet-cu112, then make venv BUILD=gpu' % asked)
    info = driver_info(library)
    if info.version is None:
        return ('%s: no NVIDIA driver: %s; install the driver (release %s or newer), or leave '
                '--gpus empty to run on the CPU' % (asked, info.error, MIN_DRIVER_RELEASE))
    if info.version < MIN_DRIVER_CUDA:
        return ('%s: the NVIDIA driver supports CUDA %s; the GPU build needs CUDA %s or newer '
                '(the pinned NVRTC emits code the driver compiles): update the driver to release '
                '%s or newer' % (asked, _cuda_text(info.version), _cuda_text(MIN_DRIVER_CUDA),
                                 MIN_DRIVER_RELEASE))
    if info.error:
        return '%s: the NVIDIA driver failed: %s; check nvidia-smi' % (asked, info.error)
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    if not info.devices:
        return ('%s: no GPU visible (the driver reports none%s): check nvidia-smi%s, or leave '
                '--gpus empty to run on the CPU'
                % (asked, '; CUDA_VISIBLE_DEVICES=%r' % visible if visible is not None else '',
                   ' and CUDA_VISIBLE_DEVICES' if visible is not None else ''))
    missing = [i for i in ids if i >= len(info.devices)]
    if missing:
        count = len(info.devices)
        return ('%s: GPU %s not present (%d GPU%s visible: %s)'
                % (asked, _ids_text(missing), count, '' if count == 1 else 's',
                   '0' if count == 1 else '0-%d' % (count - 1)))
    for device in (info.devices[i] for i in ids):
        if not has_kernels_for(device.capability):
            return ('%s: GPU %d (%s) has compute capability %d.%d, for which mxnet-cu112 1.9.1 '
                    'has no kernels (it has %s, no PTX): use GPUs of capability 5.0-8.9, or an '
                    'MXNet built from source for this GPU'
                    % ((asked, device.index, device.name) + device.capability +
                       (', '.join('sm_%d%d' % sass for sass in WHEEL_SASS),)))
    return None


def fatbin_archs(library_path):
    """{('sass' | 'ptx', 'sm_XY'): count} of the CUDA fat binaries in a shared library's
    .nv_fatbin section (NVIDIA's fat binary container: a 16-byte header with magic 0xBA55ED50,
    then entries whose header holds the kind (1 PTX, 2 ELF/SASS) and, at byte 28, the SM)."""
    archs = {}
    with open(library_path, 'rb') as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if mm[:4] != b'\x7fELF' or mm[4] != 2:
            raise ValueError('%s is not a 64-bit ELF file' % library_path)
        shoff, = struct.unpack_from('<Q', mm, 0x28)
        entsize, count, names_index = struct.unpack_from('<HHH', mm, 0x3a)
        headers = [struct.unpack_from('<IIQQQQIIQQ', mm, shoff + i * entsize)
                   for i in range(count)]
        names_offset = headers[names_index][4]

        def name(offset):
            start = names_offset + offset
            return mm[start:mm.find(b'\0', start)].decode()
        sections = [(h[4], h[5]) for h in headers if name(h[0]) == '.nv_fatbin']
        for start, size in sections:
            position, end = start, start + size
            while position + 16 <= end:
                magic, _, header_size, fat_size = struct.unpack_from('<IHHQ', mm, position)
                if magic != 0xBA55ED50:
                    position += 8  # containers are 8-byte aligned
                    continue
                entry, stop = position + header_size, position + header_size + fat_size
                while entry < stop:
                    kind, _, entry_header, payload = struct.unpack_from('<HHIQ', mm, entry)
                    sm, = struct.unpack_from('<I', mm, entry + 28)
                    key = ({1: 'ptx', 2: 'sass'}.get(kind, str(kind)), 'sm_%d' % sm)
                    archs[key] = archs.get(key, 0) + 1
                    entry += entry_header + payload
                position = stop
    return archs
