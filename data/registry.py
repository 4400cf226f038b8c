"""The dataset registry: what is known of each dataset before reading a byte of it (classes,
image counts and shape, per-channel statistics, record names, the pack's folder and the command
that packs it, which augmentation recipe it trains with): plain data, apart from how the
iterators (data/iterators.py) read the packs.

Normalisation has one source, this table's mean/std (RGB, 0-255) of each training set:
- CIFAR-10/100, SVHN and ImageNet: the authors' values, as their release's data code used them
  (not recomputed from our packs, so that training normalises exactly as theirs did);
- digits and Fashion-MNIST (no authors' values): computed once by the packers over the training
  set and pinned here; tests check that the packers still measure these numbers.
The `<dataset>_mean_std.json` a packer writes records what the pack measures; training never
reads it. `normalisation(info, stats)` is the one place where a caller's own (mean, std) (a pack
made elsewhere, an export's recorded statistics) replaces the table's.
"""
from dmrnet.utils.places import default_path


def _dataset(sizes, shape, mean, std, recipe, pack, test='test', **extra):
    """One dataset's facts: (classes, training images, test images), image shape (C, H, W),
    per-channel mean/std, the augmentation recipe ('cifar', 'plain' or 'imagenet', see
    data/iterators.py), the packer; records <name>_train and <name>_<test> unless named
    otherwise."""
    classes, num_train, num_val = sizes
    return dict(classes=classes, num_train=num_train, num_val=num_val, image_shape=shape,
                mean=mean, std=std, recipe=recipe, pack=pack, test=test, **extra)


# Grey sets: three equal channels. Digits: data/digits.py's training set (seed 0); Fashion-MNIST:
# all 60,000 training images (data/fashion.py).
_GREY_DIGITS = ((78.0048,) * 3, (95.9909,) * 3)
_GREY_FASHION = ((72.9404,) * 3, (90.0212,) * 3)
_DATASETS = {
    'cifar10': _dataset((10, 50000, 10000), (3, 32, 32), (125.307, 122.950, 113.865),
                        (62.993, 62.089, 66.705), 'cifar',
                        'python data/cifar.py --dataset cifar10 --out {dir}'),
    'cifar100': _dataset((100, 50000, 10000), (3, 32, 32), (129.304, 124.070, 112.434),
                         (68.170, 65.392, 70.418), 'cifar',
                         'python data/cifar.py --dataset cifar100 --out {dir}'),
    'svhn': _dataset((10, 598388, 26032), (3, 32, 32), (111.609, 113.161, 120.565),
                     (50.498, 51.259, 50.244), 'plain', 'python data/svhn.py --out {dir}',
                     holdout='svhn_val', num_holdout=6000),
    'imagenet': _dataset((1000, 1281167, 50000), (3, 224, 224), (123.370, 112.757, 99.406),
                         (68.998, 66.093, 68.292), 'imagenet',
                         'python data/imagenet.py --src ILSVRC2012_ROOT --out {dir}', test='val'),
    'digits': _dataset((10, 1437, 360), (3, 32, 32), *_GREY_DIGITS, 'plain',
                       'python data/digits.py --out {dir}'),
    # Padding is black, the images' own background (zero padding is this set's standard
    # augmentation).
    'fashion': _dataset((10, 60000, 10000), (3, 28, 28), *_GREY_FASHION, 'cifar',
                        'python data/fashion.py --out {dir}', pad_fill=0),
}
for _name, _info in _DATASETS.items():
    _info.update(train='%s_train' % _name, val='%s_%s' % (_name, _info.pop('test')))
# 'fashion_val' trains on 55,000 training images and validates on the 5,000 held out, to choose
# a recipe without the test set; data/fashion.py packs both into the 'fashion' folder.
_DATASETS['fashion_val'] = dict(_DATASETS['fashion'], num_train=55000, num_val=5000,
                                train='fashion_trainsub', val='fashion_val', folder='fashion')


def dataset_names():
    return sorted(_DATASETS)


def dataset_info(name, data_dir=None):
    """Facts about a dataset (see docs/CONTRACTS.md); `pack` is the command packing it into
    `data_dir` (default: default_data_dir(name), the train scripts' default)."""
    try:
        info = dict(_DATASETS[name])
    except KeyError:
        raise ValueError('unknown dataset %r (known: %s)'
                         % (name, ', '.join(dataset_names()))) from None
    info['mean'], info['std'] = list(info['mean']), list(info['std'])
    info['folder'] = info.get('folder', name)
    info['pack'] = info['pack'].format(dir=data_dir or default_path('data', info['folder']))
    return info


def default_data_dir(name):
    """Where the scripts look for a dataset's pack when no --data-dir is given: data/<folder>
    (a dataset that is a split of another's pack shares that folder), under the folder
    dmrnet.utils.places chooses (the current one, or the checkout)."""
    return default_path('data', dataset_info(name)['folder'])


def pack_command(name, data_dir):
    return dataset_info(name, data_dir)['pack']


def normalisation(info, stats=None):
    """The (mean, std) lists (RGB, 0-255) to normalise `info`'s images with: `stats` = (mean,
    std) when given, else the dataset's own."""
    mean, std = (info['mean'], info['std']) if stats is None else stats
    mean, std = [float(v) for v in mean], [float(v) for v in std]
    if len(mean) != 3 or len(std) != 3:
        raise ValueError('stats: a mean and a std of 3 channels (R, G, B) each, got %s and %s'
                         % (mean, std))
    return mean, std
