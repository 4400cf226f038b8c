"""data/digits.py: the embedded demo dataset (scikit-learn's digits as 32x32 RGB)."""

import numpy as np
import pytest

from dmrnet.data import digits, records

import datagen


pytestmark = pytest.mark.usefixtures('no_network')


def test_split_is_stratified_and_deterministic():
    images, labels = digits.load_images()
    assert images.shape == (1797, 32, 32, 3) and images.dtype == np.uint8
    assert images.max() == 255 and images.min() == 0
    test = digits.split(labels, seed=0)
    assert test.sum() == 360 and np.bincount(labels[test]).tolist() == [36] * 10
    np.testing.assert_array_equal(test, digits.split(labels, seed=0))
    assert not np.array_equal(test, digits.split(labels, seed=1))


def test_cli_pack_lossless(tmp_path):
    out = str(tmp_path / 'digits')
    r = datagen.run_script('data/digits.py', '--out', out)
    assert r.returncode == 0, r.stderr
    assert 'wrote 1437 train + 360 test' in r.stdout
    images, labels = digits.load_images()
    test = digits.split(labels, seed=0)
    for name, mask in (('digits_train', ~test), ('digits_test', test)):
        got_labels, got = datagen.read_pack(out, name)
        np.testing.assert_array_equal(got_labels, labels[mask])
        np.testing.assert_array_equal(np.stack(got), images[mask])
        records.verify_records(out, name, deep=True)
    assert 'nothing to do' in digits.main(['--out', out])
