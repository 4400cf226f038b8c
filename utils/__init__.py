"""dmrnet.utils: what every part of dmrnet shares and none of them owns.

    runtime   OpenMP threads and the MXNet engine choice (set before MXNet starts computing)
    files     atomic writes: files, JSON, figures
    devices   device strings ("0-3,6") and the contexts they name
    cuda      the GPU build's CUDA libraries made loadable, and why GPUs cannot run it
    amx       AMX for processes that only run exported models (never training)
    process   children that end when their parent dies
    places    where the default data/ and runs/ folders live (the current folder or the checkout)

Importing this package sets OMP_NUM_THREADS (if unset) and, with the GPU build of MXNet, loads
the CUDA libraries of NVIDIA's runtime wheels (dmrnet.utils.cuda); it builds nothing else: no
model zoo, no data iterators. Downstream code imports any dmrnet package before mxnet.
"""
from . import runtime  # noqa: F401  (threads, before mxnet is imported)
from . import cuda

cuda.prepare()
