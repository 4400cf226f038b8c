"""Run-folder checkpoints: parameters, trainer states (momentum) and a metadata JSON.

Layout of DIR:
    ckpt-NNNN.params / ckpt-NNNN.states   written atomically, NNNN = epochs completed
    last.json, best.json                  pointers (full metadata) written after the pair
Each file is renamed into place only once complete (parameters only after reading them back),
the pointers move only after their files exist, and older pairs are deleted last; the files of
a checkpoint that failed half-way are deleted too. A kill or a full disk at any moment therefore
leaves last.json naming a complete, loadable checkpoint, and no stray files.
"""
import errno
import glob
import json
import os
import re

import mxnet as mx

from dmrnet.symbols.atomic import atomic_path

# Below this much free space, a failed write is taken to be the disk filling up.
NEARLY_FULL = 64 << 20


class CheckpointError(Exception):
    """A checkpoint that cannot be used (missing, unreadable, another model's)."""


def write_json(path, obj):
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=1, sort_keys=True)


def write_error(path, err):
    """An OSError for a write that MXNet's C++ writer could not finish: it raises MXNetError
    ("FileStream.Write incomplete"), not OSError, when the disk fills up."""
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
        free = st.f_bavail * st.f_frsize
    except OSError:
        free = 0
    code = errno.ENOSPC if free < NEARLY_FULL else errno.EIO
    detail = str(err).strip().split('\n')[-1].rsplit(': ', 1)[-1]
    return OSError(code, '%s (%s)' % (os.strerror(code), detail), path)


def save_params(net, path):
    """Write and read back: the C++ writer does not report an error when closing the file, so a
    disk that fills up on the last buffered bytes would otherwise leave a truncated file."""
    expected = set(net._collect_params_with_prefix())
    with atomic_path(path) as tmp:
        try:
            net.save_parameters(tmp)
            saved = set(mx.nd.load(tmp))
        except mx.base.MXNetError as e:
            raise write_error(path, e) from None
        if saved != expected:
            raise OSError(errno.EIO, 'incomplete parameter file (%d of %d arrays)'
                          % (len(saved & expected), len(expected)), path)


def save_states(trainer, path):
    with atomic_path(path) as tmp:
        try:
            trainer.save_states(tmp)
        except OSError as e:
            if e.filename:
                raise
            # Python's write() reports ENOSPC without naming the file.
            raise OSError(e.errno, e.strerror, path) from None


def save(save_dir, net, trainer, meta, is_best, with_states=True):
    """Write checkpoint `meta['epoch']` and move last (and best) onto it."""
    stem = 'ckpt-%04d' % meta['epoch']
    meta = dict(meta, params=stem + '.params', states=stem + '.states' if with_states else None)
    try:
        save_params(net, os.path.join(save_dir, meta['params']))
        if with_states:
            save_states(trainer, os.path.join(save_dir, meta['states']))
        write_json(os.path.join(save_dir, 'last.json'), meta)
        if is_best:
            write_json(os.path.join(save_dir, 'best.json'), meta)
    finally:
        # On failure this removes the new files no pointer names yet; on success, the old pair.
        _prune(save_dir)
    return meta


def _referenced(save_dir):
    keep = set()
    for name in ('last.json', 'best.json'):
        try:
            with open(os.path.join(save_dir, name)) as f:
                m = json.load(f)
            keep.update(v for v in (m.get('params'), m.get('states')) if v)
        except (OSError, ValueError):
            pass
    return keep


def _prune(save_dir):
    keep = _referenced(save_dir)
    # Temporary files of writes a kill interrupted (this process writes nothing meanwhile).
    stale = glob.glob(os.path.join(save_dir, '.*.partial*'))
    for path in glob.glob(os.path.join(save_dir, 'ckpt-*')) + stale:
        if os.path.basename(path) not in keep:
            try:
                os.remove(path)
            except OSError:
                pass


def locate(spec):
    """A run folder, a pointer/.json or a .params -> (metadata dict, folder)."""
    if os.path.isdir(spec):
        path = os.path.join(spec, 'last.json')
    elif spec.endswith('.params') or spec.endswith('.states'):
        m = re.match(r'(.*)\.(params|states)$', spec)
        path = m.group(1) + '.json'
        if not os.path.exists(path):  # ckpt-NNNN.params: find the pointer naming it
            folder = os.path.dirname(spec) or '.'
            for name in ('last.json', 'best.json'):
                p = os.path.join(folder, name)
                if os.path.exists(p) and _load(p).get('params') == os.path.basename(spec):
                    path = p
                    break
    else:
        path = spec
    if not os.path.exists(path):
        raise CheckpointError('no checkpoint at %s (expected a run folder with last.json, or '
                              'a checkpoint .json/.params)' % spec)
    meta = _load(path)
    folder = os.path.dirname(os.path.abspath(path))
    for key in ('params', 'states'):
        if meta.get(key) and not os.path.exists(os.path.join(folder, meta[key])):
            raise CheckpointError('%s names %s, which is missing' % (path, meta[key]))
    return meta, folder


def _load(path):
    try:
        with open(path) as f:
            meta = json.load(f)
        meta['epoch'], meta['model']
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError('unreadable checkpoint metadata %s (%s)' % (path, e)) from None
    return meta
