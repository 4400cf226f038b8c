"""A run folder belongs to one run; bad input is one line and exit status 2 before any work;
SIGTERM stops like Ctrl-C. Each case is the command a user typed, or its in-process twin."""
import os
import signal
import time

import pytest

from dmrnet.train import cli, rundir
from runs import exported, records


@pytest.mark.parametrize('flags, says', [
    (['--batch-size', '0'], '--batch-size 0: must be a whole number >= 1'),
    (['--batch-size', '-64'], '--batch-size -64: must be a whole number >= 1'),
    (['--lr', '-1'], '--lr -1: must be > 0'),
    (['--wd', '-1'], '--wd -1: must be >= 0'),
    (['--momentum', '5'], '--momentum 5: must be < 1'),
    (['--checkpoint-every', '0'], '--checkpoint-every 0: must be a whole number >= 1'),
    (['--seed', '-5'], '--seed -5: must be a whole number in 0..2147483647'),
    (['--epochs', '0'], '--epochs 0: must be a whole number >= 1'),
    (['--lr', 'nan'], '--lr nan: must be a finite number'),
])
def test_bad_numbers_are_one_line_before_any_work(tiny_run, tmp_path, capsys, flags, says):
    folder = tmp_path / 'run'
    code, lines = tiny_run.main(folder, *flags, capsys=capsys)
    assert code == 2 and len(lines) == 1 and says in lines[0], lines
    assert 'Traceback' not in lines[0] and not folder.exists()


def test_unparseable_flags_and_abbreviations_are_refused(capsys):
    from dmrnet.train.digits import parser
    for argv, says in ((['--lr-steps', 'a,b'], 'expected comma-separated epochs'),
                       (['--mode', 'hybrid'], 'unrecognized arguments: --mode hybrid')):
        with pytest.raises(SystemExit) as e:
            cli.parse_config(parser(), argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1 and says in err[0], err


def test_read_only_save_dir_is_one_line(tiny_run, tmp_path, capsys):
    if os.geteuid() == 0:  # root writes anywhere: a file where the folder should be instead
        target = tmp_path / 'file'
        target.write_text('x')
        folder = target / 'run'
    else:
        locked = tmp_path / 'locked'
        locked.mkdir(mode=0o500)
        folder = locked / 'run'
    code, lines = tiny_run.main(folder, capsys=capsys)
    assert code == 2 and len(lines) == 1 and 'cannot be written' in lines[0], lines


def test_failure_before_the_first_epoch_leaves_no_folder(tiny_run, tmp_path, capsys):
    folder = tmp_path / 'run'
    code, lines = tiny_run.main(folder, data_dir=tmp_path / 'no-data', capsys=capsys)
    assert code == 2 and 'digits_train' in lines[-1]
    assert not folder.exists()


def test_resuming_into_another_runs_folder_is_refused_untouched(tiny_run, tmp_path):
    """The reported sequence: A (resnet26) and B (dmrnet) exist; `--resume B --save-dir A`
    must refuse before touching A, which stays a finished, resumable run."""
    a, b = tmp_path / 'A', tmp_path / 'B'
    # Models of their own (resnet26 is L=12: the tiny run's --L 3 would contradict it).
    short = tiny_run.flags(without=('model', 'L'))
    assert tiny_run.subprocess(a, *short, '--model', 'resnet26', tiny=False).returncode == 0
    assert tiny_run.subprocess(b, *short, tiny=False).returncode == 0
    before = {f: (a / f).read_bytes() for f in sorted(os.listdir(a)) if (a / f).is_file()}
    r = tiny_run.subprocess(a, *short, '--resume', b, '--epochs', 2, tiny=False)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and 'already holds a run' in err[-1] and 'Traceback' not in r.stderr
    after = {f: (a / f).read_bytes() for f in sorted(os.listdir(a)) if (a / f).is_file()}
    assert after == before
    r = tiny_run.subprocess(None, *short, '--resume', a, '--epochs', 2, '--model', 'resnet26',
                            tiny=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [rec['epoch'] for rec in records(a)] == [1, 2]


# A run long enough to be caught in the middle (a resume must repeat it: train/resume.py).
LONG = ['--max-batches', 20]


def _start(tiny_run, folder, *extra, epochs=50):
    return tiny_run.start(folder, '--epochs', epochs, *LONG, *extra)


def _wait_for(path, proc, timeout=120, poll=0.2):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
        time.sleep(poll)


def test_a_second_training_on_a_held_folder_is_refused(tiny_run, tmp_path):
    folder = tmp_path / 'twin'
    first = _start(tiny_run, folder)
    try:
        _wait_for(str(folder / rundir.LAST), first)
        r = tiny_run.subprocess(folder, '--resume', folder, '--epochs', 60, *LONG)
        line = r.stderr.strip().splitlines()[-1]
        assert r.returncode == 2 and 'in use by process %d' % first.pid in line, r.stderr
    finally:
        first.kill()
        first.wait()
    # The kernel released the killed holder's lock: the folder resumes (here: exports).
    r = tiny_run.subprocess(None, '--resume', folder, '--export-only', tiny=False)
    assert r.returncode == 0, r.stderr[-2000:]


def test_sigterm_stops_like_ctrl_c_and_resumes(tiny_run, tmp_path):
    folder = tmp_path / 'term'
    # Epochs of 80 batches (about 1 s each here) rather than LONG's 20: with 4 epochs of 20 the
    # run could end before a test process slowed by a loaded machine sent its signal (CI, once).
    proc = tiny_run.start(folder, '--epochs', 4, '--max-batches', 80)
    # Epoch 1 is the best so far: exported when it improved, after its checkpoint.
    _wait_for(exported(folder, rundir.BEST_EXPORT, 'meta'), proc, poll=0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-3000:]
    assert err.strip().splitlines()[-1].endswith('error: terminated; resume with --resume %s'
                                                 % folder)
    # The best model was exported when it improved: deployable files before the run ended.
    assert os.path.exists(exported(folder, rundir.BEST_EXPORT, 'symbol'))
    assert not rundir.is_finished(str(folder))
    assert len(records(folder)) < 4
    r = tiny_run.subprocess(None, '--resume', folder, tiny=False)  # recorded recipe, 4 epochs
    assert r.returncode == 0, r.stderr[-2000:]
    assert [rec['epoch'] for rec in records(folder)] == [1, 2, 3, 4]


@pytest.mark.parametrize('damaged', ['params', 'states'])
def test_resuming_a_damaged_checkpoint_is_one_line(tiny_run, tmp_path, capsys, damaged):
    """Random bytes in the checkpoint being resumed: one line naming the file, no traceback.
    Optimizer states are MXNet arrays, never a pickle (which would run what it holds)."""
    folder = tmp_path / 'run'
    assert tiny_run.subprocess(folder).returncode == 0
    first = folder / (rundir.CHECKPOINT % 1)
    states = first.with_suffix('.states').read_bytes()
    assert states[:1] != b'\x80'  # pickle protocol 2+ starts with 0x80
    target = first.with_suffix('.' + damaged)
    target.write_bytes(os.urandom(len(target.read_bytes())))
    code, lines = tiny_run.main(None, '--resume', folder, '--epochs', 2, capsys=capsys)
    assert code == 2 and 'Traceback' not in '\n'.join(lines)
    assert str(target) in lines[-1] and 'unreadable' in lines[-1], lines


def _damaged_copy(digits, tmp_path, name, write):
    """A copy of the digits pack with `write(file)` applied to NAME.rec (same size: the start-up
    size and manifest checks pass)."""
    import shutil
    folder = tmp_path / 'damaged'
    shutil.copytree(digits, folder)
    with open(folder / (name + '.rec'), 'r+b') as f:
        write(f)
    return str(folder)


def _zeros(f):
    f.seek(0, os.SEEK_END)
    f.seek(min(220000, f.tell() // 2))  # the reported case: 4,000 zeros at byte 220,000
    f.write(b'\0' * 4000)


def _bad_png(f):
    import numpy as np
    offsets = np.loadtxt(f.name[:-4] + '.idx', dtype=np.int64, usecols=1)
    f.seek(int(offsets[5]) + 8 + 24 + 40)  # inside the 6th image's PNG data
    f.write(b'\x00\xff' * 20)


@pytest.mark.parametrize('damage', [_zeros, _bad_png])
def test_a_damaged_pack_is_one_line_naming_it_and_the_repair(digits, tiny_run, tmp_path,
                                                             damage):
    folder = _damaged_copy(digits, tmp_path, 'digits_train', damage)
    r = tiny_run.subprocess(tmp_path / 'run', data_dir=folder)
    line = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert os.path.join(folder, 'digits_train.rec') in line
    assert 'fix: python data/digits.py --out %s' % folder in line
    if damage is _zeros:  # found by the start-up check, before any training
        assert 'damaged' in line and 'Epoch' not in r.stderr


def test_evaluate_refuses_a_damaged_test_pack(digits, tmp_path, capsys):
    from dmrnet.symbols import get_model
    from dmrnet.symbols.deploy import export_model
    from dmrnet.train import evaluate
    folder = _damaged_copy(digits, tmp_path, 'digits_test', _zeros)
    net = get_model('resnet26')
    net.initialize()
    export_model(net, str(tmp_path / 'm'))
    with pytest.raises(SystemExit) as e:
        evaluate.main(['--prefix', str(tmp_path / 'm'), '--dataset', 'digits', '--data-dir',
                       folder])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and os.path.join(folder, 'digits_test.rec') in line
    assert 'python data/digits.py' in line


def test_a_sigterm_whose_exception_a_finalizer_swallowed_still_stops():
    """Python ignores an exception raised inside __del__ (MXNet's NDArray finalizers run all
    the time): a SIGTERM landing there once let a CI run finish with status 0. The training
    loop's per-step check raises it again."""
    from dmrnet.utils import process

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)   # the handler raises here, and it is lost

    with process.sigterm_as_interrupt():
        Finalized()
        with pytest.raises(process.Terminated):
            process.raise_if_terminated()
    process.raise_if_terminated()                  # outside: nothing pending


def test_a_lost_sigterm_no_loop_looked_for_ends_the_command_as_terminated():
    """Packers and the runner have no per-step check: the context raises it on the way out."""
    from dmrnet.utils import process

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(process.Terminated):
        with process.sigterm_as_interrupt():
            Finalized()
    with process.sigterm_as_interrupt():
        pass                                       # nothing pending from before
