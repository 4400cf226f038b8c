"""tools/gpu_check.py, the first command on a GPU machine, tested where there is no GPU.

What decides skip or run (the environment's facts, dmrnet.utils.cuda's answers) is faked;
the table, the exit status and the reading of runs are checked against those fakes and
against canned run folders; the child-process runner against children that hang and crash;
the real pipeline (training script, export, probes, evaluate.py) with CPU contexts standing in
for the GPUs; and the script itself end to end on this CPU machine.
"""
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from dmrnet.tools import gpu_check
from dmrnet.tools.gpu_check import FAILED, OK, SKIPPED
from dmrnet.utils import cuda

from checkout import REPO  # noqa: E402
GPU_CHECKS = [n for n in gpu_check.CHECK_NAMES if n != 'env']
CPU_MXNET = dict(distribution='mxnet 1.9.1', version='1.9.1', num_gpus=0,
                 features=dict(CUDA=False, CUDNN=False, NCCL=False, MKLDNN=True), libraries={})


def gpu_mxnet(num_gpus, nccl=True):
    return dict(distribution='mxnet-cu112 1.9.1', version='1.9.1', num_gpus=num_gpus,
                features=dict(CUDA=True, CUDNN=True, NCCL=nccl, MKLDNN=True),
                libraries={'libcudnn.so.8': dict(path='/x/libcudnn.so.8', version='8.9.6')})


def fake_driver(monkeypatch, devices, build='gpu', problem=None, version=12040):
    """dmrnet.utils.cuda answering as a machine with these GPUs would."""
    info = SimpleNamespace(version=version, error=None, devices=[
        SimpleNamespace(index=i, name=name, capability=cap) for i, (name, cap) in
        enumerate(devices)])
    asked = []

    def gpu_problem(ids):
        asked.append(list(ids))
        return problem
    monkeypatch.setattr(cuda, 'mxnet_build', lambda: build)
    monkeypatch.setattr(cuda, 'driver_info', lambda: info)
    monkeypatch.setattr(cuda, 'gpu_problem', gpu_problem)
    return asked


def environment(mxnet, requested=None):
    """gather_environment with the probes answered in this process: the driver's by
    probe_driver over the (faked) dmrnet.utils.cuda, MXNet's by `mxnet`."""
    def ask(name, *args):
        return dict(mxnet) if name == 'probe_mxnet' else gpu_check.PROBES[name](*args)
    return gpu_check.gather_environment(requested, 10, '.', ask=ask)


def statuses(results):
    return {r.name: r.status for r in results}


A100 = ('NVIDIA A100-SXM4-40GB', (8, 0))


# ------------------------------------------------------------------------------------------
# Skip or run: decided from the environment

def test_cpu_build_on_a_machine_with_gpus_skips_every_gpu_check(monkeypatch, tmp_path):
    fake_driver(monkeypatch, [A100, A100], build='cpu')
    env = environment(CPU_MXNET)
    results = gpu_check.run_checks(set(gpu_check.CHECK_NAMES),
                                   gpu_check.Session(env, str(tmp_path), 10))
    assert statuses(results) == dict({'env': OK}, **{n: SKIPPED for n in GPU_CHECKS})
    for r in results[1:]:
        assert r.note.startswith('no GPU visible: the installed MXNet is the CPU build '
                                 '(mxnet 1.9.1)')
        assert 'the driver sees 2 GPU(s)' in r.note and 'BUILD=gpu' in r.note
    env_row = results[0]
    assert env_row.figure == '2 GPUs'
    assert 'CPU build' in env_row.note and 'CUDA no' in env_row.note
    assert 'GPU 1 NVIDIA A100-SXM4-40GB (compute 8.0)' in env_row.note
    assert 'NVIDIA driver for CUDA 12.4' in env_row.note


def test_a_driver_problem_is_the_reason_of_every_gpu_check(monkeypatch, tmp_path):
    problem = ('--gpus 0: the NVIDIA driver supports CUDA 11.4; the GPU build needs CUDA 11.8 '
               'or newer: update the driver to release 520 or newer')
    asked = fake_driver(monkeypatch, [A100, A100], problem=problem, version=11040)
    env = environment(gpu_mxnet(2))
    assert asked == [[0], [0, 1]]  # the one-GPU and the two-GPU checks' devices
    results = gpu_check.run_checks(set(gpu_check.CHECK_NAMES),
                                   gpu_check.Session(env, str(tmp_path), 10))
    assert statuses(results)['env'] == OK
    for r in results[1:]:
        assert r.status == SKIPPED
        # without the --gpus the user may not have given
        assert r.note == problem[len('--gpus 0: '):]


def test_one_gpu_runs_the_one_gpu_checks_and_skips_the_two_gpu_ones(monkeypatch, tmp_path):
    fake_driver(monkeypatch, [A100])
    session = CannedSession(environment(gpu_mxnet(1)), str(tmp_path))
    results = gpu_check.run_checks({'gpu1', 'gpu2-device', 'gpu2-nccl', 'bn-stats'}, session)
    assert statuses(results) == {'env': OK, 'gpu1': OK, 'gpu2-device': SKIPPED,
                                 'gpu2-nccl': SKIPPED, 'bn-stats': SKIPPED}
    assert all(r.note == 'needs 2 GPUs; only GPU 0 visible' for r in results[2:])
    assert results[1].figure == '1234 img/s'
    assert session.trained == [('gpu1', [0], ())]
    assert 'loss 0.500, test error 10.00%' in results[1].note


def test_nccl_is_skipped_where_mxnet_has_no_nccl(monkeypatch, tmp_path):
    fake_driver(monkeypatch, [A100, A100])
    session = CannedSession(environment(gpu_mxnet(2, nccl=False), requested=[1, 0]),
                            str(tmp_path))
    results = gpu_check.run_checks({'gpu1', 'gpu2-device', 'gpu2-nccl'}, session)
    assert statuses(results) == {'env': OK, 'gpu1': OK, 'gpu2-device': OK, 'gpu2-nccl': SKIPPED}
    assert results[2].note.endswith('; 1.00x one GPU')
    assert 'without NCCL' in results[3].note
    # --gpus 1,0: the devices in the order given
    assert session.trained == [('gpu1', [1], ()),
                               ('gpu2-device', [1, 0], ('--kv-store', 'device'))]


def test_a_gpu_mxnet_does_not_see_is_named(monkeypatch, tmp_path):
    fake_driver(monkeypatch, [A100, A100])
    env = environment(gpu_mxnet(1), requested=[0, 1])
    assert gpu_check.gpu_reason(env, 1) is None
    assert gpu_check.gpu_reason(env, 2) == 'GPU 1 not visible to MXNet (it sees 1)'


def test_mxnet_that_does_not_import_fails_the_environment(monkeypatch, tmp_path):
    fake_driver(monkeypatch, [A100])
    env = environment(dict(distribution='mxnet-cu112 1.9.1',
                           error='OSError: libcudnn.so.8: cannot open shared object file'))
    results = gpu_check.run_checks({'env', 'gpu1'}, gpu_check.Session(env, str(tmp_path), 10))
    assert statuses(results) == {'env': FAILED, 'gpu1': SKIPPED}
    assert 'libcudnn.so.8' in results[0].note
    assert results[1].note == 'MXNet does not import (see env)'


# ------------------------------------------------------------------------------------------
# Reading what the runs left behind (canned run folders)

class CannedSession(gpu_check.Session):
    """Training, the data pack, the probes and evaluate.py answered from canned folders and
    values: what the checks make of them is under test."""

    def __init__(self, env, root, records=None, summary=None, log='', returncode=0,
                 probes=None, scored=None):
        super().__init__(env, root, 10)
        self.canned = dict(records=records, summary=summary, log=log, returncode=returncode)
        self.probes, self.scored, self.trained = probes or {}, scored, []

    def train(self, name, ids, flags=(), env_updates=None, epochs=1):
        if name not in self.runs:
            self.trained.append((name, list(ids), tuple(flags)))
            folder = os.path.join(self.root, 'runs', name)
            os.makedirs(folder)
            c = self.canned
            records = c['records'] or [dict(epoch=e + 1, train_loss=0.5, test_error=10.0,
                                            images_per_sec=1234.0) for e in range(epochs)]
            with open(os.path.join(folder, 'log.jsonl'), 'w') as f:
                f.writelines(json.dumps(r) + '\n' for r in records)
            with open(os.path.join(folder, 'summary.json'), 'w') as f:
                json.dump(c['summary'] or dict(best_test_error=10.0), f)
            with open(os.path.join(folder, 'train.log'), 'w') as f:
                f.write(c['log'])
            for exported in ('best-symbol.json', 'best-0001.params'):
                open(os.path.join(folder, exported), 'w').close()
            child = gpu_check.Child(cmd=['python', 'train/digits.py', '--gpus', '0'],
                                    returncode=c['returncode'], stderr='Segmentation fault')
            self.runs[name] = gpu_check.Run(name, folder, child)
        return self.runs[name]

    def pack(self):
        return self.root

    def probe(self, name, *args):
        return self.probes[name]

    def evaluate(self, name, prefix):
        return self.scored


def test_a_non_finite_loss_fails(monkeypatch, tmp_path):
    fake_driver(monkeypatch, [A100])
    session = CannedSession(environment(gpu_mxnet(1)), str(tmp_path), records=[
        dict(epoch=1, train_loss=float('nan'), test_error=90.0, images_per_sec=10.0)])
    result, = gpu_check.run_checks({'gpu1'}, session)[1:]
    assert result.status == FAILED and result.note == 'the training loss is nan'


def test_a_crashed_run_fails_with_the_signal(monkeypatch, tmp_path):
    fake_driver(monkeypatch, [A100])
    session = CannedSession(environment(gpu_mxnet(1)), str(tmp_path),
                            returncode=-signal.SIGSEGV)
    result, = gpu_check.run_checks({'gpu1'}, session)[1:]
    assert result.status == FAILED
    assert result.note == 'train/digits.py --gpus 0: crashed (SIGSEGV): Segmentation fault'


def test_amp_reads_the_runs_precision_and_loss_scale(monkeypatch, tmp_path):
    fake_driver(monkeypatch, [A100])
    log = ('INFO Using AMP\nINFO AMP: decreasing loss scale to 32768.000000\n'
           'INFO AMP: decreasing loss scale to 16384.000000\n')
    summary = dict(best_test_error=10.0, precision=dict(amp='auto', dtype='float16'))
    session = CannedSession(environment(gpu_mxnet(1)), str(tmp_path / 'a'), log=log,
                            summary=summary)
    result, = gpu_check.run_checks({'amp'}, session)[1:]
    assert result.status == OK
    assert '2 overflowing step(s) skipped, scale now 16384' in result.note
    assert session.trained == [('amp', [0], ('--amp',))]

    session = CannedSession(environment(gpu_mxnet(1)), str(tmp_path / 'b'), log='INFO x\n',
                            summary=summary)
    result, = gpu_check.run_checks({'amp'}, session)[1:]
    assert result.status == FAILED and 'Using AMP' in result.note

    summary = dict(best_test_error=10.0, precision=dict(amp='auto', dtype='float32'))
    session = CannedSession(environment(gpu_mxnet(1)), str(tmp_path / 'c'), log=log,
                            summary=summary)
    result, = gpu_check.run_checks({'amp'}, session)[1:]
    assert result.status == FAILED and 'trained in float32, not float16' in result.note


def test_autotune_reports_both_settings_second_epoch(monkeypatch, tmp_path):
    fake_driver(monkeypatch, [A100])
    session = CannedSession(environment(gpu_mxnet(1)), str(tmp_path), records=[
        dict(epoch=1, train_loss=1.0, test_error=50.0, images_per_sec=100.0),
        dict(epoch=2, train_loss=0.5, test_error=20.0, images_per_sec=2000.0)])
    result, = gpu_check.run_checks({'autotune'}, session)[1:]
    assert result.status == OK and result.figure == '2000 / 2000 img/s'
    assert '(epoch 1, where tuning happens: 100 / 100 img/s)' in result.note
    assert [t[0] for t in session.trained] == ['autotune-1', 'autotune-0']


def agreement(max_abs_diff=1e-6, margins=()):
    return dict(images=64, max_abs_diff=max_abs_diff, finite=True, top1_differ=len(margins),
                differ_margins=list(margins))


@pytest.mark.parametrize('probe, scored, status, words', [
    (agreement(), dict(top1_error=10.0, images=360), OK, 'top-1 equal'),
    # a near-tie decided differently, and one test image apart: other arithmetic, not a bug
    (agreement(3e-3, [1e-3]), dict(top1_error=10.0 + 100 / 360, images=360), OK,
     'near-tie(s); train/evaluate.py on the CPU: 10.28%, the run logged 10.00% (one image'),
    (agreement(3e-3, [0.4]), dict(top1_error=10.0, images=360), FAILED, '1 top-1 differ'),
    (agreement(0.2), dict(top1_error=10.0, images=360), FAILED, 'softmax max |diff| 0.2'),
    (agreement(), dict(top1_error=10.0 + 200 / 360, images=360), FAILED, '(2 images apart)'),
])
def test_export_compares_devices_and_the_logged_error(monkeypatch, tmp_path, probe, scored,
                                                      status, words):
    fake_driver(monkeypatch, [A100])
    session = CannedSession(environment(gpu_mxnet(1)), str(tmp_path), scored=scored,
                            probes=dict(probe_export_agreement=probe))
    result, = gpu_check.run_checks({'export'}, session)[1:]
    assert result.status == status
    assert words in result.note


class CannedBench(CannedSession):
    """The benchmark's child writes `report` where --out says, and exits 0 or 1."""

    def __init__(self, env, root, report):
        super().__init__(env, root)
        self.report, self.commands = report, []

    def child(self, name, cmd, env_updates=None):
        self.commands.append(cmd)
        with open(cmd[cmd.index('--out') + 1], 'w') as f:
            json.dump(self.report, f)
        return gpu_check.Child(cmd=cmd, returncode=1 if self.report['errors'] else 0)


def test_bench_reads_the_benchmarks_report(monkeypatch, tmp_path):
    fake_driver(monkeypatch, [A100, A100])
    ours = dict(train_images_per_sec=2345.6, train_form='fused', infer_images_per_sec=9876.5,
                infer_form='branch', latency_ms=1.234)
    session = CannedBench(environment(gpu_mxnet(2), requested=[1]), str(tmp_path),
                          dict(errors={}, implementations=dict(dmrnet=ours)))
    result, = gpu_check.run_checks({'bench'}, session)[1:]
    assert result.status == OK and result.figure == '2346 img/s'
    assert 'exported inference 9876 img/s (branch form), batch-1 latency 1.23 ms' in result.note
    cmd = session.commands[0]
    assert cmd[cmd.index('--gpus') + 1] == '1' and '--no-torch' in cmd and '--no-gluoncv' in cmd

    session = CannedBench(environment(gpu_mxnet(2)), str(tmp_path / 'b'), dict(
        errors={'train:fused': 'job failed (exit -11)'}, implementations=dict(dmrnet=ours)))
    result, = gpu_check.run_checks({'bench'}, session)[1:]
    assert result.status == FAILED
    assert result.note == 'benchmark jobs failed: train:fused: job failed (exit -11)'


# ------------------------------------------------------------------------------------------
# Children that hang or crash

def test_a_hanging_child_is_killed_with_what_it_started(tmp_path):
    pid_file = tmp_path / 'grandchild'
    code = ('import subprocess, time; p = subprocess.Popen(["sleep", "60"]); '
            'open(%r, "w").write(str(p.pid)); time.sleep(60)' % str(pid_file))
    tic = time.time()
    child = gpu_check.run_child([sys.executable, '-c', code], 2, str(tmp_path))
    assert time.time() - tic < 10
    assert child.timed_out and child.problem().startswith('timed out after 2 s')
    grandchild = int(pid_file.read_text())
    deadline = time.time() + 5
    while alive(grandchild) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)


def alive(pid):
    """Whether `pid` runs (a killed process whose new parent has not reaped it yet is a
    zombie: it exists, but runs nothing)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def test_a_crashing_child_is_reported_not_raised(tmp_path):
    code = 'import os, signal, sys; print("boom", file=sys.stderr); os.kill(os.getpid(), 11)'
    child = gpu_check.run_child([sys.executable, '-c', code], 20, str(tmp_path),
                                log_to=str(tmp_path / 'crash'))
    assert child.problem() == 'crashed (SIGSEGV): boom'
    assert (tmp_path / 'crash.err').read_text() == 'boom\n'
    failing = gpu_check.run_child([sys.executable, '-c', 'import sys; sys.exit("x.py: error: '
                                   'no such GPU")'], 20, str(tmp_path))
    assert failing.problem() == 'exit status 1: no such GPU'


# ------------------------------------------------------------------------------------------
# Command line

@pytest.mark.parametrize('argv', [['--only', 'gpu1,nope'], ['--gpus', 'x'], ['--gpus', '3-1'],
                                  ['--timeout', '0'], ['--timeout', 'nan'], ['--onl', 'env']])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        gpu_check.parse_args(argv)
    assert e.value.code == 2
    assert 'error:' in capsys.readouterr().err


def test_gpu_ids_read_as_the_training_scripts_read_them():
    from dmrnet.utils.devices import parse_devices
    for text in ('', '0', '0,1', '0-3', '0,2-3, 6', '1,0'):
        assert gpu_check.parse_gpus(text) == parse_devices(text)


def test_only_always_includes_the_environment():
    assert gpu_check.parse_args(['--only', 'export']).names == {'env', 'export'}
    assert gpu_check.parse_args([]).names == set(gpu_check.CHECK_NAMES)


# ------------------------------------------------------------------------------------------
# The real pipeline, with CPU contexts standing in for the GPUs

class CpuStandIn(gpu_check.Session):
    def device_flags(self, ids):
        return ['--cpus', str(len(ids))]

    def context(self, index):
        return 'cpu(%d)' % index


def test_the_export_check_on_cpu_contexts(tmp_path, digits):
    """train/digits.py, its export, SymbolBlock.imports on two contexts and evaluate.py, as
    the export check runs them; then the BatchNorm probes on that run and on two contexts."""
    env = gpu_check.Environment([0], False, gpu_mxnet(1), dict(problems={}))
    session = CpuStandIn(env, str(tmp_path), 120, batches=2)
    session._pack = (digits, None)  # the suite's pack (data/digits.py --out, once a session)
    result, = gpu_check.run_checks({'export'}, session)[1:]
    assert result.status == OK, result.note
    assert result.data['agreement']['images'] == 64
    assert result.data['agreement']['max_abs_diff'] < 1e-6
    assert 'train/evaluate.py on the CPU: ' in result.note
    assert (tmp_path / 'logs' / 'gpu1.err').exists()

    prefix, epoch = session.runs['gpu1'].export_prefix()
    stats = gpu_check.probe_export_stats('%s-%04d.params' % (prefix, epoch))
    assert stats['means'] == stats['variances'] > 0
    assert stats['nonfinite'] == stats['negative'] == stats['untouched'] == []

    averaged = gpu_check.probe_bn_average(['cpu(0)', 'cpu(1)'])
    assert averaged['spread_before'] > 0.01  # the devices' statistics differed...
    assert averaged['max_error'] < 1e-6      # ...and each now holds their mean
    assert averaged['arrays'] == stats['means'] + stats['variances']


# ------------------------------------------------------------------------------------------
# End to end on this machine (no GPU)

def test_on_this_cpu_machine_every_gpu_check_is_skipped_quickly(tmp_path):
    report = tmp_path / 'report.json'
    tic = time.time()
    p = subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'gpu_check.py'),
                        '--json', str(report)], capture_output=True, text=True, timeout=120,
                       cwd=str(tmp_path))
    seconds = time.time() - tic
    assert p.returncode == 0, p.stderr
    assert seconds < 30  # a few seconds when the machine is idle
    written = json.loads(report.read_text())
    assert written['status'] == 0 and written['gpus'] == []
    assert written['environment']['mxnet']['features']['CUDA'] is False
    checks = written['checks']
    assert [c['name'] for c in checks] == gpu_check.CHECK_NAMES
    assert checks[0]['status'] == OK and 'CUDA no' in checks[0]['note']
    for c in checks[1:]:
        assert c['status'] == SKIPPED
        assert c['note'].startswith('no GPU visible: the installed MXNet is the CPU build')
    table = p.stdout.splitlines()
    assert table[0].split() == ['check', 'status', 'figure', 'note']
    for name in GPU_CHECKS:
        row = next(line for line in table if line.startswith(name + ' '))
        assert row.split()[1] == SKIPPED and 'no GPU visible' in row
    assert table[-1].startswith('9 checks: 1 ok, 8 skipped, 0 FAILED')
    assert os.listdir(str(tmp_path)) == ['report.json']  # no work folder left behind


def test_as_a_module_with_only_and_keep(tmp_path):
    p = subprocess.run([sys.executable, '-m', 'dmrnet.tools.gpu_check', '--only', 'export',
                        '--keep', str(tmp_path / 'kept')], capture_output=True, text=True,
                       timeout=120, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    rows = [line.split()[:2] for line in p.stdout.splitlines()
            if line.startswith(('env ', 'export '))]
    assert rows == [['env', OK], ['export', SKIPPED]]
    kept, = os.listdir(str(tmp_path / 'kept'))
    assert ('work folder kept: %s' % (tmp_path / 'kept' / kept)) in p.stdout
