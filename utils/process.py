"""Child processes that cannot outlive the process that started them.

A parent that is killed outright (SIGKILL, the OOM killer) runs no clean-up, so its children
must be ended by the kernel: Linux's PR_SET_PDEATHSIG sends them a signal when their parent
dies. The signal is SIGKILL: a training process blocked in C++ (a KVStore waiting for a server
that is gone) never returns to Python to run a SIGTERM handler, and one that does may then hang
in the KVStore's exit barrier; checkpoints are written atomically, so nothing is lost by it.
"""
import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1

try:
    # resolved here, in the parent: the function below runs between fork and exec, where it
    # must not import or take locks other threads may hold
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def end_with_parent():
    """A `preexec_fn` for subprocess.Popen: the child gets SIGKILL when this process dies,
    however it dies (a no-op where the kernel has no PR_SET_PDEATHSIG)."""
    parent = os.getpid()

    def in_child():
        if _prctl is None:
            return
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)
    return in_child
