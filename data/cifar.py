"""Pack CIFAR-10 / CIFAR-100 (the official python pickles) into lossless RecordIO.

    python data/cifar.py --dataset cifar10 --out DIR [--src ARCHIVE_OR_FOLDER]

Without --src the official archive is downloaded into DIR and verified by md5. --src may be the
archive (verified too; --md5 none skips that for home-made archives) or the extracted
cifar-10-batches-py / cifar-100-python folder (or its parent). Writes <dataset>_train and
<dataset>_test .rec/.idx (PNG, so decoded pixels equal the source; CIFAR-100 with its fine
labels) and <dataset>_mean_std.json (per-channel statistics of the training set).
"""
import argparse
import logging
import os
import pickle
import tarfile

import numpy as np

from dmrnet.data import meanstd, packcli, png, records, sources
from dmrnet.data.errors import DataError, DatasetMissingError

log = logging.getLogger(__name__)

SOURCES = {
    'cifar10': dict(url='https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz',
                    md5='c58f30108f718f92721af3b95e74349a', folder='cifar-10-batches-py',
                    train=['data_batch_%d' % i for i in range(1, 6)], test=['test_batch'],
                    label_key=b'labels', classes=10, num_train=50000, num_test=10000),
    'cifar100': dict(url='https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz',
                     md5='eb9058c3a382ffc7106e4002c42a8d85', folder='cifar-100-python',
                     train=['train'], test=['test'],
                     label_key=b'fine_labels', classes=100, num_train=50000, num_test=10000),
}


def fix_command(dataset, out, src=None):
    return 'python data/cifar.py --dataset %s --out %s%s' % (
        dataset, out, ' --src ' + src if src else ' (downloads the official archive)')


class Source:
    """Reads the batch pickles from an archive (in memory, without extracting it to disk) or
    from a folder."""

    def __init__(self, dataset, path, fix):
        self.spec, self.path, self.fix = SOURCES[dataset], path, fix
        self.blobs = None
        if os.path.isdir(path):
            inner = os.path.join(path, self.spec['folder'])
            self.root = inner if os.path.isdir(inner) else path
            missing = [m for m in self.spec['train'] + self.spec['test']
                       if not os.path.isfile(os.path.join(self.root, m))]
            if missing:
                raise DataError(
                    path, 'not a %s folder: missing %s (expected the extracted %s)'
                    % (dataset, ', '.join(missing), self.spec['folder']), fix)
        elif os.path.isfile(path):
            # One sequential pass: a gzip stream cannot seek, so reading members out of
            # archive order would decompress it again for every batch.
            wanted = {'%s/%s' % (self.spec['folder'], m): m
                      for m in self.spec['train'] + self.spec['test']}
            self.blobs = {}
            try:
                with tarfile.open(path, 'r:gz') as tar:
                    for member in tar:
                        if member.name in wanted and member.isfile():
                            self.blobs[wanted[member.name]] = tar.extractfile(member).read()
            except (tarfile.TarError, EOFError, OSError, ValueError) as e:
                raise DataError(path, 'unreadable gzip tar archive, truncated or '
                                'corrupt (%s)' % e, fix) from None
            missing = [m for m in wanted.values() if m not in self.blobs]
            if missing:
                raise DataError(path, 'archive lacks %s/%s' % (
                    self.spec['folder'], ', '.join(missing)), fix)
        else:
            raise DatasetMissingError(path, 'no such archive or folder', fix)

    def batch(self, member):
        """(uint8 Nx32x32x3 RGB, int64 labels) of one pickled batch."""
        where = '%s/%s/%s' % (self.path, self.spec['folder'], member) if self.blobs is not None \
            else os.path.join(self.root, member)
        try:
            if self.blobs is not None:
                d = pickle.loads(self.blobs[member], encoding='bytes')
            else:
                with open(where, 'rb') as f:
                    d = pickle.load(f, encoding='bytes')
            data = np.asarray(d[b'data'], dtype=np.uint8)
            labels = np.asarray(d[self.spec['label_key']], dtype=np.int64)
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, OSError,
                tarfile.TarError, AttributeError) as e:
            raise DataError(where, 'not a CIFAR python batch (dict with b"data" and %r): '
                            '%s' % (self.spec['label_key'], e), self.fix) from None
        if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],) \
                or (labels.size and not 0 <= labels.min() <= labels.max()
                    < self.spec['classes']):
            raise DataError(where, 'expected Nx3072 uint8 data and N labels in '
                            '0..%d' % (self.spec['classes'] - 1), self.fix)
        # Rows hold the R, G and B planes of 32x32 images, one after the other.
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels

    def split(self, which):
        parts = [self.batch(m) for m in self.spec[which]]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n\n')[0])
    p.add_argument('--dataset', choices=sorted(SOURCES), required=True)
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--src', help='archive or extracted folder (default: download)')
    p.add_argument('--md5', help="expected archive md5 (default: the official one; 'none' "
                                 "skips the check)")
    p.add_argument('--force', action='store_true', help='repack even if complete')
    args = p.parse_args(argv)
    spec = SOURCES[args.dataset]
    fix = fix_command(args.dataset, args.out, args.src)
    names = ['%s_train' % args.dataset, '%s_test' % args.dataset]
    if not args.force and records.complete(args.out, names, fix, extra_files=[
            meanstd.json_path(args.out, args.dataset)]):
        return '%s: %s already complete and verified, nothing to do' % (args.dataset, args.out)

    src = args.src
    md5 = None if (args.md5 or '').lower() == 'none' else (args.md5 or spec['md5'])
    if src is None:
        src = sources.download(spec['url'], os.path.join(args.out, os.path.basename(spec['url'])),
                               spec['md5'], fix)
    elif os.path.isfile(src) and md5:
        sources.check_md5(src, md5, 'use the official %s, or run python data/cifar.py '
                          '--dataset %s --out %s (downloads it); --md5 none accepts other '
                          'archives' % (spec['url'], args.dataset, args.out))
    source = Source(args.dataset, src, fix)

    # Everything is read and checked before anything is written, so a bad test batch cannot
    # leave a packed training set behind.
    train_x, train_y = source.split('train')
    test_x, test_y = source.split('test')
    meanstd.forget(args.out, args.dataset)
    meta = {'source': os.path.abspath(src), 'label': spec['label_key'].decode()}
    records.write_records(args.out, names[0], _encoded(train_x, train_y), total=len(train_y),
                          fix=fix, meta=meta)
    records.write_records(args.out, names[1], _encoded(test_x, test_y), total=len(test_y),
                          fix=fix, meta=meta)
    # The statistics come last: their file is part of what "complete" means for a re-run.
    stats = meanstd.ChannelStats()
    stats.update(train_x)
    meanstd.write(args.out, args.dataset, stats, names[0])
    if (len(train_y), len(test_y)) != (spec['num_train'], spec['num_test']):
        log.warning('%s: %d/%d images, not the official %d/%d', src, len(train_y),
                    len(test_y), spec['num_train'], spec['num_test'])
    return '%s: wrote %d train + %d test images to %s' % (
        args.dataset, len(train_y), len(test_y), os.path.abspath(args.out))


def _encoded(images, labels):
    for x, y in zip(images, labels):
        yield y, png.encode(x)


if __name__ == '__main__':
    packcli.run_cli(main)
