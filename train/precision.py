"""Mixed precision (--amp): float16 on GPUs, bfloat16 on CPUs that compute it natively.

Both keep float32 master weights (MXNet's AMP casts inside the graph; the parameters stay
float32). float16's narrow exponent needs dynamic loss scaling; bfloat16 has float32's exponent
range and trains without it.
"""
BF16_FLAGS = ('avx512_bf16', 'amx_bf16')


def cpu_flags(path='/proc/cpuinfo'):
    """The feature flags the kernel reports for this CPU (empty where it cannot be read)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def amp_dtype(contexts):
    return 'float16' if any(c.device_type == 'gpu' for c in contexts) else 'bfloat16'


def has_bfloat16(flags=None):
    """Whether this CPU computes bfloat16 natively: oneDNN (MXNet 1.9.1's 2.4) has no bfloat16
    convolution without it ('could not create a primitive descriptor iterator')."""
    flags = cpu_flags() if flags is None else flags
    return bool(set(BF16_FLAGS) & flags)


def no_bfloat16_reason(flags=None):
    """None on a CPU with native bfloat16, else why not, for a one-line error."""
    if has_bfloat16(flags):
        return None
    return ('this CPU does not compute bfloat16 natively (its flags have none of %s; a '
            'virtual machine may hide them)' % ', '.join(BF16_FLAGS))


def check_amp(contexts, flags=None):
    """None when --amp can run on `contexts`, else the one-line reason."""
    if amp_dtype(contexts) == 'float16' or has_bfloat16(flags):
        return None
    return ('--amp on a CPU trains in bfloat16, which this CPU does not compute natively '
            '(its flags have none of %s): drop --amp, or train on GPUs (float16)'
            % ', '.join(BF16_FLAGS))


def needs_loss_scaling(dtype):
    return dtype == 'float16'


def init_amp(dtype):
    """Switch MXNet's operators to mixed precision for the whole process (before the model is
    built); AMP logs what it does."""
    from mxnet.contrib import amp
    amp.init(target_dtype=dtype)
