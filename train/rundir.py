"""The run folder: the one reader and writer of what a training run leaves behind.

Layout of DIR:
    log.jsonl                             one JSON object per finished epoch
    ckpt-NNNN.params / ckpt-NNNN.states   written atomically, NNNN = epochs completed
    last.json, best.json                  pointers (full metadata) written after the pair
    summary.json                          written when the run has finished (its mark)
    best-*, last-*                        exported models (train/loop.py), curves.png, train.log
Each file is renamed into place only once complete (parameters only after reading them back),
the pointers move only after their files exist, and older pairs are deleted last; the files of
a checkpoint that failed half-way are deleted too. A kill or a full disk at any moment therefore
leaves last.json naming a complete, loadable checkpoint, and no stray files.

Only writing and reading checkpoints needs MXNet (imported there): the tools that read what runs
left behind (the experiment runner and report, the GPU check's parent process) read the folder
through this module without loading it.
"""
import errno
import fcntl
import glob
import json
import os
import re

from dmrnet.train.errors import CheckpointError, FolderInUse, mxnet_reason
from dmrnet.utils.files import atomic_path, disk_nearly_full, write_json, write_jsonl

# Every file name of a run folder, here and nowhere else.
LOG, SUMMARY, LAST, BEST = 'log.jsonl', 'summary.json', 'last.json', 'best.json'
TRAIN_LOG = 'train.log'          # the run's log lines (rank 0)
OUTPUT = 'train.out'             # stdout and stderr of a run the experiment runner started
RUNNER_RECORD = 'run.json'       # the experiment runner's description of the run
CURVES = 'curves.png'            # Figure 7-style curves, redrawn after every epoch
LOCK = '.lock'
BEST_EXPORT, LAST_EXPORT = 'best', 'last'   # prefixes of the exported models
CHECKPOINT = 'ckpt-%04d'         # NNNN = epochs completed; .params and .states
CHECKPOINTS = 'ckpt-*'
PARTIAL = '.*.partial*'          # a write a kill interrupted (utils/files.atomic_path)


def export_prefix(run_dir, which):
    """The prefix of the run's exported model `which` ('best' or 'last'): PREFIX-symbol.json,
    PREFIX-NNNN.params, PREFIX-meta.json."""
    if which not in (BEST_EXPORT, LAST_EXPORT):
        raise ValueError('a run exports %s and %s, not %r' % (BEST_EXPORT, LAST_EXPORT, which))
    return os.path.join(run_dir, which)



def write_error(path, err):
    """An OSError for a write that MXNet's C++ writer could not finish: it raises MXNetError
    ("FileStream.Write incomplete"), not OSError, when the disk fills up."""
    code = errno.ENOSPC if disk_nearly_full(path) else errno.EIO
    detail = str(err).strip().split('\n')[-1].rsplit(': ', 1)[-1]
    return OSError(code, '%s (%s)' % (os.strerror(code), detail), path)


def save_params(net, path):
    """Write and read back: the C++ writer does not report an error when closing the file, so a
    disk that fills up on the last buffered bytes would otherwise leave a truncated file."""
    import mxnet as mx
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
    """The optimizer states (momentum), in MXNet's array format rather than a pickle."""
    import mxnet as mx
    from dmrnet.train.distributed import trainer_states
    arrays = trainer_states(trainer)
    with atomic_path(path) as tmp:
        try:
            mx.nd.save(tmp, arrays)
            saved = set(mx.nd.load(tmp))
        except mx.base.MXNetError as e:
            raise write_error(path, e) from None
        if saved != set(arrays):
            raise OSError(errno.EIO, 'incomplete optimizer-state file', path)


def load_states(trainer, path):
    """Restore optimizer states written by save_states; CheckpointError when the file is not
    one (damaged, or another program's)."""
    import mxnet as mx
    from dmrnet.train.distributed import restore_trainer_states
    try:
        arrays = mx.nd.load(path)
        if not isinstance(arrays, dict):
            raise ValueError('no named arrays')
        restore_trainer_states(trainer, arrays)
    except (mx.base.MXNetError, ValueError) as e:
        reason = mxnet_reason(e) if isinstance(e, mx.base.MXNetError) else str(e)
        raise CheckpointError('unreadable optimizer states %s (%s)' % (path, reason)) from None


def save(save_dir, net, trainer, meta, is_best, with_states=True):
    """Write checkpoint `meta['epoch']` and move last (and best) onto it."""
    stem = CHECKPOINT % meta['epoch']
    meta = dict(meta, params=stem + '.params', states=stem + '.states' if with_states else None)
    try:
        save_params(net, os.path.join(save_dir, meta['params']))
        if with_states:
            save_states(trainer, os.path.join(save_dir, meta['states']))
        write_json(os.path.join(save_dir, LAST), meta)
        if is_best:
            write_json(os.path.join(save_dir, BEST), meta)
    finally:
        # On failure this removes the new files no pointer names yet; on success, the old pair.
        _prune(save_dir)
    return meta


def _referenced(save_dir):
    keep = set()
    for name in (LAST, BEST):
        try:
            with open(os.path.join(save_dir, name)) as f:
                m = json.load(f)
            keep.update(v for v in (m.get('params'), m.get('states')) if v)
        except (OSError, ValueError):
            pass
    return keep


def checkpoint_files(save_dir):
    """The names of the files a resume reads besides the log: the pointers that exist and the
    checkpoint files they name."""
    pointers = [name for name in (LAST, BEST) if os.path.exists(os.path.join(save_dir, name))]
    return pointers + sorted(_referenced(save_dir))


def _prune(save_dir):
    keep = _referenced(save_dir)
    # Temporary files of writes a kill interrupted (this process writes nothing meanwhile).
    stale = glob.glob(os.path.join(save_dir, PARTIAL))
    checkpoints = glob.glob(os.path.join(save_dir, CHECKPOINTS))
    for name in checkpoints + stale:
        if os.path.basename(name) not in keep:
            try:
                os.remove(name)
            except OSError:
                pass


def locate(spec):
    """A run folder, a pointer/.json or a .params -> (metadata dict, folder)."""
    if os.path.isdir(spec):
        path = os.path.join(spec, LAST)
    elif spec.endswith('.params') or spec.endswith('.states'):
        m = re.match(r'(.*)\.(params|states)$', spec)
        path = m.group(1) + '.json'
        if not os.path.exists(path):  # ckpt-NNNN.params: find the pointer naming it
            folder = os.path.dirname(spec) or '.'
            for name in (LAST, BEST):
                p = os.path.join(folder, name)
                named = _load(p) if os.path.exists(p) else {}
                if os.path.basename(spec) in (named.get('params'), named.get('states')):
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


def run_folder(save_dir, resume, default):
    """The folder a run writes: --save-dir, else the folder of the checkpoint it resumes (a run
    folder, or the folder of a checkpoint .json/.params), else the default. The one rule, for
    the run itself and for what the command line says after an interruption."""
    if save_dir:
        return save_dir
    if resume:
        try:
            return locate(resume)[1]
        except CheckpointError:
            return resume if os.path.isdir(resume) else os.path.dirname(resume) or '.'
    return default


def model_record(params_path):
    """The model a .params file the project wrote holds, from the records beside it: an
    export's PREFIX-meta.json (PREFIX-NNNN.params: best-, last-, kept weights, tools/export.py's)
    or, for a checkpoint, its run folder's pointer (last.json / best.json: every checkpoint of a
    run is of the run's model). A dict with model, kwargs (the model's arguments), dataset,
    classes, fused, mean and std (None: the data set's) and source (the record read), or None
    when there is no record."""
    from dmrnet.symbols.deploy import meta_path, read_export_meta
    m = re.match(r'(.*)-\d{4}\.params$', params_path)
    records = []
    if m:
        try:
            records.append((meta_path(m.group(1)), read_export_meta(m.group(1))))
        except ValueError:
            pass  # a damaged meta file: the run folder's pointers may still say
    folder = os.path.dirname(os.path.abspath(params_path))
    for name in (LAST, BEST):
        try:
            records.append((os.path.join(folder, name), _load(os.path.join(folder, name))))
        except CheckpointError:
            pass
    for source, record in records:
        if not isinstance(record, dict) or not isinstance(record.get('model'), str):
            continue
        kwargs = record.get('model_kwargs', record.get('kwargs')) or {}
        # the normalisation the weights were trained with: an export's input description, or
        # the run's --rgb-mean/--rgb-std (None: the data set's own)
        fed = record.get('input') or record.get('args') or {}
        return dict(model=record['model'], kwargs=dict(kwargs), dataset=record.get('dataset'),
                    classes=record.get('classes'), fused=bool(record.get('fused')),
                    mean=fed.get('mean'), std=fed.get('std'), source=source)
    return None


def _load(path):
    try:
        with open(path) as f:
            meta = json.load(f)
        meta['epoch'], meta['model']
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError('unreadable checkpoint metadata %s (%s)' % (path, e)) from None
    return meta


# ------------------------------------------------------------------------------------------
# log.jsonl and summary.json


def read_log(run_dir, upto=None):
    """The epoch records of a run folder (or of a log.jsonl path), in epoch order; a resumed
    run may have rewritten epochs, and the last record of each epoch wins. With `upto`, only
    epochs <= upto. Unreadable lines are skipped (a line is written whole, but a log edited by
    hand should not stop a resume)."""
    path = os.path.join(run_dir, LOG) if os.path.isdir(run_dir) else run_dir
    by_epoch = {}
    if not os.path.exists(path):
        return []
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and 'epoch' in rec:
                by_epoch[rec['epoch']] = rec
    return [by_epoch[e] for e in sorted(by_epoch) if upto is None or e <= upto]


def write_log(run_dir, records):
    write_jsonl(os.path.join(run_dir, LOG), records)


def last_record(run_dir):
    """The newest epoch record, or {}."""
    records = read_log(run_dir)
    return records[-1] if records else {}


def read_summary(run_dir):
    """summary.json of a finished run, or None while it has not finished."""
    try:
        with open(os.path.join(run_dir, SUMMARY)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def write_summary(run_dir, summary):
    write_json(os.path.join(run_dir, SUMMARY), summary)


def mark_unfinished(run_dir):
    """A run extended by --resume is not finished until it ends again."""
    try:
        os.remove(os.path.join(run_dir, SUMMARY))
    except FileNotFoundError:
        pass


def json_equal(a, b):
    """Whether two values are equal as JSON stores them (tuples read back as lists)."""
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def is_finished(run_dir):
    return os.path.exists(os.path.join(run_dir, SUMMARY))


def has_checkpoint(run_dir):
    return os.path.exists(os.path.join(run_dir, LAST))


def holds_run(run_dir):
    """Whether a folder already holds a run (a checkpoint or a finished summary)."""
    return has_checkpoint(run_dir) or is_finished(run_dir)


def model_name(run_dir):
    """The model a run folder trains, from its checkpoint pointer; None if unknown."""
    try:
        with open(os.path.join(run_dir, LAST)) as f:
            return json.load(f)['model']
    except (OSError, ValueError, KeyError):
        return None


# ------------------------------------------------------------------------------------------
# One run, one process


class FolderLock:
    """An exclusive OS lock on DIR/.lock while this process writes DIR. The kernel releases it
    when the process ends, however it ends, so a killed run never leaves a stale lock; the file
    holds the holder's PID for the message a second process gets."""

    def __init__(self, run_dir):
        os.makedirs(run_dir, exist_ok=True)
        self.path = os.path.join(run_dir, LOCK)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors='replace').strip() or 'unknown'
            os.close(self.fd)
            error = FolderInUse('%s is in use by process %s (another training writes there); '
                                'wait for it to end or choose another --save-dir'
                                % (run_dir, holder))
            error.holder = holder
            raise error from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None
