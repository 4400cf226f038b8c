"""Multi-machine training through tools/launch.py on loopback: a dist_sync run with 2 workers
and 1 server ends with the same parameters as one process with 2 CPU contexts on the same data
split; dist_async steps the learning rate on the servers; the launcher propagates failures,
cleans up its children and builds ssh commands."""
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from dmrnet.train import rundir
from runs import initial_params, last_checkpoint, processes_gone, records

from checkout import REPO  # noqa: E402
LAUNCH = os.path.join(REPO, 'tools', 'launch.py')
TIMEOUT = 240


def run(argv, timeout=TIMEOUT):
    """Run a command in its own process group; kill the whole group whatever happens."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    p = subprocess.Popen([str(a) for a in argv], cwd=REPO, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out = ''
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    return p.returncode, out


def test_dist_sync_two_workers_equals_two_contexts(tiny_run, tmp_path):
    common = ['--model', 'dmrnet', '--L', 6, '--epochs', 2, '--max-batches', 3,
              '--max-val-batches', 2, '--batch-size', 32, '--seed', 3]
    rc, out = run([sys.executable, LAUNCH, '-n', 2, '-s', 1, '--timeout', TIMEOUT - 20, '--'] +
                  tiny_run.command(tmp_path / 'dist', *common, '--kv-store', 'dist_sync'))
    assert rc == 0, out[-3000:]
    assert '[worker 0]' in out and '[worker 1]' in out and '[rank 1]' in out
    rc, out = run(tiny_run.command(tmp_path / 'single', *common, '--cpus', 2,
                                   '--shard-per-device', '--kv-store', 'device'))
    assert rc == 0, out[-3000:]
    _, a, sa = last_checkpoint(tmp_path / 'dist')
    _, b, sb = last_checkpoint(tmp_path / 'single')
    assert sorted(a) == sorted(b)
    for k in a:  # BN running statistics included (averaged over devices in both)
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5, err_msg=k)
    # ... while training moved the weights far beyond that tolerance.
    start = initial_params(3, 'dmrnet', L=6)
    moved = [np.abs(a[k] - start[k]).max() for k in a if k.endswith('weight')]
    assert len(moved) > 5 and min(moved) > 1e-3, moved
    # Momentum too (the optimizer state each worker keeps, as the single process does).
    ma, mb = ({k: v for k, v in mx.nd.load_frombuffer(s).items() if k.startswith('state:')}
              for s in (sa, sb))  # {'state:INDEX': momentum}
    assert sorted(ma) == sorted(mb) and len(ma) > 0
    for k in ma:
        np.testing.assert_allclose(ma[k].asnumpy(), mb[k].asnumpy(), rtol=1e-4, atol=1e-5)
    la, lb = records(tmp_path / 'dist'), records(tmp_path / 'single')
    assert [r['epoch'] for r in la] == [r['epoch'] for r in lb] == [1, 2]
    for x, y in zip(la, lb):
        assert x['train_loss'] == pytest.approx(y['train_loss'], rel=1e-5)
    # Only rank 0 writes the run folder.
    assert rundir.is_finished(str(tmp_path / 'dist'))


def test_dist_async_runs_the_schedule_on_the_servers(tiny_run, tmp_path):
    # Asynchronous SGD updates on the servers: the learning-rate steps must happen there.
    rc, out = run([sys.executable, LAUNCH, '-n', 2, '-s', 1, '--timeout', TIMEOUT - 20, '--'] +
                  tiny_run.command(tmp_path, '--epochs', 2, '--max-batches', 3,
                                   '--batch-size', 32, '--lr-steps', 1,
                                   '--kv-store', 'dist_async'))
    assert rc == 0, out[-3000:]
    # 3 batches x 2 workers in epoch 1: the 7th server update is the first of epoch 2.
    assert 'Server[0] Update[7]: Change learning rate to 1.00000e-02' in out, out[-3000:]
    assert [r['lr'] for r in records(tmp_path)] == [0.1, pytest.approx(0.01)]
    assert rundir.is_finished(str(tmp_path))


def test_launch_propagates_failure_and_cleans_up(tmp_path):
    marker = tmp_path / 'pids'
    worker = ('import os, sys; open(%r, "a").write("%%d\\n" %% os.getpid()); '
              'sys.exit(3 if os.environ["DMLC_ROLE"] == "worker" else 0)' % str(marker))
    rc, out = run([sys.executable, LAUNCH, '-n', 2, '-s', 1, '--timeout', 60, '--',
                   sys.executable, '-c', worker], timeout=90)
    assert rc == 3, out
    assert 'exited with status 3' in out
    # Nothing the launcher started survives it (scheduler and server included).
    for pid in map(int, open(str(marker)).read().split()):
        assert not os.path.exists('/proc/%d' % pid) or \
            open('/proc/%d/stat' % pid).read().split()[2] == 'Z'


def test_a_killed_launcher_takes_its_processes_with_it(tmp_path):
    """SIGKILL leaves the launcher no chance to clean up: the kernel ends its scheduler,
    servers and workers (PR_SET_PDEATHSIG with SIGKILL) within seconds."""
    marker = tmp_path / 'pids'
    # workers that ignore SIGTERM, as a training blocked in the KVStore's C++ does (its Python
    # handler never runs): only SIGKILL as the death signal ends them
    child = ('import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); '
             'open(%r, "a").write("%%d\\n" %% os.getpid()); time.sleep(120)' % str(marker))
    launcher = subprocess.Popen([sys.executable, LAUNCH, '-n', '2', '-s', '1', '--',
                                 sys.executable, '-c', child], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not marker.exists() or len(marker.read_text().split()) < 2:  # both workers
            assert time.time() < deadline and launcher.poll() is None
            time.sleep(0.2)
        with open('/proc/%d/task/%d/children' % (launcher.pid, launcher.pid)) as f:
            pids = list(map(int, f.read().split()))  # scheduler, server, workers
    finally:
        launcher.kill()
        launcher.wait()
    assert len(pids) == 4 and set(map(int, marker.read_text().split())) <= set(pids)
    alive = processes_gone(pids, 10)
    assert not alive, alive


def test_a_killed_launcher_ends_a_training_dist_sync_job(tiny_run, tmp_path):
    """The real case: workers training with --kv-store dist_sync (their SIGTERM handler cannot
    run while they wait in the KVStore). SIGKILL of the launcher leaves nothing alive 10 s
    later."""
    save_dir = tmp_path / 'dist'
    # Whole epochs (no batch cap): two seconds in, the workers are in the KVStore's traffic.
    launcher = subprocess.Popen(
        [sys.executable, LAUNCH, '-n', '2', '-s', '1', '--'] +
        tiny_run.command(save_dir, '--model', 'dmrnet', '--L', 6, '--epochs', 200,
                         '--batch-size', 32, '--kv-store', 'dist_sync', tiny=False),
        cwd=REPO, env=tiny_run.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        log = save_dir / rundir.TRAIN_LOG
        while not (log.exists() and 'parameters; lr' in log.read_text()):
            assert time.time() < deadline and launcher.poll() is None, 'training never started'
            time.sleep(0.5)
        time.sleep(2)                   # well into the first epoch's KVStore traffic
        with open('/proc/%d/task/%d/children' % (launcher.pid, launcher.pid)) as f:
            pids = list(map(int, f.read().split()))
    finally:
        launcher.kill()
        launcher.wait()
    assert len(pids) == 4
    alive = processes_gone(pids, 10)
    assert not alive, alive


def test_dist_without_launcher_is_a_clear_error(tiny_run, tmp_path):
    rc, out = run(tiny_run.command(tmp_path, '--kv-store', 'dist_sync'))
    assert rc == 2 and 'tools/launch.py' in out and 'Traceback' not in out


def test_launch_ssh_dry_run(tmp_path):
    hosts = tmp_path / 'hosts'
    hosts.write_text('node1\nnode2:2222  # comment\n')
    rc, out = run([sys.executable, LAUNCH, '-n', 2, '-s', 2, '-H', hosts, '--root-uri',
                   '10.0.0.1', '--port', 9091, '--dry-run', '--', 'python', 'train/cifar.py',
                   '--kv-store', 'dist_sync'], timeout=60)
    assert rc == 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 5 and lines[0].startswith('scheduler:')
    assert 'DMLC_ROLE=scheduler' in lines[0] and 'DMLC_PS_ROOT_PORT=9091' in lines[0]
    w1 = [l for l in lines if l.startswith('worker 1:')][0]
    assert "'-p' '2222'" in w1 or '-p 2222' in w1
    assert 'node2' in w1 and 'DMLC_ROLE=worker' in w1 and 'DMLC_PS_ROOT_URI=10.0.0.1' in w1
    assert 'DMLC_NUM_WORKER=2' in w1 and 'DMLC_NUM_SERVER=2' in w1 and 'train/cifar.py' in w1
