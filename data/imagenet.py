"""Pack ILSVRC2012 into RecordIO with MXNet's own im2rec encoder, in parallel.

    python data/imagenet.py --src ILSVRC_ROOT --out DIR [--train-size 480] [--val-size 256]
                            [--quality 95] [--workers N] [--val-labels FILE] [--devkit-meta FILE]

ILSVRC_ROOT/train/<wnid>/*.JPEG; ILSVRC_ROOT/val either in <wnid> folders too, or flat with a
label file (--val-labels, else the first of val.txt, LOC_val_solution.csv,
ILSVRC2012_validation_ground_truth.txt found in ILSVRC_ROOT or ILSVRC_ROOT/val). A label file has
either "filename label" lines or one label per line for the sorted file names; a label is a wnid
or an integer, 0-based in sorted-wnid order, unless --devkit-meta (the devkit's meta.mat) says
integers are the devkit's 1-based ILSVRC2012_IDs. Class index = position of the wnid in sorted
order, written to DIR/imagenet_synsets.txt. Images are re-encoded as JPEG with the shorter side
resized to --train-size / --val-size (the authors: 480 for training). The training set is stored
in a fixed random order so that distributed parts (contiguous ranges) each see every class.
"""
import argparse
import csv
import logging
import multiprocessing
import os
import queue
import re
import signal
import types

import numpy as np

from dmrnet.data import packcli, records
from dmrnet.data.errors import DataError, DatasetMissingError
from dmrnet.utils.files import atomic_path
from dmrnet.utils.runtime import usable_cores

log = logging.getLogger(__name__)

EXTS = ('.jpeg', '.jpg', '.png')
LABEL_FILES = ('val.txt', 'LOC_val_solution.csv', 'ILSVRC2012_validation_ground_truth.txt')
SHUFFLE_SEED = 100
WNID = re.compile(r'^n\d{8}$')


def fix_command(args):
    return 'python data/imagenet.py --src %s --out %s' % (args.src, args.out)


def images_in(folder):
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(EXTS)
                  and os.path.isfile(os.path.join(folder, f)))


def scan_train(root, fix):
    """(sorted wnids, [(relative path, label)]) of root/train/<wnid>/*."""
    train = os.path.join(root, 'train')
    if not os.path.isdir(train):
        raise DatasetMissingError(train, 'missing: expected train/<wnid>/*.JPEG', fix)
    wnids = sorted(d for d in os.listdir(train) if os.path.isdir(os.path.join(train, d)))
    if not wnids:
        raise DataError(train, 'no class folders: expected train/<wnid>/*.JPEG', fix)
    items = []
    for label, wnid in enumerate(wnids):
        files = images_in(os.path.join(train, wnid))
        if not files:
            raise DataError(os.path.join(train, wnid), 'empty class folder (expected '
                            '*.JPEG images)', fix)
        items += [(os.path.join('train', wnid, f), label) for f in files]
    return wnids, items


def _devkit_ids(meta_path, fix):
    """ILSVRC2012_ID -> wnid from the devkit's meta.mat."""
    import scipy.io
    try:
        synsets = scipy.io.loadmat(meta_path, squeeze_me=True)['synsets']
        return {int(s['ILSVRC2012_ID']): str(s['WNID']) for s in synsets}
    except Exception as e:
        raise DataError(meta_path, 'not the devkit meta.mat (%s)' % e, fix) from None


def read_label_file(path, files, wnids, fix, devkit_meta=None):
    """{filename: label} for flat validation images from one of the accepted label formats."""
    index = {w: i for i, w in enumerate(wnids)}
    by_id = _devkit_ids(devkit_meta, fix) if devkit_meta else None

    def to_label(token, line_no):
        token = token.strip()
        if WNID.match(token):
            if token not in index:
                raise DataError(path, 'line %d: wnid %s is not a training class'
                                % (line_no, token), fix)
            return index[token]
        try:
            value = int(token)
        except ValueError:
            raise DataError(path, 'line %d: %r is neither a wnid nor an integer label'
                            % (line_no, token), fix) from None
        if by_id is not None:
            return to_label(by_id.get(value, '?'), line_no)
        if not 0 <= value < len(wnids):
            raise DataError(path, 'line %d: label %d outside 0..%d (devkit IDs need '
                            '--devkit-meta meta.mat)' % (line_no, value, len(wnids) - 1),
                            fix)
        return value

    with open(path) as f:
        rows = [r for r in csv.reader(f, delimiter=',' if path.endswith('.csv') else ' ',
                                      skipinitialspace=True) if r]
    if rows and rows[0][0] == 'ImageId':   # Kaggle: ImageId,"wnid x y x y ..."
        rows = [[r[0], r[1].split()[0]] for r in rows[1:]]
    labels = {}
    if rows and all(len(r) == 1 for r in rows):   # one label per line, sorted file names
        if len(rows) != len(files):
            raise DataError(path, '%d labels for %d validation images'
                            % (len(rows), len(files)), fix)
        return {f: to_label(r[0], i + 1) for i, (f, r) in enumerate(zip(files, rows))}
    stems = {os.path.splitext(f)[0]: f for f in files}
    for i, r in enumerate(rows):
        name = r[0] if r[0] in files else stems.get(os.path.splitext(r[0])[0])
        if name is None:
            raise DataError(path, 'line %d: no validation image %r' % (i + 1, r[0]), fix)
        labels[name] = to_label(r[-1], i + 1)
    missing = [f for f in files if f not in labels]
    if missing:
        raise DataError(path, 'no label for %d validation images (e.g. %s)'
                        % (len(missing), missing[0]), fix)
    return labels


def scan_val(root, wnids, fix, label_file=None, devkit_meta=None):
    val = os.path.join(root, 'val')
    if not os.path.isdir(val):
        raise DatasetMissingError(val, 'missing: expected val/<wnid>/*.JPEG or flat '
                                  'val/*.JPEG with a label file', fix)
    folders = sorted(d for d in os.listdir(val) if os.path.isdir(os.path.join(val, d)))
    if folders:
        unknown = [d for d in folders if d not in wnids]
        if unknown:
            raise DataError(os.path.join(val, unknown[0]), 'validation class folder '
                            'that is not a training class', fix)
        index = {w: i for i, w in enumerate(wnids)}
        items = [(os.path.join('val', d, f), index[d]) for d in folders
                 for f in images_in(os.path.join(val, d))]
    else:
        files = images_in(val)
        if not files:
            raise DataError(val, 'no images: expected val/<wnid>/*.JPEG or flat '
                            'val/*.JPEG with a label file', fix)
        if label_file is None:
            found = [os.path.join(d, n) for n in LABEL_FILES for d in (root, val)
                     if os.path.isfile(os.path.join(d, n))]
            if not found:
                raise DataError(val, 'flat validation images but no label file (%s); '
                                'pass --val-labels FILE' % ', '.join(LABEL_FILES), fix)
            label_file = found[0]
        labels = read_label_file(label_file, files, wnids, fix, devkit_meta)
        items = [(os.path.join('val', f), labels[f]) for f in files]
    if not items:
        raise DataError(val, 'no validation images found', fix)
    return items


# ---------------------------------------------------------------------------------------------
# Encoding: one worker pool running im2rec's image_encode (read, resize shorter side, JPEG)

_ARGS = None


def _init(args):
    global _ARGS
    _ARGS = args


def _init_worker(args):
    # Forked from a packer whose SIGTERM handler unwinds like Ctrl-C; pool.terminate() expects
    # workers that just die (a worker unwinding printed a traceback, or could hold the pool up).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _init(args)


def _encode(job):
    from mxnet.tools import im2rec
    import mxnet as mx
    i, rel, label = job
    out = queue.Queue()
    im2rec.image_encode(_ARGS, i, [i, rel, float(label)], out)
    _, packed, _ = out.get()
    if packed is None:
        return i, rel, None
    return i, rel, mx.recordio.unpack(packed)[1]


def encode_all(root, items, size, quality, workers, fix):
    """(label, JPEG bytes) for `items` in order, encoded by `workers` processes."""
    args = types.SimpleNamespace(root=root, pass_through=False, color=1, center_crop=False,
                                 resize=size, quality=quality, encoding='.jpg',
                                 pack_label=False)
    jobs = [(i, rel, label) for i, (rel, label) in enumerate(items)]
    if workers <= 1:
        _init(args)
        results = map(_encode, jobs)
        pool = None
    else:
        pool = multiprocessing.Pool(workers, initializer=_init_worker,
                                    initargs=(args,))
        results = pool.imap(_encode, jobs, chunksize=16)
    try:
        for (i, rel, data), (_, label) in zip(results, items):
            if data is None:
                raise DataError(os.path.join(root, rel), 'unreadable image (OpenCV '
                                'could not decode it)', fix)
            yield label, data
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0])
    p.add_argument('--src', required=True, help='ILSVRC2012 root with train/ and val/')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--train-size', type=int, default=480, help='shorter side of training images')
    p.add_argument('--val-size', type=int, default=256, help='shorter side of validation images')
    p.add_argument('--quality', type=int, default=95, help='JPEG quality')
    p.add_argument('--workers', type=int, default=usable_cores(), help='encoding processes')
    p.add_argument('--val-labels', help='label file for a flat val/ folder')
    p.add_argument('--devkit-meta', help="devkit meta.mat: integer labels are ILSVRC2012_IDs")
    p.add_argument('--deep-verify', action='store_true',
                   help='re-read every record when checking an existing pack')
    p.add_argument('--force', action='store_true', help='repack even if complete')
    args = p.parse_args(argv)
    fix = fix_command(args)
    names = ['imagenet_train', 'imagenet_val']
    synsets = os.path.join(args.out, 'imagenet_synsets.txt')
    # Split by split: a failure while packing val must not cost a repack of train.
    todo = names if args.force or not os.path.exists(synsets) else \
        records.pending(args.out, names, fix, deep=args.deep_verify)
    if not todo:
        return 'imagenet: %s already complete and verified, nothing to do' % args.out
    if not os.path.isdir(args.src):
        raise DatasetMissingError(args.src, 'no such folder (expected the ILSVRC2012 '
                                  'root with train/ and val/)', fix)
    wnids, train = scan_train(args.src, fix)
    val = scan_val(args.src, wnids, fix, args.val_labels, args.devkit_meta)
    os.makedirs(args.out, exist_ok=True)
    with atomic_path(synsets) as tmp, open(tmp, 'w') as f:
        f.write(''.join(w + '\n' for w in wnids))
    order = np.random.RandomState(SHUFFLE_SEED).permutation(len(train))
    train = [train[i] for i in order]
    for name, items, size in (('imagenet_train', train, args.train_size),
                              ('imagenet_val', val, args.val_size)):
        if name not in todo:
            log.info('%s already complete and verified, kept', name)
            continue
        records.write_records(args.out, name, encode_all(args.src, items, size, args.quality,
                                                         args.workers, fix),
                              total=len(items), fix=fix,
                              meta={'shorter_side': size, 'quality': args.quality,
                                    'classes': len(wnids)})
    return 'imagenet: wrote %d train + %d val images (%d classes) to %s' % (
        len(train), len(val), len(wnids), os.path.abspath(args.out))


if __name__ == '__main__':
    packcli.run_cli(main)
