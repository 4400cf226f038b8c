"""Mixed precision (--amp): float16 on GPUs, bfloat16 on CPUs that compute it natively and
where it trains faster than float32.

Both keep float32 master weights (MXNet's AMP casts inside the graph; the parameters stay
float32). float16's narrow exponent needs dynamic loss scaling; bfloat16 has float32's exponent
range and trains without it. On a CPU, plain --amp ('auto') trains in bfloat16 only where a
measurement (train/ampselect.py, cached per CPU model) finds it faster; --amp force always
does. The decision is recorded in the run folder (`precision` in the checkpoints' metadata and
summary.json), and a resumed run keeps it.
"""
import logging
import platform

log = logging.getLogger('dmrnet.train')

BF16_FLAGS = ('avx512_bf16', 'amx_bf16')
AMP_MODES = ('auto', 'force')


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


def cpu_model():
    """The CPU's model name as the kernel reports it (the key of the per-CPU caches)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def amp_mode(amp):
    """None (no --amp), 'auto' or 'force' from TrainConfig.amp (True, from the Python API of
    before the modes, means 'auto')."""
    if amp is True:
        return 'auto'
    return amp or None


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


def decide(mode, contexts, spec, batch_size, recorded=None):
    """The precision a run trains in, as recorded in its folder: dict(amp=mode, dtype=...,
    source=..., images_per_sec=... when measured). `spec`: (name, kwargs, family, full
    kwargs) of the network (train/plan.py's ModelSpec); `batch_size`: per device; `recorded`: the
    `precision` of the checkpoint a run resumes from, which it keeps (a run must not change
    precision half-way, and resume stays bit-exact)."""
    if mode is None:
        if recorded and recorded.get('dtype', 'float32') != 'float32':
            log.warning('resumed without --amp: training on in float32, where the run trained '
                        'in %s so far (give --amp to keep that)', recorded['dtype'])
        return dict(amp=None, dtype='float32', source='no --amp')
    dtype = amp_dtype(contexts)
    if dtype == 'float16':
        log.info('--amp: float16 with dynamic loss scaling (GPUs)')
        return dict(amp=mode, dtype=dtype, source='GPU', loss_scaling=True)
    if mode == 'force':
        return dict(amp=mode, dtype=dtype, source='--amp force')
    if recorded and recorded.get('amp') and recorded.get('dtype') in ('float32', 'bfloat16'):
        log.info('--amp: %s, as the run trained before it was resumed', recorded['dtype'])
        return dict(recorded)
    import subprocess
    from dmrnet.train import ampselect
    name, kwargs, family, full = spec
    try:
        entry = ampselect.choose(name, kwargs, family, full, batch_size)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        log.warning('--amp: training in float32: the comparison with bfloat16 failed (%s); '
                    '--amp force trains in bfloat16 anyway', e)
        return dict(amp=mode, dtype='float32', source='comparison failed')
    figures = entry['images_per_sec']
    chosen = dict(amp=mode, dtype=entry['chosen'], source=entry['source'],
                  images_per_sec=figures, measured=entry.get('date'))
    if entry['chosen'] == 'float32':
        log.warning('--amp: training in float32: bfloat16 trains no faster on this CPU (%.1f '
                    'images/s against %.1f in float32, %s; --amp force trains in bfloat16 '
                    'anyway)', figures['bfloat16'], figures['float32'],
                    'measured now' if entry['source'] == 'measured' else
                    'measured %s, cached in %s' % (entry.get('date'), ampselect.cache_file()))
    else:
        log.info('--amp: bfloat16 (%.1f images/s against %.1f in float32, %s)',
                 figures['bfloat16'], figures['float32'], entry['source'])
    return chosen
