"""Child processes that cannot outlive the process that started them.

A parent that is killed outright (SIGKILL, the OOM killer) runs no clean-up, so its children
must be ended by the kernel: Linux's PR_SET_PDEATHSIG sends them a signal when their parent
dies. The signal is SIGKILL: a training process blocked in C++ (a KVStore waiting for a server
that is gone) never returns to Python to run a SIGTERM handler, and one that does may then hang
in the KVStore's exit barrier; checkpoints are written atomically, so nothing is lost by it.
"""
import contextlib
import ctypes
import os
import signal
import threading

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


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler or `kill` ending the process), raised where Ctrl-C would be, so that
    it unwinds the same way: every clean-up on the way runs. Exit status 143."""
    status = 128 + signal.SIGTERM


_received = []


def _raise_terminated(signum, frame):
    _received.append(signum)
    raise Terminated()


def raise_if_terminated():
    """Raise Terminated again for a SIGTERM whose exception was lost: Python prints and ignores
    an exception raised inside a __del__ (MXNet's NDArray finalizers run all the time), so the
    handler's own raise can vanish. Loops call this once per step to stop promptly; a lost
    signal no loop looked for is raised when sigterm_as_interrupt ends."""
    if _received:
        _received.clear()
        raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within it, SIGTERM raises Terminated in the main thread (Python delivers signals only
    there; elsewhere this does nothing). A body that ends normally although a SIGTERM came (its
    exception lost in a finalizer) raises Terminated on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        lost = bool(_received)
        _received.clear()
    if lost:
        raise Terminated()
