"""Process-wide runtime settings that MXNet reads once: OpenMP threads and the engine.

- OMP_NUM_THREADS: MXNet 1.9 uses one OpenMP thread per operator unless told otherwise, which on
  a 2-core machine halves CPU throughput. Importing any dmrnet package sets it to the usable
  cores, before mxnet is imported, unless the user chose a value.
- The engine: MXNet creates its engine at the first operator and reads MXNET_ENGINE_TYPE then.
  `select_engine` is called explicitly by a training process at start-up (see its docstring).
Both variables are checked once, at import, before MXNet could read them: a value it cannot use
(OMP_NUM_THREADS "abc", 0, or 100000, which crashes it; an engine it does not have) is one line
naming the variable and the fix, and exit status 2 in dmrnet's scripts (`startup_error`).
"""
import gc
import logging
import os
import sys
import warnings

log = logging.getLogger('dmrnet.runtime')

# `dmrnet` is a namespace package (its parts live in symbols/, data/, ...), which has no
# __file__; pkg_resources, imported later by mxnet's dependencies, warns about that harmlessly.
warnings.filterwarnings('ignore', message='Module dmrnet was already imported')

NAIVE, THREADED = 'NaiveEngine', 'ThreadedEnginePerDevice'
ENGINES = (NAIVE, 'ThreadedEngine', THREADED)


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# What the user set before dmrnet filled in its default (None: nothing), for code that shares
# the cores out between processes and must not take dmrnet's own default for a choice.
USER_OMP_THREADS = os.environ.get('OMP_NUM_THREADS') or None


def environment_problem(environ=None, cpus=None):
    """One line for the first variable MXNet would misread, or None: OMP_NUM_THREADS must be a
    whole number from 1 to the machine's CPU count (more threads than CPUs never help, and
    MXNet crashes on huge counts); MXNET_ENGINE_TYPE must name one of MXNet 1.9's engines."""
    environ = os.environ if environ is None else environ
    cpus = cpus or os.cpu_count() or 1
    threads = environ.get('OMP_NUM_THREADS')
    if threads is not None:
        text = threads.strip()
        if not (text.isdigit() and 1 <= int(text) <= cpus):
            return ('OMP_NUM_THREADS=%r: must be a whole number from 1 to %d (this machine\'s '
                    'CPUs); set it so, or unset it to use every core' % (threads, cpus))
    engine = environ.get('MXNET_ENGINE_TYPE')
    if engine is not None and engine not in ENGINES:
        return ('MXNET_ENGINE_TYPE=%r: MXNet 1.9 has %s; set one of them, or unset it (dmrnet '
                'chooses)' % (engine, ', '.join(ENGINES)))
    return None


def startup_error(message):
    """A problem found while dmrnet is imported: in one of dmrnet's own scripts, the message as
    one line and exit status 2; in other code (a notebook, a library), an ImportError."""
    if main_is_ours():
        print('%s: error: %s' % (os.path.basename(sys.argv[0]), message), file=sys.stderr)
        sys.exit(2)
    raise ImportError(message)


def main_is_ours():
    """Whether this process runs one of dmrnet's scripts (train/*.py, tools/..., -m dmrnet.*)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    main = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ''
    return main.startswith(root + os.sep)


def configure_threads():
    problem = environment_problem()
    if problem:
        startup_error(problem)
    os.environ.setdefault('OMP_NUM_THREADS', str(usable_cores()))
    return int(os.environ['OMP_NUM_THREADS'])


def operators_have_run():
    """Whether this process may already have created MXNet's engine: mxnet is imported and an
    NDArray exists. (An NDArray created and freed again goes unnoticed; MXNet has no public
    way to ask which engine is running.)"""
    mx = sys.modules.get('mxnet')
    if mx is None:
        return False
    ndarray = mx.nd.NDArray
    return any(isinstance(o, ndarray) for o in gc.get_objects())


def select_engine(contexts):
    """Choose the engine for a training process on `contexts`; returns the engine in force.

    CPU-only processes get NaiveEngine: under the threaded engine oneDNN's training results
    depend on the order in which independent operators happen to run, so a resumed run would
    not be bit-identical to an uninterrupted one; the naive engine runs operators in program
    order and is no slower on two cores (docs/PERFORMANCE.md). GPU processes keep the threaded
    engine, which overlaps copies, communication and kernels. A user's MXNET_ENGINE_TYPE always
    wins. If an operator has already run, the engine exists and the choice cannot take effect:
    that is logged as a warning and the running engine is returned."""
    chosen = os.environ.get('MXNET_ENGINE_TYPE')
    if chosen is None and all(c.device_type == 'cpu' for c in contexts):
        if operators_have_run():
            log.warning('MXNet operators already ran in this process, so its engine (%s) is '
                        'fixed; CPU training results may then depend on operator scheduling '
                        'and a resumed run may differ from an uninterrupted one. For bit-exact '
                        'resumes start a fresh process, or set MXNET_ENGINE_TYPE=%s before '
                        'Python starts.', THREADED, NAIVE)
            return THREADED
        os.environ['MXNET_ENGINE_TYPE'] = chosen = NAIVE
    start_engine()  # so that the choice is fixed here
    return chosen or THREADED


_engine = {'started': False}


def start_engine():
    """Create MXNet's engine now, once. MXNet logs an engine chosen by MXNET_ENGINE_TYPE when it
    creates it; left for later, a process stopped before its first operator would have MXNet
    create it while exiting, and log that after the process's own error line."""
    if not _engine['started'] and not operators_have_run():
        import mxnet as mx
        mx.nd.zeros((1,)).wait_to_read()
    _engine['started'] = True


configure_threads()
