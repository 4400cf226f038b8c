"""The Fashion-MNIST weights the repository keeps (results/fashion/weights: seed 0's final model
of each family at each published depth, made by make fashion-publish): they are the runs
results.jsonl records, get_model(name, pretrained='fashion') computes what the exported files
compute, and, where the real test set is packed (make data-fashion), each scores the test error
its run recorded. The models are those results.jsonl lists, so a depth is checked from the
moment it is published (L = 12 now; L = 24 once its runs are)."""
import json
import os

import pytest

import dmrnet.symbols  # noqa: F401  (runtime defaults before mxnet)
import mxnet as mx
import numpy as np
from dmrnet.symbols import get_model, registry
from dmrnet.symbols.deploy import import_model
from dmrnet import paper
from dmrnet.tools.experiments.publish import WEIGHTS_LIMIT
from dmrnet.tools.experiments.results import load_results

PUBLISHED = os.path.join(registry.WEIGHTS_ROOT, 'fashion')
DATA = os.path.join(os.path.dirname(registry.WEIGHTS_ROOT), 'data', 'fashion')


def _records():
    return load_results([os.path.join(PUBLISHED, 'results.jsonl')], missing_ok=False)


# seed 0's model of each family at each depth results.jsonl lists: the kept weights
MODELS = sorted({r['model'] for r in _records() if r['seed'] == 0})


def _seed0_record(model):
    found = [r for r in _records() if r['model'] == model and r['seed'] == 0]
    assert len(found) == 1, '%s: %d seed-0 records' % (model, len(found))
    return found[0]


def test_every_published_depth_has_its_three_kept_models():
    """What the parametrised tests below cover: L = 12's three networks at least, and at every
    depth results.jsonl lists, one per family; no weights beside them that no record names."""
    by_L = {}
    for model in MODELS:
        record = _seed0_record(model)
        by_L.setdefault(record['L'], []).append(record['family'])
    assert {'resnet26', 'dilnet14', 'dmrnet14'} <= set(MODELS)
    for L, families in by_L.items():
        assert sorted(families) == sorted(paper.FAMILIES), (L, families)
    kept = sorted(name[:-len('-0000.params')] for name in os.listdir(
        os.path.join(PUBLISHED, 'weights')) if name.endswith('-0000.params'))
    assert kept == MODELS


@pytest.mark.parametrize('model', MODELS)
def test_kept_weights_are_seed_0s_final_model(model, monkeypatch):
    monkeypatch.delenv(registry.WEIGHTS_ROOT_ENV, raising=False)
    prefix = os.path.join(PUBLISHED, 'weights', model)
    record = _seed0_record(model)
    with open(prefix + '-meta.json') as f:
        meta = json.load(f)
    assert meta['run'] == record['name'] and meta['seed'] == 0
    assert meta['test_error'] == record['test_error']
    assert meta['trained_epochs'] == record['epochs']      # the last epoch, not the best
    assert os.path.getsize(prefix + '-0000.params') < WEIGHTS_LIMIT
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3, 28, 28))
    np.testing.assert_allclose(get_model(model, pretrained='fashion')(x).asnumpy(),
                               import_model(prefix)(x).asnumpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not os.path.exists(os.path.join(DATA, 'fashion_test.rec')),
                    reason='Fashion-MNIST is not packed in %s (apt-get install '
                           'dataset-fashion-mnist, then make data-fashion)' % DATA)
@pytest.mark.parametrize('model', MODELS)
def test_kept_weights_score_the_recorded_test_error(model):
    from dmrnet.train import evaluate
    scored = evaluate.main(['--prefix', os.path.join(PUBLISHED, 'weights', model),
                            '--dataset', 'fashion', '--data-dir', DATA, '--json'])
    assert scored['images'] == 10000
    assert scored['top1_error'] == pytest.approx(_seed0_record(model)['test_error'], abs=1e-6)
