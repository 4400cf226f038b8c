"""Process-wide runtime defaults that must be in place before mxnet is imported.

MXNet 1.9 uses one OpenMP thread per operator unless OMP_NUM_THREADS says otherwise; on a 2-core
machine that halves CPU throughput (measured: 42 vs 79 images/s training GluonCV ResNet-110,
batch 64). The engine reads the variable when libmxnet loads, so it has to be set here, by the
first dmrnet import, and never overrides a value the user chose.
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


configure_threads()
