"""Fixtures shared by the test modules.

Packed data sets live under the session's base temporary folder and are packed once per pytest
session, however many modules use them. `tiny_run` is the one way a test trains on them.
"""
import contextlib
import os
import subprocess
import sys

import pytest

import datagen
from checkout import REPO

# tests/gpu needs the GPU build's environment (4.3 GB): make test-gpu-build builds it and runs
# them with DMRNET_GPU_VENV set; make test leaves them out.
collect_ignore = [] if os.environ.get('DMRNET_GPU_VENV') else ['gpu']


# Settings a training run in this process makes for itself (dmrnet.utils.runtime chooses the
# engine), which later tests' child processes would otherwise inherit.
PROCESS_SETTINGS = ('MXNET_ENGINE_TYPE', 'MXNET_SUBGRAPH_VERBOSE')


@contextlib.contextmanager
def _process_settings_kept():
    """Around every test, and around every tiny run in this process: a module or session
    fixture that trains runs before the test's own restoring starts, and would leave its
    settings to every later test."""
    before = {name: os.environ.get(name) for name in PROCESS_SETTINGS}
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(autouse=True)
def _process_settings_restored():
    with _process_settings_kept():
        yield


@pytest.fixture
def no_network(monkeypatch):
    """Fail any download: tests work on files they generate in the official formats."""
    datagen._no_network(monkeypatch)


def _packed_once(tmp_path_factory, name, pack):
    folder = tmp_path_factory.getbasetemp() / ('packed-' + name)
    done = folder / '.packed'
    if not done.exists():
        folder.mkdir(exist_ok=True)
        pack(str(folder))
        done.write_text('ok')
    return str(folder)


@pytest.fixture(scope='session')
def digits(tmp_path_factory):
    """The real scikit-learn digits set (1,437 train + 360 test images) as RecordIO."""
    from dmrnet.data import digits as packer
    return _packed_once(tmp_path_factory, 'digits', lambda out: packer.main(['--out', out]))


@pytest.fixture(scope='session')
def cifar100(tmp_path_factory):
    """A generated CIFAR-100 release (100 train, 20 test images, 100 classes) as RecordIO."""
    from dmrnet.data import cifar

    def pack(out):
        src, _ = datagen.make_cifar(out + '-src', 'cifar100', per_batch=20, tar=False)
        cifar.main(['--dataset', 'cifar100', '--out', out, '--src', src])
    return _packed_once(tmp_path_factory, 'cifar100', pack)


class TinyRun:
    """A tiny training on the digits set: as a TrainConfig, in this process (loop.fit, or
    cli.main as train/digits.py runs it) or as a child process of train/digits.py.

    Every form is TINY, then the test's own flags: the last of a repeated flag wins, so a test
    states only where its run differs. tiny=False leaves TINY out, for a resume that must take
    the recorded recipe, or a run of another model. THREADS and no progress bar are always
    given: they change no result, so a resume may repeat them.
    """

    # TrainConfig fields; the flags are named after them (--batch-size, --max-val-batches).
    TINY = dict(model='resnet', L=3, batch_size=16, epochs=1, max_batches=2, max_val_batches=1)
    # One decoding thread: the tests share two cores with each other and with their children.
    THREADS = dict(num_data_threads=1)

    def __init__(self, digits):
        self.digits = digits

    def flags(self, without=()):
        """TINY as train/digits.py takes it, but for the fields `without`."""
        return _flags({k: v for k, v in self.TINY.items() if k not in without})

    def config(self, save_dir, **overrides):
        from dmrnet.train import TrainConfig
        fields = dict(self.TINY, **self.THREADS, progress=False)
        fields.update(overrides)
        return TrainConfig.for_dataset('digits', data_dir=self.digits, save_dir=str(save_dir),
                                       **fields)

    def argv(self, save_dir, *flags, tiny=True, data_dir=None, progress=False):
        """The flags of train/digits.py; save_dir None gives no --save-dir (the script then
        chooses the folder)."""
        argv = ['--data-dir', str(data_dir or self.digits)] + _flags(self.THREADS)
        if not progress:
            argv.append('--no-progress')
        if save_dir is not None:
            argv += ['--save-dir', str(save_dir)]
        return argv + (self.flags() if tiny else []) + [str(f) for f in flags]

    def fit(self, save_dir, *flags, **kwargs):
        """loop.fit of the command line's TrainConfig: the run's summary."""
        from dmrnet.train import cli, loop
        from dmrnet.train.digits import parser
        config = cli.parse_config(parser(), self.argv(save_dir, *flags, **kwargs))
        with _process_settings_kept():
            return loop.fit(config).summary

    def main(self, save_dir, *flags, capsys=None, **kwargs):
        """cli.main, the script's entry point, in this process: its summary; with capsys, a run
        expected to stop: (exit status, stderr lines)."""
        from dmrnet.train import cli
        from dmrnet.train.digits import parser
        argv = self.argv(save_dir, *flags, **kwargs)
        with _process_settings_kept():
            if capsys is None:
                return cli.main(parser(), argv)
            with pytest.raises(SystemExit) as stopped:
                cli.main(parser(), argv)
        return stopped.value.code, capsys.readouterr().err.strip().splitlines()

    def command(self, save_dir, *flags, **kwargs):
        return [sys.executable, os.path.join(REPO, 'train', 'digits.py')] + \
            self.argv(save_dir, *flags, **kwargs)

    @staticmethod
    def env():
        """A child's environment: one OpenMP thread, as the tests share a small machine with
        their children."""
        return dict(os.environ, OMP_NUM_THREADS='1')

    def subprocess(self, save_dir, *flags, env=None, timeout=300, **kwargs):
        """train/digits.py run to its end: the CompletedProcess, output captured as text."""
        return subprocess.run(self.command(save_dir, *flags, **kwargs), cwd=REPO,
                              env=env or self.env(), capture_output=True, text=True,
                              timeout=timeout)

    def start(self, save_dir, *flags, **kwargs):
        """train/digits.py started and left running, stdout and stderr piped."""
        return subprocess.Popen(self.command(save_dir, *flags, **kwargs), cwd=REPO,
                                env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)


def _flags(fields):
    """TrainConfig fields as the flags the scripts name them by."""
    from dmrnet.train.errors import command_line, flag
    with command_line():
        return [word for name, value in fields.items() for word in (flag(name), str(value))]


@pytest.fixture(scope='session')
def tiny_run(digits):
    """TinyRun on the session's digits pack (session-wide, for module fixtures that train)."""
    return TinyRun(digits)
