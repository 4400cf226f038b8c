"""How a packer's command line ends: its outcome in one line and an exit status, with nothing
partial left behind whatever stopped it."""
import errno
import logging
import sys

from dmrnet.data.errors import DataError
from dmrnet.utils.files import disk_nearly_full
from dmrnet.utils.process import Terminated, sigterm_as_interrupt


def run_cli(main, argv=None):
    """Run a packer's main(argv): data problems become one line on stderr and exit status 2; a
    full disk one line and status 2; Ctrl-C (130) and SIGTERM (143) one line. In every case
    the temporary files are gone and what was complete before is untouched."""
    import mxnet as mx
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    try:
        with sigterm_as_interrupt():  # so that every temporary file is removed on the way out
            summary = main(argv)
    except DataError as e:
        _fail('error: %s' % e, 2)
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        _fail('%s: nothing partial was left behind' % ('terminated' if terminated
                                                       else 'interrupted'),
              Terminated.status if terminated else 130)
    except (OSError, mx.base.MXNetError) as e:
        path = getattr(e, 'filename', None) or (argv_out(argv) or '.')
        full = getattr(e, 'errno', None) in (errno.ENOSPC, errno.EDQUOT) or (
            isinstance(e, mx.base.MXNetError) and disk_nearly_full(path))
        if not full:
            raise
        _fail('error: no space left on the disk of %s: free some space (or pack elsewhere with '
              '--out) and run the same command again; nothing partial was left behind' % path, 2)
    if summary:
        print(summary)


def argv_out(argv):
    """The --out folder of a packer's command line, if it names one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(argv):
        if arg == '--out' and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith('--out='):
            return arg.split('=', 1)[1]
    return None


def _fail(message, status):
    print(message, file=sys.stderr)
    sys.exit(status)
