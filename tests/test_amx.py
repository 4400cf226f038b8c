"""AMX for exported models only (dmrnet.utils.amx): nothing changes where the CPU or the kernel
says no; where AMX is there, exported bfloat16 and INT8 models run oneDNN's AMX kernels in
train/evaluate.py and tools/quantize.py, and a training process never has it, not even one
started by a process that enabled it. Hardware-dependent tests skip with the reason; nothing
here is timed (the speed is the benchmark's: docs/PERFORMANCE.md)."""
import errno
import json
import logging
import os
import subprocess
import sys

import pytest

from dmrnet.utils import amx

from checkout import REPO  # noqa: E402
NO_AMX = amx.no_amx_reason()
needs_amx = pytest.mark.skipif(NO_AMX is not None, reason='%s: AMX kernels cannot be checked'
                               % NO_AMX)
TIMEOUT = 300

# What a training process reports about AMX after fit(): its tile permission, the ISA limit in
# its environment, and whether it enabled AMX itself.
TRAIN_CHILD = '''
import json, os, sys
from dmrnet.train import cli
from dmrnet.train.digits import parser
from dmrnet.utils import amx
cli.main(parser(), sys.argv[1:])
print('AMXSTATE ' + json.dumps(dict(permission=amx.tile_permission(), enabled=amx.enabled(),
                                    isa=os.environ.get('DNNL_MAX_CPU_ISA'))))
'''

# Enables AMX for inference, then starts a training process from it.
PARENT = '''
import json, os, subprocess, sys
from dmrnet.utils import amx
on = amx.enable_amx_for_inference()
print('PARENT ' + json.dumps(dict(on=on, permission=amx.tile_permission(),
                                  isa=os.environ.get('DNNL_MAX_CPU_ISA'))), flush=True)
sys.exit(subprocess.run([sys.executable, '-c', sys.argv[1]] + sys.argv[2:]).returncode)
'''


def _state(stdout, tag):
    return json.loads([line for line in stdout.splitlines() if line.startswith(tag)][-1]
                      [len(tag) + 1:])


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ('DNNL_MAX_CPU_ISA', 'DNNL_VERBOSE',
                                                            'MKLDNN_VERBOSE')}
    env.update(extra)
    return env


def test_no_amx_cpu_changes_nothing(monkeypatch, caplog):
    monkeypatch.delenv(amx.ISA_VARIABLE, raising=False)
    monkeypatch.setattr(amx, '_cpu_flags', lambda: {'avx2', 'avx512f', 'avx512_bf16'})
    called = []
    monkeypatch.setattr(amx, '_arch_prctl', lambda *a: called.append(a) or (0, 0))
    with caplog.at_level(logging.DEBUG, logger='dmrnet.amx'):
        assert amx.enable_amx_for_inference() is False
    assert called == [] and amx.ISA_VARIABLE not in os.environ and not amx.enabled()
    lines = [r for r in caplog.records if r.name == 'dmrnet.amx']
    assert len(lines) == 1 and lines[0].levelno == logging.DEBUG
    assert 'no AMX' in lines[0].getMessage() and 'amx_tile' in lines[0].getMessage()


def test_kernel_refusal_changes_nothing(monkeypatch, caplog):
    monkeypatch.delenv(amx.ISA_VARIABLE, raising=False)
    monkeypatch.setattr(amx, '_cpu_flags', lambda: set(amx.AMX_FLAGS))
    monkeypatch.setattr(amx, 'no_amx_reason', lambda flags=None: None)
    monkeypatch.setattr(amx, '_arch_prctl', lambda code, arg: (-1, errno.EINVAL))
    with caplog.at_level(logging.DEBUG, logger='dmrnet.amx'):
        assert amx.enable_amx_for_inference() is False
    assert amx.ISA_VARIABLE not in os.environ and not amx.enabled()
    lines = [r for r in caplog.records if r.name == 'dmrnet.amx']
    assert len(lines) == 1 and lines[0].levelno == logging.DEBUG
    assert 'refused' in lines[0].getMessage()


def test_reasons_name_what_is_missing():
    assert amx.no_amx_reason({'avx512f', 'amx_tile'}).endswith('lack amx_bf16, amx_int8)') or \
        'Linux' in amx.no_amx_reason({'avx512f'})
    if NO_AMX is None or 'Linux' not in NO_AMX:
        assert amx.no_amx_reason(set(amx.AMX_FLAGS) | {'avx512f'}) is None


@needs_amx
def test_training_warns_when_the_environment_allows_amx(monkeypatch):
    monkeypatch.setenv(amx.ISA_VARIABLE, 'avx512_core_amx')
    warning = amx.training_warning()
    assert warning and 'unset it for training' in warning
    monkeypatch.setenv(amx.ISA_VARIABLE, 'AVX512_CORE_BF16')
    assert amx.training_warning() is None


def test_training_process_runs_without_amx(digits, tmp_path):
    """A fit() process has no tile permission and no AMX ISA limit, also when the process that
    started it enabled AMX (the permission does not cross exec, and the variable is taken out
    of the environment once oneDNN has read it). On CPUs without AMX the same holds trivially."""
    argv = ['--data-dir', digits, '--save-dir', str(tmp_path / 'run'), '--model', 'resnet',
            '--L', '3', '--epochs', '1', '--max-batches', '2', '--batch-size', '16',
            '--max-val-batches', '1', '--no-progress']
    r = subprocess.run([sys.executable, '-c', PARENT, TRAIN_CHILD] + argv, cwd=REPO,
                       env=_clean_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr[-3000:]
    parent, child = _state(r.stdout, 'PARENT'), _state(r.stdout, 'AMXSTATE')
    assert parent['on'] is (NO_AMX is None) and parent['permission'] is (NO_AMX is None)
    assert parent['isa'] is None  # read by oneDNN, then out of the environment again
    assert child == dict(permission=False, enabled=False, isa=None)
    assert 'AMX' not in r.stderr  # and no training warning either


@pytest.fixture(scope='module')
def exported(tmp_path_factory, digits):
    """A small model trained for one epoch; its run folder (best-* is the float32 export)."""
    folder = tmp_path_factory.mktemp('amx')
    run = folder / 'run'
    r = subprocess.run([sys.executable, 'train/digits.py', '--data-dir', digits, '--save-dir',
                        str(run), '--model', 'resnet', '--L', '3', '--epochs', '1',
                        '--batch-size', '32', '--no-progress'], cwd=REPO, env=_clean_env(),
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr[-3000:]
    return str(run)


def _verbose_impls(stdout, kind='convolution'):
    """{implementation: count} of the primitives oneDNN's verbose log says it executed."""
    found = {}
    for line in stdout.splitlines():
        fields = line.split(',')
        if fields[0] == 'dnnl_verbose' and len(fields) > 4 and fields[1] == 'exec' \
                and fields[3] == kind:
            found[fields[4]] = found.get(fields[4], 0) + 1
    return found


@needs_amx
def test_evaluate_runs_bfloat16_export_on_amx(exported, digits):
    """train/evaluate.py on a bfloat16 export: oneDNN's AMX convolutions run, and the error is
    the float32 model's within a few images."""
    best = os.path.join(exported, 'best')
    bf16 = os.path.join(exported, 'best-bf16')
    epoch = json.load(open(os.path.join(exported, 'best.json')))['epoch']
    from dmrnet.symbols.deploy import export_bfloat16
    export_bfloat16(best, bf16, epoch, (1, 3, 32, 32))
    scores = {}
    for prefix, verbose in ((best, '0'), (bf16, '1')):
        r = subprocess.run([sys.executable, 'train/evaluate.py', '--prefix', prefix,
                            '--dataset', 'digits', '--data-dir', digits, '--json'], cwd=REPO,
                           env=_clean_env(DNNL_VERBOSE=verbose), capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr[-3000:]
        scores[prefix] = json.loads(r.stdout.strip().splitlines()[-1])
        if verbose == '1':
            impls = _verbose_impls(r.stdout)
            assert any('avx512_core_amx' in k for k in impls), impls
    # 360 test images: bfloat16 rounding may flip a few borderline ones
    assert abs(scores[bf16]['top1_error'] - scores[best]['top1_error']) <= 2.0, scores


@needs_amx
def test_evaluate_without_amx_when_the_user_limits_the_isa(exported, digits):
    """A DNNL_MAX_CPU_ISA the user chose is kept: no AMX kernels then."""
    from dmrnet.symbols.deploy import export_bfloat16
    epoch = json.load(open(os.path.join(exported, 'best.json')))['epoch']
    bf16 = os.path.join(exported, 'best-bf16-noamx')
    export_bfloat16(os.path.join(exported, 'best'), bf16, epoch, (1, 3, 32, 32))
    r = subprocess.run([sys.executable, 'train/evaluate.py', '--prefix', bf16, '--dataset',
                        'digits', '--data-dir', digits], cwd=REPO,
                       env=_clean_env(DNNL_VERBOSE='1', DNNL_MAX_CPU_ISA='AVX512_CORE_BF16'),
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr[-3000:]
    impls = _verbose_impls(r.stdout)
    assert impls and not any('amx' in k for k in impls), impls


@needs_amx
def test_quantize_runs_int8_on_amx(exported, digits, tmp_path):
    """tools/quantize.py: INT8 convolutions on AMX, and INT8 agrees with float32 as the INT8
    test requires (within 2 points on 360 images)."""
    epoch = json.load(open(os.path.join(exported, 'best.json')))['epoch']
    r = subprocess.run([sys.executable, 'tools/quantize.py', '--prefix',
                        os.path.join(exported, 'best'), '--epoch', str(epoch), '--data-dir',
                        digits, '--num-calib', '128', '--out', str(tmp_path / 'q'), '--json'],
                       cwd=REPO, env=_clean_env(DNNL_VERBOSE='1'), capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr[-3000:]
    impls = _verbose_impls(r.stdout)
    assert any('amx' in k and 'int8' in k for k in impls), impls
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert abs(result['int8_minus_fp32']) <= 2.0, result


def test_python_callers_of_the_clis_keep_their_process_as_it_is(exported, digits, monkeypatch):
    """evaluate.main() called from Python (a process that may train) does not enable AMX."""
    from dmrnet.train import evaluate
    calls = []
    monkeypatch.setattr(evaluate, 'enable_amx_for_inference', lambda: calls.append(1))
    evaluate.main(['--prefix', os.path.join(exported, 'best'), '--dataset', 'digits',
                   '--data-dir', digits, '--json'])
    assert calls == []


def test_trace_names_the_kernels_of_both_log_formats():
    """The benchmark's per-row kernels (onednn_trace.kernels): oneDNN 2.x (MXNet) and 3.x
    (PyTorch) lines, only between the marks, ms per iteration, the slowest first."""
    from dmrnet.tools.bench.onednn_trace import TRACE_BEGIN, TRACE_END, kernels
    lines = ['dnnl_verbose,exec,cpu,convolution,jit:avx512_core,forward,src_f32,,mb1,9.0',
             TRACE_BEGIN,
             'dnnl_verbose,exec,cpu,convolution,brgconv:avx512_core_amx_bf16,fwd,a,,mb64,3.0',
             'dnnl_verbose,exec,cpu,reorder,simple:any,undef,a,,1x1,5.0',
             'onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx10_1_512_amx,'
             'forward_inference,a,,mb64,8.0',
             'dnnl_verbose,exec,cpu,convolution,brgconv:avx512_core_amx_bf16,fwd,a,,mb64,1.0',
             TRACE_END,
             'dnnl_verbose,exec,cpu,convolution,jit:avx512_core,forward,src_f32,,mb1,9.0']
    assert kernels(lines, 2) == {'brg_conv_fwd:avx10_1_512_amx': 4.0,
                                 'brgconv:avx512_core_amx_bf16': 2.0}
