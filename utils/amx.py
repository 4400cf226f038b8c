"""AMX (Intel Advanced Matrix Extensions) for processes that only run exported models.

    from dmrnet.utils.amx import enable_amx_for_inference
    enable_amx_for_inference()      # first thing: before any MXNet operator runs

MXNet 1.9.1's oneDNN 2.4 has AMX kernels (bfloat16 and INT8 convolutions as
`brgconv:avx512_core_amx`) but leaves them off unless two things hold before its first
primitive:
- DNNL_MAX_CPU_ISA=AVX512_CORE_AMX, which oneDNN reads once and keeps;
- on Linux 5.16+ the process has asked the kernel for the AMX tile state
  (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)). oneDNN 2.4 predates that interface and
  does not ask, so an AMX instruction without it kills the process with SIGILL (status 132).

Inference only, never training: oneDNN 2.4's AMX training kernels ran a DMRNet-56 step 2-3x
slower and trained it to 86% test error (issue 29; docs/PERFORMANCE.md). The training loop
therefore never calls this, and warns when the environment turns AMX on (`training_warning`).
"""
import ctypes
import logging
import os
import platform
import sys

log = logging.getLogger('dmrnet.amx')

ISA_VARIABLE = 'DNNL_MAX_CPU_ISA'
AMX_ISA = 'AVX512_CORE_AMX'
AMX_FLAGS = ('amx_tile', 'amx_bf16', 'amx_int8')
# linux/arch/x86/include/uapi/asm/prctl.h and asm/fpu/types.h (x86-64)
SYS_ARCH_PRCTL = 158
ARCH_GET_XCOMP_PERM = 0x1022
ARCH_REQ_XCOMP_PERM = 0x1023
XFEATURE_XTILEDATA = 18


def _cpu_flags():
    from dmrnet.train.precision import cpu_flags  # no MXNet import behind it
    return cpu_flags()


def no_amx_reason(flags=None):
    """None when this CPU reports AMX tiles with bfloat16 and INT8, else why not."""
    if platform.system() != 'Linux' or platform.machine() not in ('x86_64', 'AMD64'):
        return 'AMX needs Linux on x86-64 (this is %s %s)' % (platform.system(),
                                                             platform.machine())
    flags = _cpu_flags() if flags is None else flags
    missing = [f for f in AMX_FLAGS if f not in flags]
    if missing:
        return 'this CPU has no AMX (its flags lack %s)' % ', '.join(missing)
    return None


def _arch_prctl(code, arg):
    """(return value, errno) of the raw system call; glibc has no wrapper for these codes."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if code == ARCH_GET_XCOMP_PERM:
        mask = ctypes.c_ulong(0)
        ret = libc.syscall(ctypes.c_long(SYS_ARCH_PRCTL), ctypes.c_long(code),
                           ctypes.byref(mask))
        return (mask.value if ret == 0 else ret), ctypes.get_errno()
    ret = libc.syscall(ctypes.c_long(SYS_ARCH_PRCTL), ctypes.c_long(code), ctypes.c_ulong(arg))
    return ret, ctypes.get_errno()


def tile_permission():
    """Whether this process may use the AMX tile state (the kernel says so), False where it
    cannot be asked (older kernels, other systems)."""
    if no_amx_reason(flags=set(AMX_FLAGS)) is not None:  # only the platform check
        return False
    mask, err = _arch_prctl(ARCH_GET_XCOMP_PERM, 0)
    return not err and mask >= 0 and bool(mask & (1 << XFEATURE_XTILEDATA))


def _request_tile_permission():
    """None when the kernel granted the tile state (or had already), else its refusal."""
    ret, err = _arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
    if ret != 0:
        return 'the kernel refused the AMX tile state (arch_prctl: %s)' % os.strerror(err)
    return None


def _operators_ran():
    from dmrnet.utils.runtime import operators_have_run
    return operators_have_run()


def enable_amx_for_inference():
    """Let oneDNN run its AMX kernels in this process: ask the kernel for the tile state and
    set DNNL_MAX_CPU_ISA=AVX512_CORE_AMX (a value the user chose is kept). Call it before the
    first MXNet operator, in a process that runs exported models and never trains. Returns
    True when AMX is on; where the CPU has no AMX or the kernel refuses, nothing changes
    (one debug line says why) and it returns False.

    oneDNN reads its ISA limit once, at its first primitive; this call creates that primitive
    (a 1x1 convolution of 8 channels) and then takes the variable out of the environment
    again, so that a process started from this one (which may train, and has no tile
    permission: that is not inherited across exec) does not inherit AMX."""
    global _enabled
    if _enabled:
        return True
    reason = no_amx_reason()
    if reason is None:
        reason = _request_tile_permission()
    if reason is not None:
        log.debug('AMX stays off: %s', reason)
        return False
    if _operators_ran():
        # oneDNN may have read its ISA limit already; the tile permission alone changes nothing.
        log.warning('AMX not enabled: MXNet operators already ran in this process, so oneDNN '
                    'has fixed its instruction set; call enable_amx_for_inference() first')
        return False
    chosen = os.environ.get(ISA_VARIABLE)
    os.environ[ISA_VARIABLE] = chosen or AMX_ISA
    try:
        _first_primitive()
    finally:
        if chosen is None:
            del os.environ[ISA_VARIABLE]
    _enabled = (chosen or AMX_ISA).upper().startswith(AMX_ISA)
    log.debug('AMX %s: tile state granted, oneDNN ISA limit %s', 'on' if _enabled else 'off',
              chosen or AMX_ISA)
    return _enabled


_enabled = False


def _first_primitive():
    """Run one oneDNN convolution, which makes oneDNN read its ISA limit and keep it."""
    import dmrnet.utils  # noqa: F401  (threads before mxnet is imported)
    import mxnet as mx
    x = mx.nd.ones((1, 8, 4, 4))
    mx.nd.Convolution(x, mx.nd.ones((8, 8, 1, 1)), kernel=(1, 1), num_filter=8,
                      no_bias=True).wait_to_read()


def enabled():
    """Whether enable_amx_for_inference() turned AMX on in this process."""
    return _enabled


def amx_allowed():
    """Whether the environment lets oneDNN pick AMX kernels (its ISA limit names AMX)."""
    return os.environ.get(ISA_VARIABLE, '').upper().startswith(AMX_ISA)


def training_warning():
    """For a training process: a warning line when oneDNN 2.4 may train with AMX here (slow,
    to wrong weights, and without the tile permission a SIGILL), else None."""
    if _enabled:
        return ('this process enabled AMX for inference (dmrnet.utils.amx), and oneDNN 2.4 '
                'trains with it slower and to wrong weights: train in a fresh process')
    if not amx_allowed() or no_amx_reason() is not None:
        return None
    return ('%s=%s lets MXNet 1.9.1\'s oneDNN 2.4 train with AMX, which trains slower and to '
            'wrong weights%s; unset it for training (AMX is for exported models: '
            'dmrnet.utils.amx)' % (ISA_VARIABLE, os.environ[ISA_VARIABLE],
                                   '' if tile_permission() else
                                   ', and this process has no AMX tile permission, so the '
                                   'first AMX instruction stops it (SIGILL)'))


if __name__ == '__main__':  # python -m dmrnet.utils.amx: what this machine allows
    logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format='%(message)s')
    print('enabled' if enable_amx_for_inference() else 'not enabled')
