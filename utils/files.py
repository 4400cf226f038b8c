"""Atomic file writing: write beside the target, fsync, rename into place.

A reader (or a resumed run) therefore sees either the previous complete file or the new complete
file, never a partial one, even if the writer is killed or the disk fills up mid-write.
"""
import contextlib
import json
import os


# Below this much free space, a failed write is taken to be the disk filling up.
NEARLY_FULL = 64 << 20


def disk_nearly_full(path):
    """Whether the file system holding `path` has (almost) no room left: what a write error
    that names no cause (MXNet's C++ writers raise MXNetError, not OSError) most likely meant."""
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return True
    return st.f_bavail * st.f_frsize < NEARLY_FULL


def cache_path(name):
    """Where dmrnet keeps what it measured on this machine (the form selection, the --amp
    decision): ~/.cache/dmrnet/NAME, or $DMRNET_CACHE_DIR/NAME."""
    folder = os.environ.get('DMRNET_CACHE_DIR') or os.path.join(
        os.path.expanduser('~'), '.cache', 'dmrnet')
    return os.path.join(folder, name)


def read_cache(name):
    """The JSON object dmrnet keeps as cache_path(name): {} when it is missing or unreadable (a
    cache only saves measuring again)."""
    try:
        with open(cache_path(name)) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; on success it replaces `path`, on any error it is
    removed and `path` is left untouched."""
    directory = os.path.dirname(os.path.abspath(path)) or '.'
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, '.%s.partial-%d' % (os.path.basename(path), os.getpid()))
    try:
        yield tmp
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def remove_stale_partials(folder, pattern='.*.partial-*'):
    """Remove the temporary files (`.NAME.partial-PID...`) that writers killed mid-write left in
    `folder`; those of live processes stay. Returns the paths removed."""
    import glob
    import re
    removed = []
    for path in glob.glob(os.path.join(glob.escape(folder), pattern)):
        match = re.search(r'\.partial-(\d+)', os.path.basename(path))
        if match is None:
            continue
        try:
            pid = int(match.group(1))
        except ValueError:
            continue
        if pid != os.getpid() and _alive(pid):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
            removed.append(path)
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def write_text(path, text):
    """Replace `path` by `text`, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            f.write(text)
    return path


def write_json(path, obj, indent=1):
    """Replace `path` by `obj` as JSON (keys sorted), atomically."""
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=True) + '\n')


def write_jsonl(path, records):
    """Replace `path` by one JSON object per line, atomically."""
    return write_text(path, ''.join(json.dumps(r, sort_keys=True) + '\n' for r in records))


def save_figure(fig, path, dpi=120, **savefig_kwargs):
    """Save a matplotlib figure atomically (never a half-written image) and close it."""
    import matplotlib.pyplot as plt
    # The temporary name has no suffix, so the format comes from the target's.
    fmt = path.rsplit('.', 1)[-1].lower() if '.' in os.path.basename(path) else 'png'
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt, **savefig_kwargs)
    plt.close(fig)
    return path
