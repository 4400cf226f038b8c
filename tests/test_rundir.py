"""The run folder's reader (train/rundir.py) on folders written by hand: the log's last record per
epoch, finding a checkpoint from any of its names, the one folder rule, the model a parameter
file holds, the names it owns, and reading without MXNet."""
import json
import os
import subprocess
import sys

import pytest

from dmrnet.train import rundir
from dmrnet.train.errors import CheckpointError, UserError


def write(path, obj):
    with open(str(path), 'w') as f:
        json.dump(obj, f)


def checkpoint(folder, epoch=2, model='resnet', **extra):
    """A pointer (last.json) and the checkpoint files it names."""
    os.makedirs(str(folder), exist_ok=True)
    stem = rundir.CHECKPOINT % epoch
    for name in (stem + '.params', stem + '.states'):
        open(os.path.join(str(folder), name), 'wb').close()
    meta = dict(model=model, epoch=epoch, params=stem + '.params', states=stem + '.states',
                **extra)
    write(os.path.join(str(folder), rundir.LAST), meta)
    return meta


def test_the_log_keeps_the_last_record_of_each_epoch(tmp_path):
    with open(str(tmp_path / rundir.LOG), 'w') as f:
        for rec in ({'epoch': 1, 'x': 'a'}, {'epoch': 2, 'x': 'b'}, 'not json',
                    {'epoch': 2, 'x': 'resumed'}, {'no': 'epoch'}):
            f.write((rec if isinstance(rec, str) else json.dumps(rec)) + '\n')
    assert [r['x'] for r in rundir.read_log(str(tmp_path))] == ['a', 'resumed']
    assert [r['x'] for r in rundir.read_log(str(tmp_path), upto=1)] == ['a']
    assert rundir.last_record(str(tmp_path))['x'] == 'resumed'
    assert rundir.read_log(str(tmp_path / 'nowhere')) == [] and \
        rundir.last_record(str(tmp_path / 'nowhere')) == {}


def test_a_checkpoint_is_found_from_any_of_its_names(tmp_path):
    meta = checkpoint(tmp_path)
    folder = os.path.abspath(str(tmp_path))
    for spec in (str(tmp_path), str(tmp_path / rundir.LAST),
                 str(tmp_path / 'ckpt-0002.params'), str(tmp_path / 'ckpt-0002.states')):
        assert rundir.locate(spec) == (meta, folder), spec
    os.remove(str(tmp_path / 'ckpt-0002.states'))
    with pytest.raises(CheckpointError, match='names ckpt-0002.states, which is missing'):
        rundir.locate(str(tmp_path))
    with pytest.raises(CheckpointError, match='no checkpoint at'):
        rundir.locate(str(tmp_path / 'empty'))
    assert issubclass(CheckpointError, UserError)   # exit status 2 on the command line


def test_one_rule_for_the_folder_a_run_writes(tmp_path):
    checkpoint(tmp_path / 'run')
    ckpt = str(tmp_path / 'run' / 'ckpt-0002.params')
    assert rundir.run_folder('given', ckpt, 'default') == 'given'
    assert rundir.run_folder(None, ckpt, 'default') == os.path.abspath(str(tmp_path / 'run'))
    assert rundir.run_folder(None, str(tmp_path / 'gone' / 'x.params'), 'default') == \
        str(tmp_path / 'gone')
    assert rundir.run_folder(None, None, 'default') == 'default'


def test_the_model_a_parameter_file_holds(tmp_path):
    # an export: its meta file says, with the normalisation it was trained on
    write(tmp_path / 'best-meta.json', dict(model='dmrnet14', model_kwargs={'classes': 10},
                                            dataset='fashion', classes=10,
                                            input=dict(mean=[1, 2, 3], std=[4, 5, 6])))
    record = rundir.model_record(str(tmp_path / 'best-0008.params'))
    assert (record['model'], record['dataset'], record['mean'], record['source']) == \
        ('dmrnet14', 'fashion', [1, 2, 3], str(tmp_path / 'best-meta.json'))
    # a checkpoint: its run folder's pointer says, with the run's --rgb-mean (None: the set's)
    checkpoint(tmp_path / 'run', model='resnet', model_kwargs={'L': 3}, dataset='digits',
               args=dict(mean=None, std=None))
    record = rundir.model_record(str(tmp_path / 'run' / 'ckpt-0002.params'))
    assert (record['model'], record['kwargs'], record['mean']) == ('resnet', {'L': 3}, None)
    # a damaged meta file falls back to the pointers; nothing at all is None
    (tmp_path / 'run' / 'last-meta.json').write_text('{not json')
    assert rundir.model_record(str(tmp_path / 'run' / 'last-0002.params'))['model'] == 'resnet'
    assert rundir.model_record(str(tmp_path / 'alone-0000.params')) is None


def test_the_names_of_a_run_folder(tmp_path):
    assert rundir.export_prefix('runs/x', rundir.BEST_EXPORT) == os.path.join('runs/x', 'best')
    with pytest.raises(ValueError, match='not .ckpt'):
        rundir.export_prefix('runs/x', 'ckpt')
    assert not rundir.holds_run(str(tmp_path))
    checkpoint(tmp_path)
    assert rundir.has_checkpoint(str(tmp_path)) and rundir.holds_run(str(tmp_path))
    assert rundir.model_name(str(tmp_path)) == 'resnet' and not rundir.is_finished(str(tmp_path))
    rundir.write_summary(str(tmp_path), {'epochs': 2})
    assert rundir.is_finished(str(tmp_path)) and rundir.read_summary(str(tmp_path)) == \
        {'epochs': 2}
    rundir.mark_unfinished(str(tmp_path))
    assert rundir.read_summary(str(tmp_path)) is None
    assert rundir.checkpoint_files(str(tmp_path)) == [rundir.LAST, 'ckpt-0002.params',
                                                      'ckpt-0002.states']


def test_reading_a_run_folder_needs_no_mxnet(tmp_path):
    """The runner and the report read runs through rundir; only checkpoint I/O loads MXNet."""
    checkpoint(tmp_path)
    code = ('import sys; from dmrnet.train import rundir; rundir.read_log(%r); '
            'rundir.locate(%r); rundir.read_summary(%r); print("mxnet" in sys.modules)'
            % ((str(tmp_path),) * 3))
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == 'False', out.stderr
