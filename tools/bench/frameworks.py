"""The frameworks the benchmark compares, side by side: MXNet (with the benchmark's
environment defaults), GluonCV and PyTorch.

PyTorch lives outside the project's site-packages, in .venv/bench-site (`make bench` installs
it from requirements-bench.txt): GluonCV 0.10 refuses to import when it finds a torch >= 2.0
importable (gluoncv/check.py), and the project's code imports GluonCV. Job processes are
started with the bench site on their PYTHONPATH (job_environment); in them GluonCV is imported
with torch hidden from its version check (import_gluoncv), so that both work in one process.
"""
import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_SITE = os.path.join(REPO, '.venv', 'bench-site')

# Defaults the benchmark sets for itself (never overriding the user's choice). cuDNN: pick
# convolution algorithms by measurement on GPUs (harmless on CPUs).
MXNET_DEFAULTS = {'MXNET_CUDNN_AUTOTUNE_DEFAULT': '1'}


def configure_mxnet():
    """The benchmark's MXNet defaults and OpenMP threads; before mxnet is imported."""
    for name, value in MXNET_DEFAULTS.items():
        os.environ.setdefault(name, value)
    import dmrnet.utils  # noqa: F401  (OMP_NUM_THREADS before mxnet loads)


def job_environment(extra=None):
    """The environment of a job process: this process's, plus `extra`, with the bench site
    (when installed) appended to PYTHONPATH."""
    env = dict(os.environ, **(extra or {}))
    if os.path.isdir(BENCH_SITE):
        # PYTHONPATH comes before site-packages; the bench site holds only what the project's
        # environment lacks (it is installed with --no-deps), so it shadows nothing.
        paths = [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p]
        if BENCH_SITE not in paths:
            env['PYTHONPATH'] = os.pathsep.join(paths + [BENCH_SITE])
    return env


def torch_importable():
    """Whether this process can import torch (found without importing it)."""
    return importlib.util.find_spec('torch') is not None


def torch_in_bench_site():
    return os.path.isdir(os.path.join(BENCH_SITE, 'torch'))


def torch_installed():
    """Whether PyTorch jobs can run: torch importable here or in a job process."""
    return torch_importable() or torch_in_bench_site()


def import_torch():
    """torch, or None when this process cannot import it (a job process can when the bench
    site holds it).

    GluonCV is imported first (with torch hidden from its version check), so that a later
    `import gluoncv` in the same process still works once torch is imported."""
    try:
        import_gluoncv()
    except ImportError:
        pass
    try:
        import torch
        return torch
    except ImportError:
        return None


def import_gluoncv():
    """GluonCV with torch hidden from its version check (it raises on torch >= 2.0)."""
    saved = sys.modules.get('torch', None)
    had = 'torch' in sys.modules
    sys.modules['torch'] = None  # makes `import torch` raise ImportError inside gluoncv
    try:
        import gluoncv
    finally:
        if had:
            sys.modules['torch'] = saved
        else:
            del sys.modules['torch']
    return gluoncv
