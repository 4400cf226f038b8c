"""dmrnet.utils.cuda without a GPU: the driver's every answer through a stand-in libcuda.so.1,
the preloading of the runtime wheels' libraries by soname, the wheel's machine-code table.

The GPU build itself (4.3 GB) is checked by make test-gpu-build (tests/gpu)."""
import os
import subprocess
import sys
import textwrap

import pytest

from dmrnet.utils import cuda, gpus
from standin_cuda import compile_c, compile_standin

from checkout import REPO  # noqa: E402


@pytest.fixture(scope='module')
def standin(tmp_path_factory):
    return compile_standin(str(tmp_path_factory.mktemp('standin')))


@pytest.fixture
def driver(standin, monkeypatch):
    """gpu_problem of the GPU build against the stand-in driver, configured by keywords."""
    for name in ('STANDIN_CUDA_VERSION', 'STANDIN_CUDA_DEVICES', 'STANDIN_CUDA_CC',
                 'CUDA_VISIBLE_DEVICES'):
        monkeypatch.delenv(name, raising=False)

    def problem(ids, version=12040, devices=0, cc=86, **env):
        monkeypatch.setenv('STANDIN_CUDA_VERSION', str(version))
        monkeypatch.setenv('STANDIN_CUDA_DEVICES', str(devices))
        monkeypatch.setenv('STANDIN_CUDA_CC', str(cc))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return cuda.gpu_problem(ids, build=cuda.GPU_BUILD, library=standin)
    return problem


def test_driver_info_reads_version_devices_and_capabilities(standin, monkeypatch):
    monkeypatch.setenv('STANDIN_CUDA_VERSION', '12040')
    monkeypatch.setenv('STANDIN_CUDA_DEVICES', '2')
    monkeypatch.setenv('STANDIN_CUDA_CC', '75')
    info = cuda.driver_info(standin)
    assert info.version == 12040 and info.error is None
    assert [(d.index, d.name, d.capability) for d in info.devices] == \
        [(0, 'Stand-in GPU 0', (7, 5)), (1, 'Stand-in GPU 1', (7, 5))]
    monkeypatch.setenv('STANDIN_CUDA_DEVICES', '0')
    info = cuda.driver_info(standin)
    assert info.devices == [] and info.error is None and info.init_status == 100


def test_usable_gpus_pass(driver):
    for cc in (50, 52, 61, 70, 75, 80, 86, 89):
        assert driver([0, 1], devices=2, cc=cc) is None, cc
    assert driver([], devices=0) is None    # no GPU asked for: nothing to check


def test_each_cause_is_one_line_with_its_fix(driver, tmp_path):
    old = driver([0], version=11020, devices=1)
    assert old.startswith('--gpus 0: the NVIDIA driver supports CUDA 11.2; the GPU build needs '
                          'CUDA 11.8') and 'release 520 or newer' in old
    none = driver([0, 1], devices=0)
    assert none.startswith('--gpus 0,1: no GPU visible') and 'leave --gpus empty' in none
    assert 'CUDA_VISIBLE_DEVICES' not in none
    hidden = driver([0], devices=0, CUDA_VISIBLE_DEVICES='')
    assert "CUDA_VISIBLE_DEVICES=''" in hidden
    assert driver([0, 3], devices=2) == '--gpus 0,3: GPU 3 not present (2 GPUs visible: 0-1)'
    assert driver([1], devices=1) == '--gpus 1: GPU 1 not present (1 GPU visible: 0)'
    for cc, shown in ((37, '3.7'), (90, '9.0'), (120, '12.0')):
        line = driver([0], devices=1, cc=cc)
        assert 'GPU 0 (Stand-in GPU 0) has compute capability %s' % shown in line, line
        assert 'no kernels' in line and 'sm_86' in line
    missing = cuda.gpu_problem([0], build=cuda.GPU_BUILD, library=str(tmp_path / 'libcuda.so.1'))
    assert missing.startswith('--gpus 0: no NVIDIA driver: ') and 'release 520' in missing
    for line in (old, none, hidden, missing):
        assert '\n' not in line


def test_the_build_is_named_before_the_driver_is_asked(tmp_path, monkeypatch):
    nowhere = str(tmp_path / 'libcuda.so.1')
    cpu = cuda.gpu_problem([0], build=cuda.CPU_BUILD, library=nowhere)
    assert 'the installed MXNet is the CPU build' in cpu and 'make venv BUILD=gpu' in cpu
    both = cuda.gpu_problem([0], build=cuda.BOTH_BUILDS, library=nowhere)
    assert 'both mxnet and mxnet-cu112 are installed' in both
    monkeypatch.setattr(cuda, 'mxnet_build', lambda: None)
    assert 'MXNet is not installed' in cuda.gpu_problem([0], library=nowhere)


def test_the_installed_build_is_read_from_package_metadata(tmp_path, monkeypatch):
    monkeypatch.setattr(cuda, '_site_folders', lambda: [str(tmp_path)])
    assert cuda.mxnet_build() is None
    (tmp_path / 'mxnet-1.9.1.dist-info').mkdir()
    assert cuda.mxnet_build() == cuda.CPU_BUILD
    (tmp_path / 'mxnet_cu112-1.9.1.dist-info').mkdir()
    assert cuda.mxnet_build() == cuda.BOTH_BUILDS
    (tmp_path / 'mxnet-1.9.1.dist-info').rmdir()
    assert cuda.mxnet_build() == cuda.GPU_BUILD
    # this environment: the CPU build that make venv installs without a driver
    monkeypatch.undo()
    assert cuda.mxnet_build() == cuda.CPU_BUILD


def test_wheel_kernels_cover_whole_generations_only():
    assert all(cuda.has_kernels_for(cc) for cc in ((5, 0), (5, 3), (6, 1), (7, 5), (8, 9)))
    assert not any(cuda.has_kernels_for(cc) for cc in ((3, 5), (3, 7), (9, 0), (10, 0), (12, 0)))


PRELOAD = textwrap.dedent('''
    import ctypes, json, sys
    from dmrnet.utils import cuda
    root = sys.argv[1]
    cuda.mxnet_build = lambda: cuda.GPU_BUILD
    cuda.wheel_library_folder = lambda part: '%s/%s/lib' % (root, part)
    loaded = cuda.preload()
    # what libmxnet.so does: a library that links the soname, loaded by path, no search path
    consumer = ctypes.CDLL(sys.argv[2]).consumer()
    print(json.dumps({'loaded': loaded, 'consumer': consumer}))
''')


def test_preload_satisfies_sonames_from_the_wheels_unless_the_system_has_them(tmp_path):
    """A library that links libnvToolsExt.so.1 loads once preload() has loaded the wheel's copy
    by path (the dynamic linker matches the soname of a loaded object); a copy the linker finds
    on its own (LD_LIBRARY_PATH) is preferred and the wheel's is left alone."""
    wheel = tmp_path / 'site' / 'nvtx' / 'lib'
    system = tmp_path / 'system'
    for folder, value in ((wheel, 1), (system, 2)):
        compile_c('int marker(void) { return %d; }' % value, folder / 'libnvToolsExt.so.1',
                  soname='libnvToolsExt.so.1')
    consumer = tmp_path / 'libconsumer.so'
    compile_c('int marker(void); int consumer(void) { return 10 * marker(); }', consumer,
              link=[str(wheel / 'libnvToolsExt.so.1')])
    env = dict(os.environ)
    env.pop('LD_LIBRARY_PATH', None)

    def load(extra_env):
        result = subprocess.run([sys.executable, '-c', PRELOAD, str(tmp_path / 'site'),
                                 str(consumer)], env=dict(env, **extra_env),
                                capture_output=True, text=True, cwd=REPO)
        return result
    import json
    from_wheel = load({})
    assert from_wheel.returncode == 0, from_wheel.stderr
    out = json.loads(from_wheel.stdout)
    assert out['loaded'] == {'libnvToolsExt.so.1': str(wheel / 'libnvToolsExt.so.1')}
    assert out['consumer'] == 10
    from_system = json.loads(load({'LD_LIBRARY_PATH': str(system)}).stdout)
    assert from_system['loaded'] == {'libnvToolsExt.so.1': 'system'}
    assert from_system['consumer'] == 20
    # and without preload the consumer cannot be loaded at all: the mechanism is what works
    bare = subprocess.run([sys.executable, '-c', 'import ctypes, sys; ctypes.CDLL(sys.argv[1])',
                           str(consumer)], env=env, capture_output=True, text=True)
    assert bare.returncode != 0 and 'libnvToolsExt.so.1' in bare.stderr


def test_preload_does_nothing_for_the_cpu_build():
    assert cuda.mxnet_build() == cuda.CPU_BUILD and cuda.preload() == {}


def test_a_gpu_build_without_driver_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(cuda, 'preload', lambda: {'libcudart.so.11.0': '/x/libcudart.so.11.0'})
    monkeypatch.setattr(cuda, '_load_driver', lambda library='': (None, 'not found'))
    monkeypatch.setattr(sys, 'argv', ['/elsewhere/notebook.py'])
    with pytest.raises(ImportError, match='the installed MXNet is the GPU build'):
        cuda.prepare()
    monkeypatch.setattr(sys, 'argv', [os.path.join(REPO, 'train', 'cifar.py')])
    with pytest.raises(SystemExit) as e:
        cuda.prepare()
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1
    assert err[0].startswith('cifar.py: error: the installed MXNet is the GPU build')
    assert 'make venv BUILD=cpu' in err[0]


def fatbin(entries):
    """A fat binary container as NVIDIA's tools lay it out: (kind, sm, payload bytes)."""
    import struct
    body = b''
    for kind, sm, payload in entries:
        header = struct.pack('<HHIQII', kind, 0x101, 64, len(payload), 0, len(payload))
        header += struct.pack('<II', 0, sm).ljust(64 - len(header), b'\0')
        body += header + payload
    return struct.pack('<IHHQ', 0xBA55ED50, 1, 16, len(body)) + body


def test_fatbin_archs_reads_the_kinds_and_architectures(tmp_path):
    blob = fatbin([(2, 50, b'\1' * 16), (2, 86, b'\2' * 8), (1, 80, b'ptx\0' * 4)])
    blob += fatbin([(2, 86, b'\3' * 24)])
    array = ','.join(str(b) for b in blob)
    library = tmp_path / 'libkernels.so'
    compile_c('__attribute__((section(".nv_fatbin"), used, aligned(8))) '
              'static const unsigned char kernels[] = {%s};' % array, library)
    assert cuda.fatbin_archs(str(library)) == {('sass', 'sm_50'): 1, ('sass', 'sm_86'): 2,
                                               ('ptx', 'sm_80'): 1}
    plain = tmp_path / 'libplain.so'
    compile_c('int nothing(void) { return 0; }', plain)
    assert cuda.fatbin_archs(str(plain)) == {}
    with pytest.raises(ValueError, match='not a 64-bit ELF'):
        cuda.fatbin_archs(os.path.join(REPO, 'README.md'))


def test_gpus_command(monkeypatch, capsys):
    assert gpus.main(['--check', '']) == 0
    for spec, expected in (('x', "--gpus 'x': expected ids"), ('0', 'the reason')):
        monkeypatch.setattr(cuda, 'gpu_problem', lambda ids: 'the reason for %s' % ids)
        with pytest.raises(SystemExit) as e:
            gpus.main(['--check', spec])
        assert e.value.code == 2 and expected in capsys.readouterr().err
    monkeypatch.setattr(cuda, 'gpu_problem', lambda ids: None)
    assert gpus.main(['--check', '0-3']) == 0
