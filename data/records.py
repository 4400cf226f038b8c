"""The packs: the one RecordIO writer and the one verifier, for our packers' packs (with a
manifest) and for packs made elsewhere (by path, no manifest).

Layout of a packed split `DIR/<name>`:
    <name>.rec, <name>.idx    MXNet indexed RecordIO (what ImageRecordIter reads)
    <name>.lst                im2rec's listing (index, label, a name per record)
    <name>.manifest.json      written last; its presence and agreement with the pair is what
                              "complete" means (a killed run leaves no manifest, so it never
                              looks complete)
"""
import collections
import contextlib
import hashlib
import json
import logging
import os
import time

import numpy as np

from dmrnet.data.errors import DataError, DatasetMissingError
from dmrnet.data.sources import file_digest
from dmrnet.utils.files import atomic_path, remove_stale_partials

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
RECORD_MAGIC = 0xced7230a   # dmlc RecordIO: every record starts with it, then its length word
LENGTH_BITS = 29            # the length word's low bits; the top 3 flag a record split in parts


class Pack(collections.namedtuple('Pack', 'rec idx fix')):
    """A pack whose files have been checked (verify_records, external_pack): what an iterator
    reads as it is, and `fix`, what repairs it should a record prove unreadable mid-training."""
    __slots__ = ()


def paths(out_dir, name):
    """(.rec, .idx, manifest) of the split `name` in `out_dir`."""
    base = os.path.join(out_dir, name)
    return base + '.rec', base + '.idx', base + '.manifest.json'


# --------------------------------------------------------------------------------------------
# Writing

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
            'rec_bytes': os.path.getsize(rec), 'idx_sha1': file_digest(idx, 'sha1'),
            'payload_sha1': payload.hexdigest(),
            'labels': {str(k): v for k, v in sorted(labels.items())},
            'seconds': round(seconds, 2), 'meta': meta or {}}
    with atomic_path(manifest) as tmp, open(tmp, 'w') as f:
        json.dump(info, f, indent=1)
    log.info('%s: %d images in %.1f s (%.0f images/s)', rec, count, seconds,
             count / max(seconds, 1e-9))
    return info


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
    if file_digest(idx, 'sha1') != idx_sha1:
        raise DataError(idx, 'index does not match its manifest (modified or from another pack)',
                        fix)
    if deep:
        _deep_check(rec, idx, info, fix)
    else:
        check_record_headers(rec, idx, fix, classes)
    return info


def external_pack(rec, idx=None, classes=None):
    """The Pack of .rec and .idx made elsewhere (MXNet's im2rec, a lab's existing ImageNet pack),
    taken by path: no manifest, so what is checked is that both files exist and that every
    record's header is sound (and with `classes`, its label one of them). `idx` defaults to the
    .rec's name with .idx."""
    idx = idx or os.path.splitext(rec)[0] + '.idx'
    fix = 'give the pack\'s .rec and .idx (im2rec PREFIX ROOT writes PREFIX.rec + PREFIX.idx)'
    for path in (rec, idx):
        if not os.path.exists(path):
            raise DatasetMissingError(path, 'missing', fix)
    check_record_headers(rec, idx, 'repack it (im2rec) with labels 0 to classes-1', classes)
    return Pack(rec, idx, 'repack it (im2rec)')


def count_records(idx):
    """Records an .idx names."""
    with open(idx) as f:
        return sum(1 for line in f if line.strip())


def check_record_headers(rec, idx, fix=None, classes=None):
    """Every record the index names starts with RecordIO's magic number and a length that stays
    inside the file: what MXNet's reader would otherwise find out mid-training, by aborting the
    process (`Check failed: p[0] == kMagic`). With `classes`, every record's label (MXNet's image
    record header follows: flag, then the label as float32) must be a whole number in
    0..classes-1: softmax cross-entropy takes 99 or -1 without a word. Reads 16 bytes a record
    (the pages holding the headers), not the payloads: cheap enough for every start
    (docs/DATA.md gives timings)."""
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


# --------------------------------------------------------------------------------------------
# What a packer still has to do

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
