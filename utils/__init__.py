"""dmrnet.utils: what every part of dmrnet shares and none of them owns.

    runtime   OpenMP threads and the MXNet engine choice (set before MXNet starts computing)
    files     atomic writes: files, JSON, figures
    devices   device strings ("0-3,6") and the contexts they name

Importing this package sets OMP_NUM_THREADS (if unset) and builds nothing else: no model zoo,
no data iterators.
"""
from . import runtime  # noqa: F401  (threads, before mxnet is imported)
