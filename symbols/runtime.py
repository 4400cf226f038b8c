"""Process-wide runtime defaults that must be in place before mxnet is imported.

MXNet reads these when libmxnet loads, so they are set here, by the first dmrnet import, and
never override a value the user chose:
- OMP_NUM_THREADS: MXNet 1.9 uses one OpenMP thread per operator otherwise; on a 2-core machine
  that halves CPU throughput (measured: 42 vs 79 images/s training GluonCV ResNet-110, batch 64).

`use_naive_engine_on_cpu` is for training processes; MXNet creates its engine lazily, at the
first operator, so it works after `import mxnet` as long as nothing has run yet.
"""
import os
import warnings

# `dmrnet` is a namespace package (its parts live in symbols/, data/, ...), which has no
# __file__; pkg_resources, imported later by mxnet's dependencies, warns about that harmlessly.
warnings.filterwarnings('ignore', message='Module dmrnet was already imported')


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_threads():
    os.environ.setdefault('OMP_NUM_THREADS', str(usable_cores()))
    return int(os.environ['OMP_NUM_THREADS'])


def use_naive_engine_on_cpu(contexts):
    """MXNet's NaiveEngine for a process that computes on CPU contexts only (unless
    MXNET_ENGINE_TYPE is set). Under the threaded engine, oneDNN training results depended on
    the order in which independent operators happened to run: a resumed run ended with other
    parameters than an uninterrupted one, which rules out bit-identical resumes. The naive
    engine runs operators in program order and was no slower on 2 cores (DMRNet-56 training:
    83 vs 71 images/s); GPU processes keep the threaded engine, which overlaps copies,
    communication and kernels. Returns the engine type in force from the first operator on."""
    if all(c.device_type == 'cpu' for c in contexts):
        os.environ.setdefault('MXNET_ENGINE_TYPE', 'NaiveEngine')
    return os.environ.get('MXNET_ENGINE_TYPE', 'ThreadedEnginePerDevice')


configure_threads()
