"""A run killed with SIGKILL in the middle of epoch 2 and resumed ends bit-identical (CPU) to an
uninterrupted run with the same seed: parameters, BN statistics, momentum and the log; resumed
in another folder from only the files tools/experiments/resumable.py lists.

The runs use the defaults (oneDNN kernels, the naive engine that dmrnet selects on CPU-only
machines), two OpenMP threads and several data-decoding threads. With the threaded engine this
test failed every time: the resumed run's parameters differed from the uninterrupted run's."""
import os
import shutil
import signal
import subprocess

import numpy as np
import pytest

from dmrnet.symbols.deploy import export_file
from dmrnet.tools.experiments.resumable import resume_files
from dmrnet.train import rundir
from dmrnet.train.precision import no_bfloat16_reason
from runs import last_checkpoint, records

from checkout import REPO  # noqa: E402
TIMEOUT = 240

# On the tiny run's batch: a DMRNet, 3 epochs of 6 batches with an lr step, a log line after
# every batch (the kill waits for one), several decoding threads.
RUN = ['--model', 'dmrnet', '--L', 6, '--epochs', 3, '--max-batches', 6, '--seed', 7,
       '--lr-steps', 2, '--log-interval', 1, '--num-data-threads', 2]


def env():
    # Several threads, so that a reduction order that depended on timing would show.
    e = dict(os.environ, OMP_NUM_THREADS='2')
    e.pop('MXNET_ENGINE_TYPE', None)  # the child chooses its engine as a user's run would
    return e


# --amp force trains in bfloat16 on CPUs that compute it natively; elsewhere it is refused
# (tests/test_train_amp.py checks that) and there is nothing to resume. (Plain --amp would
# time both dtypes first, and the two runs could choose differently: tests/test_amp_select.py.)
BF16 = pytest.param(['--amp', 'force'], id='bfloat16', marks=pytest.mark.skipif(
    no_bfloat16_reason() is not None, reason=str(no_bfloat16_reason())))


@pytest.mark.parametrize('precision', [pytest.param([], id='float32'), BF16])
def test_sigkill_mid_epoch_then_resume_is_bit_identical(tiny_run, tmp_path, precision):
    ref, cut = tmp_path / 'ref', tmp_path / 'cut'
    subprocess.run(tiny_run.command(ref, *RUN, *precision), check=True,
                   timeout=TIMEOUT, env=env(), cwd=REPO, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)

    p = subprocess.Popen(tiny_run.command(cut, *RUN, *precision), env=env(), cwd=REPO,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    killed = False
    try:
        for line in p.stderr:  # the child logs after every batch (--log-interval 1)
            if 'Epoch[1] Batch [3]' in line:  # epoch 2 (0-based, MXNet's format)
                os.killpg(p.pid, signal.SIGKILL)
                killed = True
                break
        p.wait(timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert killed and p.returncode == -signal.SIGKILL
    assert rundir.locate(str(cut))[0]['epoch'] == 1
    assert not rundir.is_finished(str(cut))

    # Resume from only the files tools/experiments/resumable.py lists, in another folder: what
    # a machine that keeps nothing but the repository would have.
    listed = resume_files(str(tmp_path))
    assert {os.path.dirname(path) for path in listed} == {str(cut)}   # ref has finished
    moved = tmp_path / 'moved' / 'cut'
    moved.mkdir(parents=True)
    for path in listed:
        shutil.copyfile(path, str(moved / os.path.basename(path)))
    cut = moved
    subprocess.run(tiny_run.command(cut, *RUN, '--resume', cut, *precision), check=True,
                   timeout=TIMEOUT, env=env(), cwd=REPO, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    m1, p1, s1 = last_checkpoint(ref)
    m2, p2, s2 = last_checkpoint(cut)
    assert m1['epoch'] == m2['epoch'] == 3
    assert sorted(p1) == sorted(p2)
    for k in p1:
        assert np.array_equal(p1[k], p2[k]), k
    assert s1 == s2  # momentum buffers and the optimizer's update counts
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ('seconds', 'images_per_sec')}
                        for r in rs]
    assert strip(records(ref)) == strip(records(cut))
    assert [r['epoch'] for r in records(cut)] == [1, 2, 3]
    # The exported models agree too (their meta files aside).
    exports = (rundir.BEST_EXPORT, rundir.LAST_EXPORT)
    prefixes = tuple(which + '-' for which in exports)
    metas = {export_file(which, 'meta') for which in exports}
    exported = sorted(f for f in os.listdir(str(ref)) if f.startswith(prefixes) and f not in metas)
    assert exported == sorted(f for f in os.listdir(str(cut)) if f.startswith(prefixes)
                              and f not in metas)
    assert export_file(rundir.LAST_EXPORT, 'params', 3) in exported and len(exported) == 4
    for name in exported:
        assert open(os.path.join(str(ref), name), 'rb').read() == \
            open(os.path.join(str(cut), name), 'rb').read(), name
