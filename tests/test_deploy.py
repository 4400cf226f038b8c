"""dmrnet.symbols.deploy's own parts: the meta file read back as written, the names of an
export's files, and a network class that does not pull INT8 or ONNX in. Exports written as a
set: tests/test_export_set.py; consumers of the meta: tests/test_evaluate_quantize.py."""
import json
import os
import re
import subprocess
import sys

import pytest

from dmrnet.symbols import get_model
from dmrnet.symbols.deploy import (ExportSet, export_file, export_meta, export_model,
                                   finish_export, meta_path, pending_path, read_export_meta,
                                   recorded_input_shape, recorded_stats)

from checkout import REPO  # noqa: E402

SHAPE = (1, 3, 28, 28)
MEAN, STD = (72.9, 72.9, 72.9), (90.0, 90.0, 90.0)


@pytest.fixture(scope='module')
def net():
    net = get_model('resnet', L=3, classes=10)
    net.initialize()
    return net


@pytest.mark.parametrize('raw_input', [False, True])
def test_the_meta_file_reads_back_how_to_feed_the_model(net, tmp_path, raw_input):
    prefix = str(tmp_path / 'm')
    export_model(net, prefix, epoch=3, input_shape=SHAPE, mean=MEAN, std=STD,
                 raw_input=raw_input, metadata=dict(model='resnet', kwargs={'L': 3}))
    meta = read_export_meta(prefix)
    assert meta['model'] == 'resnet' and meta['epoch'] == 3
    assert recorded_input_shape(meta) == SHAPE[1:]
    described = meta['input']
    assert (described['mean'], described['std']) == (list(MEAN), list(STD))
    assert described['normalized_in_graph'] is raw_input
    assert recorded_stats(meta) == (([0.0] * 3, [1.0] * 3) if raw_input else
                                    (list(MEAN), list(STD)))
    # one composition of a meta file, whoever writes it (tools/export.py's bfloat16 set too)
    assert meta == json.loads(json.dumps(export_meta(
        dict(model='resnet', kwargs={'L': 3}), SHAPE, 3, MEAN, STD, raw_input)))


def test_export_meta_records_the_shape_and_keeps_extra_keys():
    meta = export_meta({'model': 'x'}, (1, 3, 32, 32), epoch=7, compute='bfloat16')
    assert meta['input_shape'] == meta['input']['shape'] == [1, 3, 32, 32]
    assert (meta['epoch'], meta['compute'], meta['model']) == (7, 'bfloat16', 'x')
    assert 'mean' not in meta['input'] and recorded_stats(meta) is None


def test_a_meta_file_absent_unreadable_or_not_an_object(tmp_path):
    prefix = str(tmp_path / 'm')
    assert read_export_meta(prefix) is None
    for text, said in (('{"input": ', 'is not a readable meta file'),
                       ('null', 'is not a meta file (not a JSON object)')):
        with open(meta_path(prefix), 'w') as f:
            f.write(text)
        with pytest.raises(ValueError, match=re.escape('m-meta.json ' + said)):
            read_export_meta(prefix)


def test_a_half_written_pending_list_is_dropped(tmp_path):
    """Killed while writing the list of renames: nothing was renamed yet, so there is nothing
    to finish; the list goes."""
    prefix = str(tmp_path / 'm')
    assert finish_export(prefix) is False
    with open(pending_path(prefix), 'w') as f:
        f.write('[["a", ')
    assert finish_export(prefix) is False and os.listdir(str(tmp_path)) == []


def test_an_export_sets_names(tmp_path):
    prefix = str(tmp_path / 'model')
    files = ExportSet(prefix, epoch=12)
    assert [files.final(kind) for kind in ExportSet.KINDS] == [
        prefix + '-symbol.json', prefix + '-0012.params', prefix + '-meta.json']
    assert files.final('meta') == meta_path(prefix)
    assert export_file(prefix, 'params', 12) == files.final('params')
    temporary = os.path.join(str(tmp_path), '.model.partial-%d' % os.getpid())
    assert files.temporary_prefix == temporary
    for kind in ExportSet.KINDS:   # the same names, under the temporary prefix
        assert files.temporary(kind) == files.final(kind).replace(prefix, temporary, 1)


IMPORTED = '''
import json, sys
from dmrnet.symbols import get_model
get_model('resnet', L=3)
print(json.dumps(sorted(m for m in sys.modules if m.startswith('dmrnet.symbols.deploy'))))
'''


def test_the_networks_do_not_import_int8_or_onnx():
    """The model classes take DeployableExport from deploy; quantization and ONNX load only
    when a caller asks for them, and then through the package as before."""
    out = subprocess.run([sys.executable, '-c', IMPORTED], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    assert 'dmrnet.symbols.deploy.mixin' in loaded
    assert 'dmrnet.symbols.deploy.int8' not in loaded
    assert 'dmrnet.symbols.deploy.onnx' not in loaded
    from dmrnet.symbols import deploy
    from dmrnet.symbols.deploy import DEFAULT_CALIB_MODE, export_onnx, quantize
    from dmrnet.symbols.deploy.int8 import quantize as int8_quantize
    assert quantize is int8_quantize and DEFAULT_CALIB_MODE == 'naive'
    assert export_onnx.__module__ == 'dmrnet.symbols.deploy.onnx'
    with pytest.raises(AttributeError, match='no attribute'):
        deploy.not_a_name
