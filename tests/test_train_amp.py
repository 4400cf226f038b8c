"""The --amp code paths (mx.contrib.amp: init before the model, evaluation and export of the
converted model; for float16 also init_trainer, recorded loss scaling, dynamic-scale steps).

On a CPU with native bfloat16 (AVX-512 BF16 or AMX) --amp force trains in bfloat16, with no
loss scaling (plain --amp first times both dtypes: tests/test_amp_select.py). The GPU form, float16 with loss scaling, cannot run on a CPU (MXNet has no float16
matrix products there): the second child runs its loss-scaling code with bfloat16 instead. On a
CPU without native bfloat16 (oneDNN has no bfloat16 kernels for it) neither can run, and what is
tested there is that --amp stops at once with one line that says why.
amp.init() rewrites MXNet's operators for the whole process, hence the children."""
import os
import subprocess
import sys

import numpy as np
import pytest

from dmrnet.train import precision, rundir
from runs import exported, initial_params, last_checkpoint, records

from checkout import REPO  # noqa: E402

CHILD = '''
import sys
from mxnet.contrib import amp
from dmrnet.train import cli, precision
from dmrnet.train.digits import parser

init = precision.init_amp
def recorded(dtype):
    print('amp dtype %s' % dtype)
    init(dtype)
precision.init_amp = recorded
if sys.argv.pop(1) == 'loss-scaling':  # the float16 (GPU) path's code, run with bfloat16
    precision.needs_loss_scaling = lambda dtype: True
scale_loss, scaled = amp.scale_loss, []
def counted(loss, trainer):
    scaled.append(trainer._amp_loss_scaler.loss_scale)
    return scale_loss(loss, trainer)
amp.scale_loss = counted
cli.main(parser(), sys.argv[1:])
print('scaled %d losses by %s' % (len(scaled), sorted(set(scaled))))
'''


NO_BF16 = precision.no_bfloat16_reason()


@pytest.mark.skipif(NO_BF16 is not None, reason='%s: test_amp_refused_without_native_bfloat16 '
                    'runs instead' % NO_BF16)
@pytest.mark.parametrize('path', ['bfloat16', 'loss-scaling'])
def test_amp_path_trains_checkpoints_and_exports(tiny_run, tmp_path, path):
    # 2 epochs of 4 batches: the steps the loss-scaling path counts.
    argv = tiny_run.argv(tmp_path, '--amp', 'force', '--epochs', 2, '--max-batches', 4,
                         '--max-val-batches', 2, '--lr-steps', 100)
    r = subprocess.run([sys.executable, '-c', CHILD, path] + argv, cwd=REPO,
                       capture_output=True, text=True, timeout=200)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'Using AMP' in r.stderr and 'amp dtype bfloat16' in r.stdout
    recs = records(tmp_path)
    assert [x['epoch'] for x in recs] == [1, 2]
    assert all(np.isfinite(x['train_loss']) and 0 <= x['test_error'] <= 100 for x in recs)
    meta, params, states = last_checkpoint(tmp_path)
    assert meta['epoch'] == 2 and states
    # Parameters stay float32 (AMP casts inside the graph), and every weight has moved.
    start = initial_params(0, 'resnet', L=3)
    assert sorted(start) == sorted(params)
    for k, v in params.items():
        assert v.dtype == np.float32 and np.isfinite(v).all(), k
        if k.endswith('weight'):
            assert not np.array_equal(v, start[k]), k
    if path == 'loss-scaling':
        # Every step went through AMP's loss scaling (2**16 to start with); the Trainer divided
        # it out again, or the weights would have blown up at lr 0.1.
        assert 'scaled 8 losses by [65536.0]' in r.stdout
    else:  # bfloat16 has float32's exponent range: no loss scaling
        assert 'scaled 0 losses by []' in r.stdout
    assert 'digits test error: ' in r.stdout
    for f in (exported(tmp_path, rundir.LAST_EXPORT, 'symbol'),
              exported(tmp_path, rundir.LAST_EXPORT, 'params', 2),
              exported(tmp_path, rundir.BEST_EXPORT, 'symbol'),
              os.path.join(str(tmp_path), rundir.SUMMARY)):
        assert os.path.exists(f), f


@pytest.mark.skipif(NO_BF16 is None, reason='this CPU computes bfloat16: '
                    'test_amp_path_trains_checkpoints_and_exports runs instead')
def test_amp_refused_without_native_bfloat16(tiny_run, tmp_path):
    r = tiny_run.subprocess(tmp_path / 'run', '--amp', timeout=200)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].endswith(
        'drop --amp, or train on GPUs (float16)'), r.stderr
    assert 'Traceback' not in r.stderr and not os.path.exists(str(tmp_path / 'run' / rundir.LOG))
