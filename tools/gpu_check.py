"""The first thing to run on a GPU machine: every GPU path of the project for a few batches,
in a few minutes, and a table of what ran, how fast, and what was skipped and why.

    python tools/gpu_check.py [--gpus 0,1] [--only NAME[,NAME]] [--timeout S] [--keep DIR]
                              [--json PATH]
    python -m dmrnet.tools.gpu_check ...            (make gpu-check GPUS=0,1)

The checks (NAME for --only):
    env          the MXNet build and its features, the driver's CUDA version, every GPU's name
                 and compute capability, the cuDNN/NCCL/CUDA libraries that were loaded
    gpu1         a few batches of the digits through train/digits.py on one GPU (images/s from
                 the run's log.jsonl; the loss must be finite)
    gpu2-device  the same on two GPUs with --kv-store device
    gpu2-nccl    the same on two GPUs with --kv-store nccl
    amp          --amp on one GPU: float16 with dynamic loss scaling
    autotune     the same run with MXNET_CUDNN_AUTOTUNE_DEFAULT=1 and =0
    bn-stats     BatchNorm running statistics across two GPUs: the project's averaging
                 (train/distributed.py) on the devices, and the exported statistics of the
                 two-GPU run: finite, and giving the error the run logged
    bench        python -m dmrnet.tools.bench --gpus ID (training step and exported inference)
    export       the one-GPU run's exported model on the CPU and on the GPU: the same predictions
                 for 64 test images, and train/evaluate.py on the CPU gives the run's error
The environment is always checked: the others need what it finds. Every check does its work
in child processes, each with a timeout (--timeout), so that a CUDA crash or hang is reported
as that check's failure and the others still run; the checker itself never imports MXNet or
dmrnet.utils (whose import loads the CUDA libraries). On a machine without a usable GPU every
GPU check is reported skipped, with the reason, within seconds.

Exit status: 0 when no check FAILED (skipped ones are fine), 1 when one did, 2 bad arguments.
"""
import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = 'GPUCHECK '
OK, SKIPPED, FAILED = 'ok', 'skipped', 'FAILED'
DEFAULT_TIMEOUT = 300
# The digits' training split holds 22 batches of 64: a whole epoch but the last batches.
BATCHES = 20
# Images compared between the CPU and the GPU copy of the exported model.
COMPARED_IMAGES = 64
# Softmax outputs of the same float32 model on two devices: cuDNN may compute convolutions in
# TF32 on Ampere and later GPUs (10-bit mantissa), so allow more than float32 rounding.
SOFTMAX_TOLERANCE = 1e-2
BENCH_MODEL, BENCH_BATCH = 'dmrnet14', 32
FEATURES = ('CUDA', 'CUDNN', 'NCCL', 'MKLDNN')
# Libraries whose loaded copy (path and version) the environment row reports.
LIBRARIES = ('libcuda.so', 'libcudart.so', 'libcudnn.so', 'libnccl.so', 'libcublas.so')


class CheckFailed(Exception):
    """A check's work did not do what it must; the message is the table's note."""


@dataclass
class Result:
    name: str
    title: str
    status: str
    figure: str = ''
    note: str = ''
    seconds: float = 0.0
    data: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """What a check function returns when its work succeeded."""
    figure: str
    note: str
    data: dict = field(default_factory=dict)


def say(text):
    print('gpu_check: %s' % text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# Child processes

@dataclass
class Child:
    cmd: list
    returncode: int = None
    stdout: str = ''
    stderr: str = ''
    seconds: float = 0.0
    timeout: float = None
    timed_out: bool = False

    def problem(self):
        """Why the child did not succeed, in one line; None when it did."""
        if self.timed_out:
            return ('timed out after %d s (kernels JIT-compiled for a new GPU can take long: '
                    'try --timeout 1800)' % self.timeout)
        if self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = 'signal %d' % -self.returncode
            return 'crashed (%s)%s' % (name, _tail(self.stderr, ': '))
        if self.returncode:
            return 'exit status %d%s' % (self.returncode, _tail(self.stderr or self.stdout, ': '))
        return None

    def answer(self):
        """The JSON a probe printed after TAG, or None."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(TAG):
                return json.loads(line[len(TAG):])
        return None


def _tail(text, lead=''):
    """The last informative line of a child's output (a script's "prog: error: ..." line, an
    exception's last line)."""
    lines = [line.strip() for line in (text or '').splitlines() if line.strip()]
    if not lines:
        return ''
    line = re.sub(r'^[\w./-]*\.py: error: ', '', lines[-1])
    return lead + (line if len(line) <= 300 else line[:297] + '...')


def run_child(cmd, timeout, cwd, env_updates=None, log_to=None):
    """Run `cmd` in its own session and wait at most `timeout` seconds; a child that runs over
    is killed with everything it started (its process group). `log_to`: a path prefix for
    its .out and .err files."""
    env = dict(os.environ, **(env_updates or {}))
    tic = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd, env=env, start_new_session=True)
    child = Child(cmd=list(cmd), timeout=timeout)
    try:
        child.stdout, child.stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.timed_out = True
        _kill_group(proc)
        child.stdout, child.stderr = proc.communicate()
    except BaseException:
        # its own session does not receive the terminal's Ctrl-C: stop it before leaving
        _kill_group(proc)
        raise
    child.returncode, child.seconds = proc.returncode, time.time() - tic
    if log_to:
        for ext, text in (('.out', child.stdout), ('.err', child.stderr)):
            with open(log_to + ext, 'w') as f:
                f.write(text or '')
    return child


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def probe_cmd(name, *args):
    """The command that runs the probe `name` (a function of this module) in a child."""
    code = ('from dmrnet.tools.gpu_check import answer; answer(%r, %r)'
            % (name, json.dumps(args)))
    return [sys.executable, '-c', code]


def answer(name, args_json):
    """Child side of probe_cmd: run the probe and print its answer after TAG."""
    result = PROBES[name](*json.loads(args_json))
    print(TAG + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------
# Probes: run in children (they import MXNet, ask the driver, touch the GPUs)

def probe_mxnet():
    """The MXNet build this process loads: version, distribution, features, the GPUs it sees
    and the CUDA libraries it loaded."""
    facts = dict(distribution=_mxnet_distribution())
    try:
        import dmrnet.utils  # noqa: F401  (loads the GPU build's CUDA libraries, as scripts do)
        import mxnet as mx
    except Exception as e:  # an OSError naming a missing library, dmrnet's ImportError, ...
        facts['error'] = '%s: %s' % (type(e).__name__, str(e).strip().splitlines()[-1])
        return facts
    features = mx.runtime.Features()
    facts.update(version=mx.__version__,
                 features={k: features.is_enabled(k) for k in FEATURES if k in features})
    try:
        facts['num_gpus'] = mx.context.num_gpus()
    except mx.base.MXNetError as e:
        facts['num_gpus'] = 0
        facts['num_gpus_error'] = str(e).strip().splitlines()[-1]
    facts['libraries'] = loaded_libraries()
    return facts


def _mxnet_distribution():
    from importlib import metadata
    found = sorted('%s %s' % (d.metadata['Name'], d.version) for d in metadata.distributions()
                   if (d.metadata['Name'] or '').lower().replace('_', '-').startswith('mxnet'))
    return ', '.join(found) or None


def loaded_libraries(maps='/proc/self/maps'):
    """{file name: dict(path, version)} of the CUDA libraries mapped into this process."""
    found = {}
    try:
        with open(maps) as f:
            paths = {line.split()[-1] for line in f if '/' in line}
    except OSError:
        return found
    for path in sorted(paths):
        base = os.path.basename(path)
        if any(base.startswith(lib) for lib in LIBRARIES) and base not in found:
            found[base] = dict(path=path, version=library_version(path))
    return found


def library_version(path):
    """The version a loaded CUDA library reports about itself, as text, or None."""
    import ctypes
    base = os.path.basename(path)
    try:
        lib = ctypes.CDLL(path)
        if base.startswith('libcudnn.so'):
            lib.cudnnGetVersion.restype = ctypes.c_size_t
            v = lib.cudnnGetVersion()  # 8906 = 8.9.6
            return '%d.%d.%d' % (v // 1000, v % 1000 // 100, v % 100)
        value = ctypes.c_int(0)
        for prefix, function in (('libnccl.so', 'ncclGetVersion'),
                                 ('libcudart.so', 'cudaRuntimeGetVersion'),
                                 ('libcuda.so', 'cuDriverGetVersion')):
            if base.startswith(prefix):
                if getattr(lib, function)(ctypes.byref(value)) != 0:
                    return None
                return _nccl_text(value.value) if prefix == 'libnccl.so' \
                    else cuda_text(value.value)
    except (OSError, AttributeError):
        return None
    return None


def _nccl_text(code):
    # NCCL_VERSION_CODE: major*10000 + minor*100 + patch since 2.9, major*1000 + ... before
    if code >= 10000:
        return '%d.%d.%d' % (code // 10000, code % 10000 // 100, code % 100)
    return '%d.%d.%d' % (code // 1000, code % 1000 // 100, code % 100)


def cuda_text(version):
    """12040 -> '12.4'."""
    return '%d.%d' % (version // 1000, version % 1000 // 10)


def probe_driver(subsets):
    """What the driver says (dmrnet.utils.cuda, which does not import MXNet): the installed
    build, the driver's CUDA version, the GPUs, and gpu_problem for each list of ids."""
    try:
        from dmrnet.utils import cuda
    except ImportError as e:
        return dict(helper_error='dmrnet.utils.cuda cannot be imported (%s)' % e)
    info = cuda.driver_info()
    return dict(build=cuda.mxnet_build(), version=info.version, error=info.error,
                devices=[dict(index=d.index, name=d.name, capability=list(d.capability))
                         for d in info.devices],
                problems={ids_key(ids): cuda.gpu_problem(ids) for ids in subsets})


def probe_bn_average(contexts):
    """The project's cross-device BatchNorm step (distributed.average_running_stats) on these
    devices: every device first gets running statistics of its own batch, then each must hold
    their mean."""
    import dmrnet.utils  # noqa: F401
    import mxnet as mx
    import numpy as np
    from mxnet import autograd
    from dmrnet.symbols import get_model
    from dmrnet.train.distributed import Sync, average_running_stats
    ctxs = [_context(c) for c in contexts]
    net = get_model('dmrnet', L=6, classes=10)
    net.initialize(ctx=ctxs)
    net.hybridize(static_alloc=True, static_shape=True)  # as training runs it
    for k, ctx in enumerate(ctxs):
        # another distribution per device, so that their statistics differ before averaging
        x = mx.nd.random.normal(loc=k, scale=1 + k, shape=(8, 3, 32, 32), ctx=ctx)
        with autograd.record():
            y = net(x)
        y.backward()  # MXNet updates the running statistics in the backward pass
    mx.nd.waitall()
    aux = [p for p in net.collect_params().values() if p.grad_req == 'null']
    before = [np.stack([d.asnumpy() for d in p.list_data()]) for p in aux]
    average_running_stats(net, Sync(None))
    after = [np.stack([d.asnumpy() for d in p.list_data()]) for p in aux]
    return dict(arrays=len(aux), devices=len(ctxs),
                spread_before=max(float(np.abs(b - b.mean(0)).max()) for b in before),
                max_error=max(float(np.abs(a - b.mean(0)).max()) for a, b in zip(after, before)),
                finite=bool(all(np.isfinite(a).all() for a in after)))


def probe_export_stats(params_file):
    """The BatchNorm running statistics an exported model carries."""
    import dmrnet.utils  # noqa: F401
    import mxnet as mx
    import numpy as np
    arrays = {k[4:]: v.asnumpy() for k, v in mx.nd.load(params_file).items()
              if k.startswith('aux:')}
    means = [k for k in arrays if k.endswith('running_mean')]
    variances = [k for k in arrays if k.endswith('running_var')]
    return dict(means=len(means), variances=len(variances),
                nonfinite=sorted(k for k, v in arrays.items() if not np.isfinite(v).all()),
                negative=sorted(k for k in variances if (arrays[k] < 0).any()),
                # still the initial zeros / ones: training never reached the exported copy
                untouched=sorted([k for k in means if not arrays[k].any()] +
                                 [k for k in variances if (arrays[k] == 1).all()]))


def probe_export_agreement(prefix, epoch, data_dir, contexts, images):
    """Softmax of the exported model on the first `images` test images, loaded with
    SymbolBlock.imports on each of two devices: how far apart they are."""
    import warnings
    import dmrnet.utils  # noqa: F401
    import mxnet as mx
    import numpy as np
    from dmrnet.data import get_val_iter
    with open(prefix + '-meta.json') as f:
        input_name = json.load(f).get('input', {}).get('name', 'data')
    batch = get_val_iter('digits', data_dir, images).next()
    probs = []
    for text in contexts:
        ctx = _context(text)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            net = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', [input_name],
                                               '%s-%04d.params' % (prefix, epoch), ctx=ctx)
        probs.append(mx.nd.softmax(net(batch.data[0].as_in_context(ctx))).asnumpy())
    a, b = probs
    top = np.sort(a, axis=1)
    margins = top[:, -1] - top[:, -2]
    differ = a.argmax(1) != b.argmax(1)
    return dict(images=int(a.shape[0]), max_abs_diff=float(np.abs(a - b).max()),
                finite=bool(np.isfinite(a).all() and np.isfinite(b).all()),
                top1_differ=int(differ.sum()),
                differ_margins=[float(m) for m in margins[differ]])


def _context(text):
    """'gpu(1)' -> mx.gpu(1)."""
    import mxnet as mx
    kind, index = re.fullmatch(r'(cpu|gpu)\((\d+)\)', text).groups()
    return getattr(mx, kind)(int(index))


PROBES = dict(probe_mxnet=probe_mxnet, probe_driver=probe_driver,
              probe_bn_average=probe_bn_average, probe_export_stats=probe_export_stats,
              probe_export_agreement=probe_export_agreement)


# ------------------------------------------------------------------------------------------
# The environment, and what it allows

def ids_key(ids):
    return ','.join(map(str, ids))


def parse_gpus(text):
    """'0-3,6' -> [0, 1, 2, 3, 6]; '' -> []. The same grammar as dmrnet.utils.devices, which
    this process does not import (see the module docstring). ValueError on anything else."""
    ids = []
    for part in filter(None, (p.strip() for p in text.split(','))):
        m = re.fullmatch(r'(\d+)(?:\s*-\s*(\d+))?', part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise ValueError('expected ids like "0", "0,1" or "0-7", got %r' % text)
        ids.extend(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    return ids


@dataclass
class Environment:
    ids: list         # the GPUs the checks use, in order
    given: bool       # whether --gpus named them
    mxnet: dict       # probe_mxnet's answer
    driver: dict      # probe_driver's answer
    seconds: float = 0.0


def gather_environment(requested, timeout, cwd, ask=None):
    """Ask MXNet which GPUs it sees, then the driver about those GPUs. `ask(probe, *args)`
    answers a probe; by default a child process does (tests answer in-process)."""
    ask = ask or (lambda name, *args: ask_child(name, args, timeout, cwd))
    tic = time.time()
    mxnet = ask('probe_mxnet')
    if 'failed' in mxnet:
        mxnet = dict(error='the MXNet probe %s' % mxnet['failed'])
    ids = requested if requested is not None else list(range(mxnet.get('num_gpus') or 0))
    driver = ask('probe_driver', [ids[:1], ids[:2]] if ids else [[0]])
    if 'failed' in driver:
        driver = dict(helper_error='the driver probe %s' % driver['failed'])
    if requested is None and 'num_gpus' not in mxnet:
        ids = [d['index'] for d in driver.get('devices', [])]
    return Environment(ids, requested is not None, mxnet, driver, time.time() - tic)


def ask_child(name, args, timeout, cwd):
    child = run_child(probe_cmd(name, *args), timeout, cwd)
    reply = child.answer()
    return reply if reply is not None else dict(failed=child.problem() or 'gave no answer')


def gpu_reason(env, count, nccl=False):
    """None when `count` of the GPUs can run a check, else why not (one line, with the fix
    where there is one)."""
    mxnet, driver = env.mxnet, env.driver
    if mxnet.get('error'):
        return 'MXNet does not import (see env)'
    if not mxnet.get('features', {}).get('CUDA'):
        if driver.get('build') == 'cpu+gpu' and driver.get('problems'):
            return _strip_asked(next(iter(driver['problems'].values())))
        reason = 'no GPU visible: the installed MXNet is the CPU build (%s)' % (
            mxnet.get('distribution') or 'mxnet %s' % mxnet.get('version'))
        if driver.get('devices'):
            reason += ('; the driver sees %d GPU(s): make venv BUILD=gpu installs the GPU build'
                       % len(driver['devices']))
        return reason
    if not env.ids:
        if env.given:
            return 'no GPU given (--gpus is empty)'
        why = (driver.get('problems') or {}).get('0') or mxnet.get('num_gpus_error')
        return _strip_asked(why) if why else 'no GPU visible: MXNet sees none'
    if len(env.ids) < count:
        return 'needs %d GPUs; %s' % (count, 'only GPU %s given' % ids_key(env.ids) if env.given
                                      else 'only GPU %s visible' % ids_key(env.ids))
    subset = env.ids[:count]
    problem = (driver.get('problems') or {}).get(ids_key(subset))
    if problem:
        return _strip_asked(problem)
    missing = [i for i in subset if i >= (mxnet.get('num_gpus') or 0)]
    if missing:
        return 'GPU %s not visible to MXNet (it sees %d)' % (ids_key(missing),
                                                             mxnet.get('num_gpus') or 0)
    if nccl and not mxnet['features'].get('NCCL'):
        return 'this MXNet was built without NCCL, which --kv-store nccl needs'
    return None


def _strip_asked(problem):
    # dmrnet.utils.cuda starts its lines with the --gpus they were asked about, which the
    # user of this script may not have given
    return re.sub(r'^--gpus [\d,-]+: ', '', problem)


# ------------------------------------------------------------------------------------------
# The shared work: one data pack and the training runs, each made once

class Run:
    """One training run of train/digits.py and what it left in its folder."""

    def __init__(self, name, folder, child):
        self.name, self.folder, self.child = name, folder, child

    def require(self):
        problem = self.child.problem()
        if problem:
            raise CheckFailed('train/digits.py %s: %s' % (_flags(self.child.cmd), problem))

    def records(self):
        path = os.path.join(self.folder, 'log.jsonl')
        try:
            with open(path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as e:
            raise CheckFailed('the run left no readable %s (%s)' % (path, e)) from None

    def final(self):
        """The last epoch's record, which must show a finite loss and a speed."""
        self.require()
        records = self.records()
        if not records:
            raise CheckFailed('the run logged no epoch in %s' % self.folder)
        rec = records[-1]
        loss = rec.get('train_loss')
        if not (isinstance(loss, (int, float)) and math.isfinite(loss)):
            raise CheckFailed('the training loss is %r' % (loss,))
        if not rec.get('images_per_sec'):
            raise CheckFailed('the run logged no images/s')
        return rec

    def summary(self):
        self.require()
        try:
            with open(os.path.join(self.folder, 'summary.json')) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise CheckFailed('the run left no readable summary.json (%s)' % e) from None

    def text(self, name):
        try:
            with open(os.path.join(self.folder, name)) as f:
                return f.read()
        except OSError:
            return ''

    def export_prefix(self, name='best'):
        """SAVE_DIR/best and the epoch of its parameters."""
        prefix = os.path.join(self.folder, name)
        epochs = sorted(int(m.group(1)) for m in (
            re.fullmatch(re.escape(name) + r'-(\d{4})\.params', f)
            for f in os.listdir(self.folder)) if m)
        if not epochs or not os.path.exists(prefix + '-symbol.json'):
            raise CheckFailed('the run exported no %s-symbol.json + -NNNN.params' % prefix)
        return prefix, epochs[-1]


def _flags(cmd):
    """The flags of a training command that say what the run was (not the folders)."""
    out, skip = [], False
    for arg in cmd[2:]:
        if skip:
            skip = False
        elif arg in ('--data-dir', '--save-dir'):
            skip = True
        else:
            out.append(arg)
    return ' '.join(out)


class Session:
    """What the checks share: the environment, a work folder, the data pack and the runs
    (each made the first time a check needs it)."""

    def __init__(self, env, root, timeout, batches=BATCHES):
        self.env, self.root, self.timeout, self.batches = env, root, timeout, batches
        self.runs = {}
        self._pack = None
        os.makedirs(os.path.join(root, 'logs'), exist_ok=True)

    # the device a check runs on, as the scripts take it and as a probe takes it
    def device_flags(self, ids):
        return ['--gpus', ids_key(ids)]

    def context(self, index):
        return 'gpu(%d)' % index

    def child(self, name, cmd, env_updates=None):
        return run_child(cmd, self.timeout, self.root, env_updates,
                         log_to=os.path.join(self.root, 'logs', name))

    def probe(self, name, *args):
        child = self.child(name, probe_cmd(name, *args))
        result = child.answer()
        if result is None:
            raise CheckFailed('%s: %s' % (name.replace('probe_', 'probe '),
                                          child.problem() or 'no answer'))
        return result

    def pack(self):
        """The digits, packed once into the work folder (seconds)."""
        if self._pack is None:
            folder = os.path.join(self.root, 'digits')
            say('packing the digits into %s' % folder)
            child = self.child('pack', [sys.executable, os.path.join(ROOT, 'data', 'digits.py'),
                                        '--out', folder])
            self._pack = (folder, child.problem())
        folder, problem = self._pack
        if problem:
            raise CheckFailed('python data/digits.py: %s' % problem)
        return folder

    def train(self, name, ids, flags=(), env_updates=None, epochs=1):
        """The run `name` of train/digits.py on GPUs `ids` (made once, whichever check asks
        first)."""
        if name not in self.runs:
            pack = self.pack()
            folder = os.path.join(self.root, 'runs', name)
            cmd = ([sys.executable, os.path.join(ROOT, 'train', 'digits.py')] +
                   self.device_flags(ids) + list(flags) +
                   ['--epochs', str(epochs), '--max-batches', str(self.batches), '--no-progress',
                    '--log-interval', '0', '--data-dir', pack, '--save-dir', folder])
            say('%s: train/digits.py %s%s' % (name, _flags(cmd), ''.join(
                ' (%s=%s)' % kv for kv in sorted((env_updates or {}).items()))))
            self.runs[name] = Run(name, folder, self.child(name, cmd, env_updates))
        return self.runs[name]

    def evaluate(self, name, prefix):
        """train/evaluate.py on the CPU: its JSON answer."""
        child = self.child(name, [sys.executable, os.path.join(ROOT, 'train', 'evaluate.py'),
                                  '--prefix', prefix, '--dataset', 'digits',
                                  '--data-dir', self.pack(), '--json'])
        if child.problem():
            raise CheckFailed('train/evaluate.py --prefix %s: %s'
                              % (os.path.basename(prefix), child.problem()))
        try:
            return json.loads(child.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise CheckFailed('train/evaluate.py printed no JSON: %s' % _tail(child.stdout))


# ------------------------------------------------------------------------------------------
# The checks

def check_environment(s):
    env = s.env
    mx, drv = env.mxnet, env.driver
    parts = []
    if mx.get('error'):
        parts.append('MXNet does not import: %s' % mx['error'])
    else:
        build = 'GPU' if mx.get('features', {}).get('CUDA') else 'CPU'
        parts.append('%s (%s build): %s' % (
            mx.get('distribution') or 'mxnet %s' % mx.get('version'), build,
            ', '.join('%s %s' % (k, 'yes' if v else 'no')
                      for k, v in mx.get('features', {}).items())))
        parts.append('MXNet sees %d GPU(s)%s' % (mx.get('num_gpus') or 0, (
            ' (%s)' % mx['num_gpus_error']) if mx.get('num_gpus_error') else ''))
    parts.append(driver_text(drv))
    libraries = mx.get('libraries') or {}
    parts.append('loaded: %s' % ', '.join(' '.join(filter(None, (k, v.get('version'))))
                                          for k, v in sorted(libraries.items()))
                 if libraries else 'no CUDA library loaded')
    if env.ids:
        parts.append('checking GPU%s %s' % ('s' if len(env.ids) > 1 else '', ids_key(env.ids)))
    note = '; '.join(parts)
    if mx.get('error'):
        raise CheckFailed(note)
    count = len(drv.get('devices') or []) if not mx.get('num_gpus') else mx['num_gpus']
    return Outcome('%d GPU%s' % (count, '' if count == 1 else 's'), note, dict(ids=env.ids))


def driver_text(drv):
    if drv.get('helper_error'):
        return 'driver not asked: %s' % drv['helper_error']
    if drv.get('version') is None:
        return 'NVIDIA driver: none (%s)' % (drv.get('error') or 'not found')
    text = 'NVIDIA driver for CUDA %s' % cuda_text(drv['version'])
    if drv.get('error'):
        text += ' (%s)' % drv['error']
    devices = ', '.join('GPU %d %s (compute %d.%d)' % ((d['index'], d['name']) +
                                                       tuple(d['capability']))
                        for d in drv.get('devices') or [])
    return text + (': ' + devices if devices else ': no GPU')


def check_one_gpu(s):
    run = s.train('gpu1', s.env.ids[:1])
    rec = run.final()
    return Outcome(speed(rec), 'GPU %d: loss %.3f, test error %.2f%% after %d batches of 64 '
                   '(1 epoch, first batches included)'
                   % (s.env.ids[0], rec['train_loss'], rec['test_error'], s.batches),
                   dict(record=rec))


def two_gpus(s, kv_store):
    ids = s.env.ids[:2]
    run = s.train('gpu2-' + kv_store, ids, ['--kv-store', kv_store])
    rec = run.final()
    note = 'GPUs %s: loss %.3f, test error %.2f%%' % (ids_key(ids), rec['train_loss'],
                                                      rec['test_error'])
    try:  # beside the one-GPU run's figure, when that check ran first
        one = s.runs['gpu1'].final()['images_per_sec']
        note += '; %.2fx one GPU' % (rec['images_per_sec'] / one)
    except (KeyError, CheckFailed):
        pass
    return Outcome(speed(rec), note, dict(record=rec))


def check_two_gpus_device(s):
    return two_gpus(s, 'device')


def check_two_gpus_nccl(s):
    return two_gpus(s, 'nccl')


def check_amp(s):
    run = s.train('amp', s.env.ids[:1], ['--amp'])
    rec = run.final()
    precision = run.summary().get('precision') or {}
    if precision.get('dtype', 'float16') != 'float16':
        raise CheckFailed('--amp on a GPU trained in %s, not float16 (summary.json precision: '
                          '%s)' % (precision['dtype'], precision))
    if precision.get('loss_scaling') is False:
        raise CheckFailed('the run recorded float16 without loss scaling (summary.json '
                          'precision: %s)' % precision)
    log = run.text('train.log')
    if 'Using AMP' not in log:
        raise CheckFailed("train.log has no 'Using AMP': --amp did not switch MXNet's AMP on")
    return Outcome(speed(rec), 'float16: loss %.3f, test error %.2f%%; %s'
                   % (rec['train_loss'], rec['test_error'],
                      loss_scaling_text(log, precision, s.batches)),
                   dict(record=rec, precision=precision))


def loss_scaling_text(log, precision, batches):
    """What the run says about AMP's dynamic loss scaling: MXNet logs every overflow (and the
    halved scale); the run records its dtype (summary.json precision), from which
    train/precision.py derives loss scaling (float16: on), and may record the choice itself."""
    if precision.get('loss_scaling'):
        basis = 'summary.json precision loss_scaling'
    elif precision.get('dtype') == 'float16':
        basis = 'summary.json precision dtype float16'
    else:
        basis = 'AMP on a GPU'
    drops = re.findall(r'AMP: decreasing loss scale to ([0-9.e+]+)', log)
    if drops:
        return ('dynamic loss scaling on: %d overflowing step(s) skipped, scale now %g (%s)'
                % (len(drops), float(drops[-1]), basis))
    return 'dynamic loss scaling on (%s; no overflow in %d batches)' % (basis, batches)


def check_autotune(s):
    figures, firsts = {}, {}
    for value in ('1', '0'):
        run = s.train('autotune-%s' % value, s.env.ids[:1],
                      env_updates={'MXNET_CUDNN_AUTOTUNE_DEFAULT': value}, epochs=2)
        rec = run.final()
        records = run.records()
        if len(records) < 2:
            raise CheckFailed('the run logged %d epoch(s), not 2' % len(records))
        figures[value], firsts[value] = rec['images_per_sec'], records[0]['images_per_sec']
    return Outcome('%.0f / %.0f img/s' % (figures['1'], figures['0']),
                   'MXNET_CUDNN_AUTOTUNE_DEFAULT=1 / =0, epoch 2 of 2 (epoch 1, where tuning '
                   'happens: %.0f / %.0f img/s)' % (firsts['1'], firsts['0']),
                   dict(images_per_sec=figures, first_epoch_images_per_sec=firsts))


def check_bn_stats(s):
    ids = s.env.ids[:2]
    averaged = s.probe('probe_bn_average', [s.context(i) for i in ids])
    tolerance = 1e-5 * max(1.0, averaged['spread_before'])
    if not averaged['finite'] or averaged['max_error'] > tolerance:
        raise CheckFailed('average_running_stats on %s: devices differ from the mean of their '
                          'statistics by %.3g (finite: %s)' % (ids_key(ids), averaged['max_error'],
                                                               averaged['finite']))
    if averaged['spread_before'] == 0:
        raise CheckFailed('the devices\' running statistics were equal before averaging: '
                          'the probe tested nothing')
    run = s.train('gpu2-device', ids, ['--kv-store', 'device'])
    run.final()
    prefix, epoch = run.export_prefix()
    stats = s.probe('probe_export_stats', '%s-%04d.params' % (prefix, epoch))
    bad = stats['nonfinite'] or stats['negative'] or stats['untouched']
    if not stats['means'] or bad:
        raise CheckFailed('exported running statistics: %d means; non-finite %s, negative '
                          'variances %s, never updated %s' % (
                              stats['means'], stats['nonfinite'][:3], stats['negative'][:3],
                              stats['untouched'][:3]))
    scored = s.evaluate('bn-evaluate', prefix)
    logged = run.summary()['best_test_error']
    compared = compare_errors(scored, logged)
    note = ('each device held the mean of both (max diff %.1g over %d arrays); the two-GPU '
            'run\'s export (averaged over its devices, exported from GPU %d) has %d finite '
            'running means and variances; %s' % (averaged['max_error'], averaged['arrays'],
                                                 ids[0], stats['means'] + stats['variances'],
                                                 compared))
    return Outcome('error %.2f%%' % scored['top1_error'], note,
                   dict(averaging=averaged, export=stats, evaluated=scored, logged=logged))


def compare_errors(scored, logged):
    """train/evaluate.py's error against the run's: equal, or one image apart (a near-tie that
    other arithmetic decides the other way); anything more fails."""
    images = scored.get('images') or 1
    diff = abs(scored['top1_error'] - logged)
    text = 'train/evaluate.py on the CPU: %.2f%%, the run logged %.2f%%' % (
        scored['top1_error'], logged)
    if diff > 100.0 / images + 1e-6:
        raise CheckFailed(text + ' (%d images apart)' % round(diff * images / 100))
    return text + (' (one image apart: a near-tie)' if diff > 1e-6 else '')


def check_bench(s):
    out = os.path.join(s.root, 'bench.json')
    # both merge-and-run forms are measured (auto): the fused one runs grouped convolutions,
    # a cuDNN path of its own
    cmd = [sys.executable, '-m', 'dmrnet.tools.bench', '--model', BENCH_MODEL, '--batch-size',
           str(BENCH_BATCH), '--gpus', str(s.env.ids[0]), '--no-torch', '--no-gluoncv',
           '--no-int8', '--no-trace', '--rounds', '1', '--warmup', '2', '--repeats', '3',
           '--out', out]
    say('bench: %s' % ' '.join(cmd[1:-2]))
    child = s.child('bench', cmd)
    try:
        with open(out) as f:
            report = json.load(f)
    except (OSError, ValueError):
        raise CheckFailed('python -m dmrnet.tools.bench: %s' % (child.problem() or
                                                                'no report')) from None
    if report.get('errors'):
        raise CheckFailed('benchmark jobs failed: %s' % '; '.join(
            '%s: %s' % kv for kv in sorted(report['errors'].items())))
    ours = report.get('implementations', {}).get('dmrnet', {})
    if not ours.get('train_images_per_sec'):
        raise CheckFailed('the benchmark measured no training speed')
    return Outcome('%.0f img/s' % ours['train_images_per_sec'],
                   '%s batch %d training (%s form); exported inference %s img/s (%s form), '
                   'batch-1 latency %s ms' % (
                       BENCH_MODEL, BENCH_BATCH, ours.get('train_form'),
                       _number(ours.get('infer_images_per_sec')), ours.get('infer_form'),
                       _number(ours.get('latency_ms'), '%.2f')),
                   dict(implementation=ours))


def _number(value, fmt='%.0f'):
    return fmt % value if isinstance(value, (int, float)) else 'n/a'


def check_export(s):
    gpu = s.env.ids[0]
    run = s.train('gpu1', s.env.ids[:1])
    run.final()
    prefix, epoch = run.export_prefix()
    contexts = ['cpu(0)', s.context(gpu)]
    agreement = s.probe('probe_export_agreement', prefix, epoch, s.pack(), contexts,
                        COMPARED_IMAGES)
    # a top-1 flip is a failure unless the CPU's two best classes were within the tolerance
    flips = [m for m in agreement['differ_margins'] if m > SOFTMAX_TOLERANCE]
    if not agreement['finite'] or agreement['max_abs_diff'] > SOFTMAX_TOLERANCE or flips:
        raise CheckFailed('%s vs %s on %d images: softmax max |diff| %.3g (allowed %g), %d '
                          'top-1 differ%s' % (contexts[0], contexts[1], agreement['images'],
                                              agreement['max_abs_diff'], SOFTMAX_TOLERANCE,
                                              agreement['top1_differ'],
                                              '' if agreement['finite'] else ', not finite'))
    scored = s.evaluate('export-evaluate', prefix)
    compared = compare_errors(scored, run.summary()['best_test_error'])
    ties = agreement['top1_differ']
    return Outcome('|dp| %.1g' % agreement['max_abs_diff'],
                   'best-%04d exported from GPU %d, loaded on cpu(0) and %s: %d images, top-1 '
                   '%s; %s' % (epoch, gpu, contexts[1], agreement['images'],
                               'equal' if not ties else 'equal but for %d near-tie(s)' % ties,
                               compared),
                   dict(agreement=agreement, evaluated=scored))


def speed(rec):
    return '%.0f img/s' % rec['images_per_sec']


@dataclass
class Check:
    name: str
    title: str
    function: object
    gpus: int = 1
    nccl: bool = False


CHECKS = [
    Check('env', 'environment', check_environment, gpus=0),
    Check('gpu1', 'one GPU training', check_one_gpu),
    Check('gpu2-device', 'two GPUs, --kv-store device', check_two_gpus_device, gpus=2),
    Check('gpu2-nccl', 'two GPUs, --kv-store nccl', check_two_gpus_nccl, gpus=2, nccl=True),
    Check('amp', 'float16 --amp with loss scaling', check_amp),
    Check('autotune', 'cuDNN autotuning on / off', check_autotune),
    Check('bn-stats', 'BatchNorm statistics across devices', check_bn_stats, gpus=2),
    Check('bench', 'benchmark on one GPU', check_bench),
    Check('export', 'export from GPU, load on CPU', check_export),
]
CHECK_NAMES = [c.name for c in CHECKS]


def run_check(check, session):
    """The check's Result: skipped when the environment cannot run it, FAILED when its work
    did not do what it must (or this script met an error it did not expect)."""
    reason = gpu_reason(session.env, check.gpus, check.nccl) if check.gpus else None
    if reason:
        return Result(check.name, check.title, SKIPPED, note=reason)
    tic = time.time()
    try:
        outcome = check.function(session)
        result = Result(check.name, check.title, OK, outcome.figure, outcome.note,
                        data=outcome.data)
    except CheckFailed as e:
        result = Result(check.name, check.title, FAILED, note=str(e))
    except Exception as e:  # a surprise in one check must not hide the others
        result = Result(check.name, check.title, FAILED,
                        note='gpu_check error: %s: %s' % (type(e).__name__, e))
    result.seconds = round(time.time() - tic + (session.env.seconds if check.name == 'env'
                                                 else 0), 1)
    return result


def run_checks(names, session):
    """The Results of the checks `names`, in the table's order; the environment's always."""
    results = []
    for check in CHECKS:
        if check.name in names or check.name == 'env':
            results.append(run_check(check, session))
            if results[-1].status != SKIPPED and check.name != 'env':
                say('%s: %s %s' % (check.name, results[-1].status, results[-1].figure))
    return results


# ------------------------------------------------------------------------------------------
# Output

def format_table(results, width=110):
    """check | status | figure | note, the note wrapped in its column."""
    heads = ('check', 'status', 'figure', 'note')
    cols = [max(len(heads[0]), *(len(r.name) for r in results)),
            max(len(heads[1]), *(len(r.status) for r in results)),
            max(len(heads[2]), *(len(r.figure) for r in results))]
    indent = sum(cols) + 3 * 2
    note_width = max(40, width - indent)
    lines = ['  '.join(h.ljust(w) for h, w in zip(heads[:3], cols)) + '  ' + heads[3],
             '  '.join('-' * w for w in cols) + '  ' + '-' * min(note_width, 40)]
    for r in results:
        wrapped = textwrap.wrap(r.note, note_width) or ['']
        lines.append('  '.join(v.ljust(w) for v, w in zip((r.name, r.status, r.figure), cols))
                     + '  ' + wrapped[0])
        lines.extend(' ' * indent + more for more in wrapped[1:])
    return '\n'.join(lines)


def tally(results, seconds):
    counts = {status: sum(r.status == status for r in results) for status in (OK, SKIPPED,
                                                                               FAILED)}
    return '%d checks: %d ok, %d skipped, %d FAILED (%.0f s)' % (
        len(results), counts[OK], counts[SKIPPED], counts[FAILED], seconds)


def write_report(path, results, env, status, kept):
    report = dict(date=time.strftime('%Y-%m-%d %H:%M:%S %Z'), command=' '.join(sys.argv),
                  gpus=env.ids, status=status, kept=kept,
                  environment=dict(mxnet=env.mxnet, driver=env.driver),
                  checks=[asdict(r) for r in results])
    tmp = path + '.partial'
    with open(tmp, 'w') as f:
        json.dump(report, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------
# Command line

def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog='python tools/gpu_check.py', allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 2)[2])
    p.add_argument('--gpus', help='GPUs to check, e.g. "0,1" or "0-3" (default: every GPU '
                                  'MXNet sees); the first one, or two, are used')
    p.add_argument('--only', metavar='NAME[,NAME]',
                   help='the checks to run (env always runs)')
    p.add_argument('--timeout', metavar='SECONDS', type=float, default=DEFAULT_TIMEOUT,
                   help='how long any one child process (a training run, a probe, the '
                        'benchmark) may take; default %d' % DEFAULT_TIMEOUT)
    p.add_argument('--keep', metavar='DIR',
                   help='keep the work folder (data pack, run folders, outputs) under DIR')
    p.add_argument('--json', metavar='PATH', help='also write the results as JSON')
    args = p.parse_args(argv)
    try:
        args.gpus = parse_gpus(args.gpus) if args.gpus is not None else None
    except ValueError as e:
        p.error('--gpus: %s' % e)
    names = [n.strip() for n in (args.only or '').split(',') if n.strip()]
    unknown = [n for n in names if n not in CHECK_NAMES]
    if unknown:
        p.error('--only: no check %s (checks: %s)' % (', '.join(unknown), ', '.join(CHECK_NAMES)))
    args.names = set(names or CHECK_NAMES) | {'env'}
    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        p.error('--timeout %g: must be a number of seconds > 0' % args.timeout)
    return args


def main(argv=None):
    args = parse_args(argv)
    tic = time.time()
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    root = tempfile.mkdtemp(prefix='gpu-check-', dir=args.keep)
    try:
        env = gather_environment(args.gpus, args.timeout, root)
        session = Session(env, root, args.timeout)
        results = run_checks(args.names, session)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    status = 1 if any(r.status == FAILED for r in results) else 0
    print(format_table(results))
    print(tally(results, time.time() - tic))
    if args.keep:
        print('work folder kept: %s' % root)
    if args.json:
        write_report(args.json, results, env, status, root if args.keep else None)
    return status


if __name__ == '__main__':
    sys.exit(main())
