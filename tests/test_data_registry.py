"""dmrnet.data's dataset registry: the facts docs/CONTRACTS.md promises for every dataset, and
the one normalisation (the registry's statistics, or a caller's, applied once)."""
import os

import numpy as np
import pytest

import dmrnet.data as data
from dmrnet.data import registry

from checkout import REPO

NAMES = ['cifar10', 'cifar100', 'digits', 'fashion', 'fashion_val', 'imagenet', 'svhn']


def test_every_dataset_has_the_promised_facts():
    assert data.dataset_names() == NAMES
    for name in NAMES:
        info = data.dataset_info(name, 'DIR')
        assert isinstance(info['classes'], int) and info['classes'] >= 10, name
        assert 0 < info['num_val'] < info['num_train'], name
        channels, height, width = info['image_shape']
        assert channels == 3 and height == width and height in (28, 32, 224), name
        for key in ('mean', 'std'):   # RGB, 0-255
            assert len(info[key]) == 3 and all(0 < v < 255 for v in info[key]), (name, key)
        assert info['train'].startswith(info['folder'] + '_'), name
        assert info['val'].startswith(info['folder'] + '_') and info['val'] != info['train']
        python, script = info['pack'].split()[:2]   # a packer of this checkout
        assert python == 'python' and os.path.isfile(os.path.join(REPO, script)), name
        assert info['pack'].endswith('--out DIR'), name
        assert data.default_data_dir(name).endswith(os.path.join('data', info['folder']))
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        data.dataset_info('mnist')


def test_grey_datasets_and_the_fashion_split_share_their_facts():
    for name in ('digits', 'fashion'):
        info = data.dataset_info(name)
        assert len(set(info['mean'])) == len(set(info['std'])) == 1, name
    fashion, val = data.dataset_info('fashion'), data.dataset_info('fashion_val')
    assert val['folder'] == 'fashion' and val['pack'] == fashion['pack']
    assert (val['mean'], val['std']) == (fashion['mean'], fashion['std'])
    assert (val['train'], val['val'], val['num_train'], val['num_val']) == \
        ('fashion_trainsub', 'fashion_val', 55000, 5000)


def test_dataset_info_is_a_copy():
    info = data.dataset_info('cifar10')
    info['mean'][0] = 0.0
    info['classes'] = 3
    assert data.dataset_info('cifar10')['mean'][0] == 125.307
    assert data.dataset_info('cifar10')['classes'] == 10


def test_normalisation_is_the_registrys_unless_overridden():
    info = data.dataset_info('svhn')
    assert registry.normalisation(info) == (info['mean'], info['std'])
    mine = ((1, 2, 3), np.array([4.0, 5.0, 6.0]))
    assert registry.normalisation(info, mine) == ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert info == data.dataset_info('svhn')   # the override does not leak into the facts
    with pytest.raises(ValueError, match='3 channels'):
        registry.normalisation(info, ([1.0], [2.0]))


@pytest.mark.usefixtures('no_network')
@pytest.mark.parametrize('factory', [data.get_val_iter, data.get_train_iter])
def test_an_override_is_applied_once(digits, factory):
    """Images normalised with (mean + 10, 2 std) are the registry-normalised ones moved by
    exactly one application of the override: (x std - 10) / (2 std). (The training iterator's
    order depends on the seed alone, so both reads see the same images.)"""
    info = data.dataset_info('digits')
    mean, std = np.array(info['mean']), np.array(info['std'])
    plain = factory('digits', digits, 16).next().data[0].asnumpy()
    moved = factory('digits', digits, 16, stats=(mean + 10, 2 * std)).next().data[0].asnumpy()
    scale = std[None, :, None, None]
    np.testing.assert_allclose(moved, (plain * scale - 10) / (2 * scale), atol=1e-4)
