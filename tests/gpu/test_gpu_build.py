"""The GPU build (mxnet-cu112 1.9.1 + NVIDIA's CUDA 11 runtime wheels) verified on a CPU machine:
make test-gpu-build installs it into its own venv ($DMRNET_GPU_VENV) and runs this module from the
CPU venv. A stand-in libcuda.so.1 (tests/standin_libcuda.c) plays a driver that sees no GPU.

    1. the GPU build imports through dmrnet, with CUDA, cuDNN and NCCL, its libraries loaded from
       the wheels, and the machine-code table of dmrnet.utils.cuda matching its libmxnet.so;
    2. GPU runs stop with one line before data or run folders are touched;
    3. a CPU training run of the digits gives bit-identical per-epoch figures through both builds;
    4. each build's exported model scores the same in the other.
"""
import json
import os
import subprocess
import sys

import pytest

from standin_cuda import compile_standin

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GPU_VENV = os.environ['DMRNET_GPU_VENV']
GPU_PYTHON = os.path.join(GPU_VENV, 'bin', 'python')
CPU_PYTHON = sys.executable


@pytest.fixture(scope='module')
def driver(tmp_path_factory):
    """The environment of a process on a machine whose driver sees no GPU."""
    folder = os.path.dirname(compile_standin(str(tmp_path_factory.mktemp('driver'))))
    env = {k: v for k, v in os.environ.items() if not k.startswith('STANDIN_CUDA')}
    env.update(LD_LIBRARY_PATH=folder, OMP_NUM_THREADS='1')
    return env


def run(python, args, env, **kwargs):
    return subprocess.run([python] + args, env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=900, **kwargs)


IMPORT = '''
import json, os, sys
import dmrnet.utils
from dmrnet.utils import cuda
import mxnet as mx
features = mx.runtime.Features()
maps = open('/proc/self/maps').read()
lib = os.path.join(os.path.dirname(mx.__file__), 'libmxnet.so')
print(json.dumps(dict(
    build=cuda.mxnet_build(), loaded=cuda.LOADED,
    features={k: features.is_enabled(k) for k in ('CUDA', 'CUDNN', 'NCCL', 'MKLDNN')},
    gpus=mx.context.num_gpus(), computed=float((mx.nd.ones((2, 2)) * 3).sum().asscalar()),
    mapped=sorted({line.split()[-1] for line in maps.splitlines() if '/nvidia/' in line}),
    archs=['%s %s' % key for key in cuda.fatbin_archs(lib)],
    problem=cuda.gpu_problem([0]))))
'''


def test_1_the_gpu_build_imports_with_cuda_cudnn_and_nccl(driver):
    result = run(GPU_PYTHON, ['-c', IMPORT], driver)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=1))
    assert report['build'] == 'gpu'
    assert report['features'] == {'CUDA': True, 'CUDNN': True, 'NCCL': True, 'MKLDNN': True}
    assert report['gpus'] == 0 and report['computed'] == 12.0
    # every CUDA library libmxnet.so links, from the runtime wheels of this venv
    from dmrnet.utils.cuda import WHEEL_LIBRARIES, WHEEL_SASS
    site = os.path.join(GPU_VENV, 'lib')
    assert set(report['loaded']) == {soname for _, soname in WHEEL_LIBRARIES}
    for soname, path in report['loaded'].items():
        assert path.startswith(site) and path.endswith(soname), (soname, path)
        assert os.path.realpath(path) in {os.path.realpath(p) for p in report['mapped']}
    # the table the one-line refusals use is the binary's own
    assert sorted(report['archs']) == sorted('sass sm_%d%d' % cc for cc in WHEEL_SASS)
    assert report['problem'].startswith('--gpus 0: no GPU visible')


def assert_one_line(result, *phrases):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def test_2_gpu_runs_stop_with_one_line_before_touching_anything(driver, tmp_path):
    save_dir, data = tmp_path / 'run', tmp_path / 'data'
    script = run(GPU_PYTHON, ['train/cifar.py', '--gpus', '0', '--data-dir', str(data / 'cifar10'),
                              '--save-dir', str(save_dir)], driver)
    print(assert_one_line(script, 'cifar.py: error: --gpus 0: no GPU visible'))
    assert not save_dir.exists()
    make = subprocess.run(['make', '--no-print-directory', 'cifar10', 'GPUS=0,1', 'BUILD=gpu',
                           'VENV=' + GPU_VENV, 'DATA=' + str(data), 'RUNS=' + str(tmp_path)],
                          env=driver, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert make.returncode == 2, make.stdout + make.stderr
    assert '--gpus 0,1: no GPU visible' in make.stderr and 'Traceback' not in make.stderr
    print(make.stderr.strip().splitlines()[0])
    assert not data.exists(), 'make cifar10 packed data before refusing the GPUs'
    old = run(GPU_PYTHON, ['train/digits.py', '--gpus', '0'],
              dict(driver, STANDIN_CUDA_VERSION='11020', STANDIN_CUDA_DEVICES='1'))
    print(assert_one_line(old, 'the NVIDIA driver supports CUDA 11.2', 'release 520'))
    hopper = run(GPU_PYTHON, ['train/digits.py', '--gpus', '0'],
                 dict(driver, STANDIN_CUDA_DEVICES='1', STANDIN_CUDA_CC='90'))
    print(assert_one_line(hopper, 'compute capability 9.0', 'no kernels'))
    no_driver = dict(driver)
    no_driver.pop('LD_LIBRARY_PATH')
    missing = run(GPU_PYTHON, ['train/digits.py', '--epochs', '1'], no_driver)
    print(assert_one_line(missing, 'needs the NVIDIA driver (libcuda.so.1)', 'BUILD=cpu'))


@pytest.fixture(scope='module')
def trained(driver, tmp_path_factory):
    """The same digits run (2 epochs, one OpenMP thread, seed 0) through each build."""
    root = tmp_path_factory.mktemp('trained')
    data = str(root / 'digits')
    packed = run(CPU_PYTHON, ['data/digits.py', '--out', data], driver)
    assert packed.returncode == 0, packed.stderr
    runs = {}
    for build, python in (('cpu', CPU_PYTHON), ('gpu', GPU_PYTHON)):
        save_dir = str(root / build)
        result = run(python, ['train/digits.py', '--data-dir', data, '--save-dir', save_dir,
                              '--epochs', '2', '--seed', '0', '--no-progress',
                              '--num-data-threads', '1'], driver)
        assert result.returncode == 0, result.stderr[-3000:]
        with open(os.path.join(save_dir, 'log.jsonl')) as f:
            records = [json.loads(line) for line in f if line.strip()]
        with open(os.path.join(save_dir, 'summary.json')) as f:
            runs[build] = dict(dir=save_dir, records=records, summary=json.load(f))
    runs['data'] = data
    return runs


FIGURES = ('train_loss', 'train_error', 'test_error')


def test_3_cpu_training_through_the_gpu_build_matches_the_cpu_build(trained):
    cpu, gpu = trained['cpu']['records'], trained['gpu']['records']
    assert [r['epoch'] for r in cpu] == [r['epoch'] for r in gpu] == [1, 2]
    pairs = [(r[k], s[k]) for r, s in zip(cpu, gpu) for k in FIGURES]
    identical = all(a == b for a, b in pairs)
    print('per-epoch %s, CPU build vs GPU build: %s; %s' % (
        '/'.join(FIGURES), [(r[k], s[k]) for r, s in zip(cpu, gpu) for k in FIGURES],
        'bit-identical' if identical else 'not bit-identical'))
    # both builds run the same oneDNN CPU kernels in the same order (NaiveEngine, one thread)
    assert identical


@pytest.mark.parametrize('exported_by, loaded_by', [('gpu', 'cpu'), ('cpu', 'gpu')])
def test_4_an_export_of_one_build_scores_the_same_in_the_other(trained, driver, exported_by,
                                                               loaded_by):
    python = GPU_PYTHON if loaded_by == 'gpu' else CPU_PYTHON
    prefix = os.path.join(trained[exported_by]['dir'], 'best')
    result = run(python, ['train/evaluate.py', '--prefix', prefix, '--dataset', 'digits',
                          '--data-dir', trained['data'], '--json'], driver)
    assert result.returncode == 0, result.stderr[-3000:]
    scored = json.loads(result.stdout.strip().splitlines()[-1])
    recorded = trained[exported_by]['summary']['best_test_error']
    print('%s build export scored by the %s build: %.4f%% (recorded %.4f%%)'
          % (exported_by, loaded_by, scored['top1_error'], recorded))
    assert scored['images'] == 360
    assert scored['top1_error'] == pytest.approx(recorded, abs=1e-9)
