"""Small stand-ins for the official dataset files, in exactly their formats, for tests."""
import gzip
import hashlib
import os
import pickle
import tarfile

import numpy as np

CIFAR = {
    'cifar10': dict(folder='cifar-10-batches-py', archive='cifar-10-python.tar.gz', classes=10,
                    train=['data_batch_%d' % i for i in range(1, 6)], test=['test_batch']),
    'cifar100': dict(folder='cifar-100-python', archive='cifar-100-python.tar.gz', classes=100,
                     train=['train'], test=['test']),
}


def cifar_images(n, seed):
    """n random RGB images (uint8 Nx32x32x3) with structure (so PNG is not trivially small)."""
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(n, 32, 32, 3)).astype(np.uint8)


def make_cifar(root, dataset='cifar10', per_batch=20, tar=True, seed=0):
    """Write a CIFAR python release in the official layout under `root`.

    Returns (path to the .tar.gz or the folder, {'train': (x, y), 'test': (x, y)}) with x RGB
    NxHxWxC as the packer should reproduce it.
    """
    spec = CIFAR[dataset]
    folder = os.path.join(root, spec['folder'])
    os.makedirs(folder, exist_ok=True)
    truth = {}
    for split in ('train', 'test'):
        xs, ys = [], []
        for i, member in enumerate(spec[split]):
            n = per_batch * (len(CIFAR['cifar10']['train']) if dataset == 'cifar100'
                             and split == 'train' else 1)
            x = cifar_images(n, seed * 100 + i + (50 if split == 'test' else 0))
            y = np.arange(n) % spec['classes']
            d = {b'batch_label': member.encode(),
                 b'data': x.transpose(0, 3, 1, 2).reshape(n, 3072),
                 b'filenames': [('img_%s_%d.png' % (member, k)).encode() for k in range(n)]}
            if dataset == 'cifar10':
                d[b'labels'] = [int(v) for v in y]
            else:
                d[b'fine_labels'] = [int(v) for v in y]
                d[b'coarse_labels'] = [int(v) // 5 for v in y]
            with open(os.path.join(folder, member), 'wb') as f:
                pickle.dump(d, f, protocol=2)
            xs.append(x)
            ys.append(y)
        truth[split] = (np.concatenate(xs), np.concatenate(ys))
    if dataset == 'cifar10':
        meta = ('batches.meta', {b'label_names': [b'c%d' % i for i in range(10)]})
    else:
        meta = ('meta', {b'fine_label_names': [b'f%d' % i for i in range(100)],
                         b'coarse_label_names': [b'c%d' % i for i in range(20)]})
    with open(os.path.join(folder, meta[0]), 'wb') as f:
        pickle.dump(meta[1], f, protocol=2)
    if not tar:
        return folder, truth
    archive = os.path.join(root, spec['archive'])
    with tarfile.open(archive, 'w:gz') as t:
        t.add(folder, arcname=spec['folder'])
    return archive, truth


def md5(path):
    with open(path, 'rb') as f:
        return hashlib.md5(f.read()).hexdigest()


def make_svhn(root, train_per_class=6, extra_per_class=4, test=13, seed=0):
    """train/extra/test_32x32.mat as the official files: X 32x32x3xN uint8, y Nx1 in 1..10.

    Returns {'train': (x NxHxWxC, digit labels 0..9), 'extra': ..., 'test': ...}.
    """
    import scipy.io
    os.makedirs(root, exist_ok=True)
    rng = np.random.RandomState(seed)
    truth = {}
    for name, n in (('train', 10 * train_per_class), ('extra', 10 * extra_per_class),
                    ('test', test)):
        x = rng.randint(0, 256, size=(n, 32, 32, 3)).astype(np.uint8)
        digit = rng.permutation(np.arange(n) % 10)
        y = np.where(digit == 0, 10, digit).astype(np.uint8).reshape(n, 1)
        scipy.io.savemat(os.path.join(root, '%s_32x32.mat' % name),
                         {'X': np.moveaxis(x, 0, 3), 'y': y}, do_compression=True)
        truth[name] = (x, digit)
    return truth


def make_imagenet(root, wnids=('n01440764', 'n01443537', 'n01484850'), per_class=4,
                  val_per_class=2, flat_val=True, seed=0):
    """An ILSVRC2012-like tree of small JPEGs; flat val/ comes with a "filename wnid" val.txt.

    Returns {'train': [(relpath, label)], 'val': [(relpath, label)]} (label = sorted-wnid index).
    """
    import cv2
    rng = np.random.RandomState(seed)
    truth = {'train': [], 'val': []}
    lines = []
    k = 0
    for label, wnid in enumerate(sorted(wnids)):
        os.makedirs(os.path.join(root, 'train', wnid), exist_ok=True)
        for i in range(per_class):
            h, w = rng.randint(24, 48, size=2)
            rel = os.path.join('train', wnid, '%s_%d.JPEG' % (wnid, i))
            cv2.imwrite(os.path.join(root, rel), rng.randint(0, 256, (h, w, 3)).astype(np.uint8))
            truth['train'].append((rel, label))
        for i in range(val_per_class):
            k += 1
            name = 'ILSVRC2012_val_%08d.JPEG' % k
            folder = os.path.join(root, 'val') if flat_val else os.path.join(root, 'val', wnid)
            os.makedirs(folder, exist_ok=True)
            cv2.imwrite(os.path.join(folder, name),
                        rng.randint(0, 256, (30, 40, 3)).astype(np.uint8))
            truth['val'].append((os.path.relpath(os.path.join(folder, name), root), label))
            lines.append('%s %s\n' % (name, wnid))
    if flat_val:
        with open(os.path.join(root, 'val.txt'), 'w') as f:
            f.writelines(lines)
    return truth


# Fashion-MNIST: the four idx files as Zalando ships them

FASHION_FILES = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
         'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}
def write_idx(path, magic, dims, payload, gz=True):
    """An idx file as officially shipped: big-endian uint32 magic and dimensions, then the
    bytes; gzip-compressed unless `gz` is false. Returns the md5 of the decompressed bytes."""
    blob = np.array([magic] + list(dims), '>u4').tobytes() + bytes(payload)
    with (gzip.open if gz else open)(path, 'wb') as f:
        f.write(blob)
    return hashlib.md5(blob).hexdigest()


def write_split(folder, split, x, y, magic=None):
    """Both files of a split; returns its SPLITS entry (names, md5s, count)."""
    from dmrnet.data import fashion
    magic = magic or (fashion.IMAGES_MAGIC, fashion.LABELS_MAGIC)
    images, labels = FASHION_FILES[split]
    return dict(images=(images, write_idx(os.path.join(folder, images + '.gz'), magic[0],
                                          x.shape, x.tobytes())),
                labels=(labels, write_idx(os.path.join(folder, labels + '.gz'), magic[1],
                                          y.shape, y.tobytes())),
                count=len(x))


def make_fashion(folder, n_train=60, n_test=20, seed=0):
    """The four files with random 28x28 images (every class equally often); returns
    (SPLITS table for them, {'train': (x, y), 'test': (x, y)})."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.RandomState(seed)
    splits, truth = {}, {}
    for split, n in (('train', n_train), ('test', n_test)):
        x = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
        y = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        splits[split] = write_split(folder, split, x, y)
        truth[split] = (x, y.astype(np.int64))
    return splits, truth


# ---------------------------------------------------------------------------------------------
# Shared by the data tests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _no_network(monkeypatch):
    from dmrnet.data import sources
    monkeypatch.setenv('DMRNET_NO_DOWNLOAD', '1')

    def fail(*a, **k):
        raise AssertionError('a test tried to download %r' % (a,))
    monkeypatch.setattr(sources, 'download', fail)


def run_script(*argv):
    """Run a packer as a user would (python data/x.py ...) from the repository root, offline."""
    import subprocess
    import sys
    env = dict(os.environ, DMRNET_NO_DOWNLOAD='1')
    return subprocess.run([sys.executable] + list(argv), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def read_pack(out, name):
    """(labels, decoded RGB images) of a packed split, read record by record."""
    import cv2
    import mxnet as mx
    base = os.path.join(out, name)
    r = mx.recordio.MXIndexedRecordIO(base + '.idx', base + '.rec', 'r')
    labels, images = [], []
    for k in r.keys:
        header, data = mx.recordio.unpack(r.read_idx(k))
        labels.append(int(header.label))
        images.append(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1])
    r.close()
    return np.array(labels), images


def pack_files(out):
    """Names of the files in `out` (hidden temporaries included)."""
    return sorted(os.listdir(out)) if os.path.isdir(out) else []
