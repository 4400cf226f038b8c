"""What every packer shares: errors, downloads, the one RecordIO writer and the one verifier.

Layout of a packed split `DIR/<name>`:
    <name>.rec, <name>.idx    MXNet indexed RecordIO (what ImageRecordIter reads)
    <name>.manifest.json      written last; its presence and agreement with the pair is what
                              "complete" means (a killed run leaves no manifest, so it never
                              looks complete)
"""
import contextlib
import errno
import hashlib
import json
import logging
import os
import signal
import sys
import time

import numpy as np

from dmrnet.utils.files import atomic_path, disk_nearly_full, remove_stale_partials

log = logging.getLogger('dmrnet.data')

MANIFEST_VERSION = 1


class DataError(Exception):
    """A problem with input or packed data: names the file, what was expected and the fix."""

    def __init__(self, path, expected, fix=None):
        self.path, self.expected, self.fix = str(path), expected, fix
        msg = '%s: %s' % (self.path, expected)
        if fix:
            msg += '; fix: %s' % fix
        super().__init__(msg)


class DatasetMissingError(DataError, FileNotFoundError):
    """A packed .rec/.idx (or a source file) that is not there."""

    def __str__(self):  # OSError would otherwise format its args as "[Errno ...]"
        return self.args[0]


class Terminated(KeyboardInterrupt):
    """SIGTERM: unwinds like Ctrl-C, so that every temporary file is removed on the way out."""


def _terminate(signum, frame):
    raise Terminated()


def run_cli(main, argv=None):
    """Run a packer's main(argv): data problems become one line on stderr and exit status 2; a
    full disk one line and status 2; Ctrl-C (130) and SIGTERM (143) one line. In every case
    the temporary files are gone and what was complete before is untouched."""
    import mxnet as mx
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        summary = main(argv)
    except DataError as e:
        _fail('error: %s' % e, 2)
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        _fail('%s: nothing partial was left behind' % ('terminated' if terminated
                                                       else 'interrupted'),
              128 + signal.SIGTERM if terminated else 130)
    except (OSError, mx.base.MXNetError) as e:
        path = getattr(e, 'filename', None) or (argv_out(argv) or '.')
        full = getattr(e, 'errno', None) in (errno.ENOSPC, errno.EDQUOT) or (
            isinstance(e, mx.base.MXNetError) and disk_nearly_full(path))
        if not full:
            raise
        _fail('error: no space left on the disk of %s: free some space (or pack elsewhere with '
              '--out) and run the same command again; nothing partial was left behind' % path, 2)
    finally:
        signal.signal(signal.SIGTERM, previous)
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


# --------------------------------------------------------------------------------------------
# Source files

def md5sum(path, chunk=1 << 20):
    h = hashlib.md5()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def check_md5(path, md5, fix):
    got = md5sum(path)
    if got != md5:
        raise DataError(path, 'md5 %s, expected %s (corrupt or truncated download?)' % (got, md5),
                        fix)


def remove_empty_folders(folder, root):
    """Remove `folder` and its parents up to `root` (included) while they are empty."""
    folder, root = os.path.abspath(folder), os.path.abspath(root)
    while folder == root or folder.startswith(root + os.sep):
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = os.path.dirname(folder)


def download(url, dest, md5, fix):
    """Fetch `url` to `dest` (atomically) and verify its md5.

    DMRNET_NO_DOWNLOAD=1 turns any download into an error, so that tests (and offline users) can
    be sure nothing touches the network.
    """
    if os.environ.get('DMRNET_NO_DOWNLOAD'):
        raise DataError(dest, 'a download of %s was attempted with DMRNET_NO_DOWNLOAD set' % url,
                        fix)
    if os.path.exists(dest) and md5sum(dest) == md5:
        log.info('%s already downloaded and verified', dest)
        return dest
    import urllib.request
    from tqdm import tqdm
    log.info('downloading %s -> %s', url, dest)
    # The folders this download creates (data/<name>/, data/ itself on a first run): a failed
    # download removes them again, so that no empty pack folder looks like a started one.
    created = os.path.dirname(os.path.abspath(dest))
    while not os.path.isdir(os.path.dirname(created)):
        created = os.path.dirname(created)
    if os.path.isdir(created):
        created = None
    try:
        with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=60) as resp, \
                open(tmp, 'wb') as out:
            total = int(resp.headers.get('Content-Length') or 0) or None
            with tqdm(total=total, unit='B', unit_scale=True, desc=os.path.basename(dest)) as bar:
                for block in iter(lambda: resp.read(1 << 20), b''):
                    out.write(block)
                    bar.update(len(block))
            out.flush()
            check_md5(tmp, md5, fix)
    except BaseException as e:
        if created is not None:
            remove_empty_folders(os.path.dirname(os.path.abspath(dest)), created)
        if not isinstance(e, OSError):
            raise
        # Retrying the same command rarely helps offline: say how to bring the file in by hand.
        raise DataError(url, 'download failed (%s)' % e,
                        'fetch it on a machine with access, copy it to %s (it is verified by '
                        'md5) and run the same command again; or give the local copy with '
                        '--src' % dest) from None
    return dest


# --------------------------------------------------------------------------------------------
# Writing

def encode_png(rgb):
    """Lossless encoding of an HxWx3 RGB uint8 image (MXNet decodes with OpenCV, hence BGR)."""
    import cv2
    ok, buf = cv2.imencode('.png', np.ascontiguousarray(rgb[:, :, ::-1]),
                           [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise RuntimeError('PNG encoding failed')
    return buf.tobytes()


def paths(out_dir, name):
    base = os.path.join(out_dir, name)
    return base + '.rec', base + '.idx', base + '.manifest.json'


class ChannelStats:
    """Per-channel mean/std (RGB, 0-255) of uint8 NxHxWx3 batches.

    Kept as per-channel histograms of the 256 grey levels: exact, and no float copy of the
    data (the CIFAR training set would be 1.2 GB as float64).
    """

    def __init__(self):
        self.hist = np.zeros((3, 256), dtype=np.int64)

    @property
    def n(self):
        return int(self.hist[0].sum())

    def update(self, images, chunk=1 << 22):
        x = np.asarray(images, dtype=np.uint8).reshape(-1, 3)
        offset = np.array([0, 256, 512], dtype=np.int32)
        for start in range(0, len(x), chunk):
            # One bincount over (channel, level) pairs; chunked to bound the int32 copy.
            keys = x[start:start + chunk].astype(np.int32) + offset
            self.hist += np.bincount(keys.ravel(), minlength=768).reshape(3, 256)

    def result(self):
        levels = np.arange(256, dtype=np.float64)
        n = self.hist.sum(1).astype(np.float64)
        mean = (self.hist * levels).sum(1) / n
        var = (self.hist * (levels - mean[:, None]) ** 2).sum(1) / n
        return [round(float(v), 4) for v in mean], [round(float(v), 4) for v in np.sqrt(var)]


def mean_std_path(out_dir, dataset):
    return os.path.join(out_dir, '%s_mean_std.json' % dataset)


def forget_mean_std(out_dir, dataset):
    """Called before (re)writing a dataset's records: the statistics file is written last and
    marks the dataset complete, so a repack stopped half-way must not find the old one."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(mean_std_path(out_dir, dataset))


def write_mean_std(out_dir, dataset, stats, split):
    mean, std = stats.result()
    path = mean_std_path(out_dir, dataset)
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        json.dump({'dataset': dataset, 'split': split, 'pixels': stats.n, 'mean': mean,
                   'std': std, 'channels': 'RGB', 'scale': '0-255'}, f, indent=1)
    return path


def write_records(out_dir, name, records, total=None, fix=None, meta=None):
    """Write `records` — an iterable of (label, encoded image bytes) — as `name` in `out_dir`.

    The pair is written under temporary names and renamed into place only once complete; the
    manifest (count, sizes, checksums, label histogram) is written after that, so an interrupted
    run leaves either the previous complete output or nothing that looks complete.
    """
    import mxnet as mx
    from tqdm import tqdm
    rec, idx, manifest = paths(out_dir, name)
    os.makedirs(out_dir, exist_ok=True)
    for path in remove_stale_partials(out_dir):
        log.info('removed %s, left by a packer that was killed', path)
    payload = hashlib.sha1()
    labels = {}
    count = 0
    start = time.time()
    # MXNet's im2rec users keep a .lst beside each pack (index, label, image): ours names the
    # record of each index, as the images come from arrays, not files.
    lst = os.path.splitext(rec)[0] + '.lst'
    with contextlib.ExitStack() as stack:
        tmp_rec = stack.enter_context(atomic_path(rec))
        tmp_idx = stack.enter_context(atomic_path(idx))
        listing = stack.enter_context(open(stack.enter_context(atomic_path(lst)), 'w'))
        writer = mx.recordio.MXIndexedRecordIO(tmp_idx, tmp_rec, 'w')
        try:
            with tqdm(records, total=total, unit='img', desc=name, smoothing=0.1,
                      mininterval=1.0, disable=None) as bar:
                for label, data in bar:
                    header = mx.recordio.IRHeader(0, float(label), count, 0)
                    packed = mx.recordio.pack(header, data)
                    writer.write_idx(count, packed)
                    listing.write('%d\t%f\t%s/%08d\n' % (count, float(label), name, count))
                    payload.update(packed)
                    labels[int(label)] = labels.get(int(label), 0) + 1
                    count += 1
        finally:
            writer.close()
            listing.close()
        if total is not None and count != total:
            raise DataError(rec, 'wrote %d records, expected %d' % (count, total), fix)
        # The old manifest goes first: from here until the new one exists the pair is incomplete.
        with contextlib.suppress(FileNotFoundError):
            os.remove(manifest)
    seconds = time.time() - start
    info = {'version': MANIFEST_VERSION, 'name': name, 'count': count,
            'rec_bytes': os.path.getsize(rec), 'idx_sha1': _sha1_file(idx),
            'payload_sha1': payload.hexdigest(),
            'labels': {str(k): v for k, v in sorted(labels.items())},
            'seconds': round(seconds, 2), 'meta': meta or {}}
    with atomic_path(manifest) as tmp, open(tmp, 'w') as f:
        json.dump(info, f, indent=1)
    log.info('%s: %d images in %.1f s (%.0f images/s)', rec, count, seconds,
             count / max(seconds, 1e-9))
    return info


def _sha1_file(path):
    h = hashlib.sha1()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Verification

def verify_records(out_dir, name, fix=None, deep=False, expected_count=None, classes=None):
    """Check that `name` is a complete pack; return its manifest or raise a DataError.

    The quick check (sizes, index checksum, count, record headers and, with `classes`, labels)
    costs little; `deep` re-reads every record and compares the payload checksum, which catches
    flipped bytes inside a record.
    """
    rec, idx, manifest = paths(out_dir, name)
    have_rec, have_idx = os.path.exists(rec), os.path.exists(idx)
    if not have_rec and not have_idx:
        raise DatasetMissingError(rec, 'missing (with its .idx)', fix)
    if not have_idx:
        raise DatasetMissingError(idx, 'missing: a .rec without its .idx cannot be read', fix)
    if not have_rec:
        raise DatasetMissingError(rec, 'missing: an .idx without its .rec', fix)
    if not os.path.exists(manifest):
        raise DatasetMissingError(rec, 'incomplete pack: no %s (written last; the packing run was '
                        'interrupted or the files come from elsewhere)'
                        % os.path.basename(manifest), fix)
    try:
        with open(manifest) as f:
            info = json.load(f)
        count, rec_bytes, idx_sha1 = info['count'], info['rec_bytes'], info['idx_sha1']
    except (ValueError, KeyError, TypeError):
        raise DataError(manifest, 'unreadable manifest', fix) from None
    if expected_count is not None and count != expected_count:
        raise DataError(rec, 'holds %d images, expected %d' % (count, expected_count), fix)
    size = os.path.getsize(rec)
    if size != rec_bytes:
        raise DataError(rec, '%d bytes, the manifest says %d (truncated or modified)'
                        % (size, rec_bytes), fix)
    if _sha1_file(idx) != idx_sha1:
        raise DataError(idx, 'index does not match its manifest (modified or from another pack)',
                        fix)
    if deep:
        _deep_check(rec, idx, info, fix)
    else:
        check_record_headers(rec, idx, fix, classes)
    return info


RECORD_MAGIC = 0xced7230a   # dmlc RecordIO: every record starts with it, then its length word
LENGTH_BITS = 29            # the length word's low bits; the top 3 flag a record split in parts


def check_record_headers(rec, idx, fix=None, classes=None):
    """Every record the index names starts with RecordIO's magic number and a length that stays
    inside the file: what MXNet's reader would otherwise find out mid-training, by aborting the
    process (`Check failed: p[0] == kMagic`). With `classes`, every record's label (MXNet's image
    record header follows: flag, then the label as float32) must be a whole number in
    0..classes-1: softmax cross-entropy takes 99 or -1 without a word. Reads 16 bytes a record
    (the pages holding the headers), not the payloads: cheap enough for every start
    (docs/DATA.md gives timings)."""
    import numpy as np
    offsets = np.loadtxt(idx, dtype=np.int64, usecols=1, ndmin=1, comments=None)
    size = os.path.getsize(rec)
    if offsets.size == 0:
        return
    width = 16 if classes else 8
    if offsets.min() < 0 or offsets.max() + width > size:
        raise DataError(idx, 'an entry points outside %s (%d bytes)' % (rec, size), fix)
    data = np.memmap(rec, dtype=np.uint8, mode='r')
    at = offsets[:, None] + np.arange(width)
    raw = np.ascontiguousarray(data[at])
    words = raw[:, :8].copy().view('<u4').reshape(-1, 2)
    bad = np.flatnonzero(words[:, 0] != RECORD_MAGIC)
    ends = offsets + 8 + (words[:, 1] & ((1 << LENGTH_BITS) - 1))
    bad = np.union1d(bad, np.flatnonzero(ends > size))
    if bad.size:
        raise DataError(rec, '%d record(s) damaged, the first at byte %d (index entry %d): '
                        'repack it' % (bad.size, offsets[bad[0]], bad[0]), fix)
    if classes:
        flags = raw[:, 8:12].copy().view('<u4').ravel()
        labels = raw[:, 12:16].copy().view('<f4').ravel()
        single = flags == 0   # a label array (flag > 0) is not a class index
        wrong = np.flatnonzero(single & ~((labels >= 0) & (labels < classes) &
                                          (labels == np.round(labels))))
        if wrong.size:
            raise DataError(rec, '%d record(s) labelled outside the %d classes 0-%d, the first '
                            'labelled %g (index entry %d)' % (wrong.size, classes, classes - 1,
                                                              labels[wrong[0]], wrong[0]), fix)


def _deep_check(rec, idx, info, fix):
    import mxnet as mx
    payload = hashlib.sha1()
    reader = mx.recordio.MXIndexedRecordIO(idx, rec, 'r')
    try:
        if len(reader.keys) != info['count']:
            raise DataError(idx, '%d entries, expected %d' % (len(reader.keys), info['count']),
                            fix)
        for key in reader.keys:
            try:
                data = reader.read_idx(key)
            except mx.base.MXNetError:
                raise DataError(rec, 'record %d unreadable (corrupt)' % key, fix) from None
            payload.update(data)
    finally:
        reader.close()
    if payload.hexdigest() != info['payload_sha1']:
        raise DataError(rec, 'record contents differ from those written (corrupt)', fix)


def pending(out_dir, names, fix=None, deep=True, counts=None):
    """The splits in `names` that do not verify and so must be (re)packed.

    Absent splits mean "not done yet"; splits that exist but fail verification are reported.
    """
    todo = []
    for i, name in enumerate(names):
        try:
            verify_records(out_dir, name, fix, deep=deep,
                           expected_count=counts[i] if counts else None)
        except DatasetMissingError as e:
            if os.path.exists(paths(out_dir, name)[0]):
                log.warning('repacking: %s', e)
            todo.append(name)
        except DataError as e:
            log.warning('repacking: %s', e)
            todo.append(name)
    return todo


def complete(out_dir, names, fix=None, deep=True, counts=None, extra_files=()):
    """True when every split in `names` verifies (and `extra_files` exist), so a re-run can
    skip all work."""
    if not all(os.path.exists(f) for f in extra_files):
        return False
    return not pending(out_dir, names, fix, deep, counts)


def remove_pack(out_dir, name):
    """Remove a split, manifest first (so it never looks complete while half removed)."""
    rec, idx, manifest = paths(out_dir, name)
    for p in (manifest, rec, idx, os.path.splitext(rec)[0] + '.lst'):
        with contextlib.suppress(FileNotFoundError):
            os.remove(p)


# --------------------------------------------------------------------------------------------
# Splits

def per_class_holdout(labels, per_class, seed, num_classes=None, source='labels'):
    """Boolean mask picking `per_class` random items of every class, reproducibly from `seed`.

    Drawn class by class in label order, so the choice for one class does not depend on how many
    items the other classes have.
    """
    labels = np.asarray(labels).ravel()
    num_classes = num_classes or int(labels.max()) + 1
    rng = np.random.RandomState(seed)
    mask = np.zeros(labels.shape[0], dtype=bool)
    for c in range(num_classes):
        where = np.flatnonzero(labels == c)
        if where.size < per_class:
            raise DataError(source, 'class %d has %d images, the split needs %d'
                            % (c, where.size, per_class))
        mask[rng.choice(where, per_class, replace=False)] = True
    return mask
