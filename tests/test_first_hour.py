"""What a new user meets in the first hour (issue 28, items 6-8): progress in redirected logs,
epoch lines that cannot be misread, errors worded for the surface in use, where the default
folders live, no empty folders after a failed start or download, the anchors' flag names, and
the launcher's tags beside the training's ranks."""
import io
import logging
import os
import sys

import pytest

from dmrnet.train import TrainConfig, cli, loop
from dmrnet.train.errors import ConfigError, command_line
from dmrnet.train.errors import UserError
from dmrnet.utils import places

from checkout import REPO


class Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def messages():
    handler = Messages()
    logger = logging.getLogger('dmrnet.train')
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


# -- progress and epoch lines

def test_plain_progress_at_most_every_period(monkeypatch):
    now = [100.0]
    lines = []
    progress = loop.PlainProgress('epoch 1/8 training', 10, every=30, clock=lambda: now[0])
    monkeypatch.setattr(loop.log, 'info', lambda fmt, *a: lines.append(fmt % a))
    for batch in range(1, 11):
        now[0] += 10
        progress(batch, batch * 64)
    # a batch every 10 s: a line every third, none for the last batch (the epoch line follows)
    assert lines == ['epoch 1/8 training: batch %d of 10, 6 images/s' % b for b in (3, 6, 9)]


def test_redirected_run_logs_progress_and_unambiguous_epochs(tiny_run, tmp_path, monkeypatch,
                                                             messages):
    monkeypatch.setattr(sys.stderr, 'isatty', lambda: False, raising=False)
    monkeypatch.setattr(loop.PlainProgress.__init__, '__defaults__',
                        (0, loop.time.time))  # every batch but the last
    # A batch between the first and the last, and a test line before the last test batch.
    loop.fit(tiny_run.config(tmp_path / 'run', max_batches=3, max_val_batches=2))
    assert 'epoch 1/1 training: batch 1 of 3' in ' '.join(messages)
    assert any(m.startswith('epoch 1/1 training: batch 2 of 3, ') and m.endswith(' images/s')
               for m in messages)
    assert any(m.startswith('epoch 1/1 test: batch 1 of 2, ') for m in messages)
    epoch_lines = [m for m in messages if m.startswith('epoch 1/1: ')]
    assert len(epoch_lines) == 1 and 'test error' in epoch_lines[0]
    assert not any(m.startswith('[Epoch') for m in messages)
    assert 'Epoch[0] Validation-accuracy=' in ' '.join(messages)  # MXNet's 0-based, kept


def test_terminal_gets_no_plain_lines(tiny_run, tmp_path, monkeypatch, messages):
    monkeypatch.setattr(sys.stderr, 'isatty', lambda: True, raising=False)
    monkeypatch.setattr(loop.PlainProgress.__init__, '__defaults__', (0, loop.time.time))
    loop.fit(tiny_run.config(tmp_path / 'run'))
    assert not any(' batch 1 of ' in m for m in messages)


def test_training_doc_says_mxnet_counts_from_zero():
    text = open(os.path.join(REPO, 'docs', 'TRAINING.md')).read()
    assert 'epoch 3/8' in text and 'Epoch[2]' in text


# -- errors worded for the surface in use

def test_api_error_names_the_field_cli_the_flag(tiny_run, tmp_path, capsys):
    save = tmp_path / 'run'
    loop.fit(tiny_run.config(save))
    with pytest.raises(UserError) as e:
        loop.fit(tiny_run.config(save))
    message = str(e.value)
    assert message.startswith("save_dir='%s' already holds a run: continue it with resume='%s'"
                               % (save, save)), message
    assert '--' not in message
    code, err = tiny_run.main(save, capsys=capsys)
    assert code == 2 and '--save-dir %s already holds a run: continue it with ' \
        '--resume %s' % (save, save) in '\n'.join(err)


def test_api_validation_names_fields():
    with pytest.raises(ConfigError, match=r"^epochs=0: must be a whole number"):
        TrainConfig.for_dataset('digits', epochs=0).validate()
    with command_line():
        with pytest.raises(ConfigError, match=r"^--epochs 0: must be a whole"):
            TrainConfig.for_dataset('digits', epochs=0).validate()
    with pytest.raises(ConfigError, match=r'^export_only needs resume$'):
        TrainConfig.for_dataset('digits', export_only=True).validate()


# -- where the default folders live

def test_defaults_follow_one_rule(tmp_path, monkeypatch):
    from dmrnet.data import default_data_dir
    bare = tmp_path / 'bare'
    bare.mkdir()
    monkeypatch.chdir(bare)
    repo = places.checkout()
    assert repo == REPO  # the editable checkout the tests run from
    assert default_data_dir('fashion_val') == os.path.join(REPO, 'data', 'fashion')
    assert TrainConfig.for_dataset('digits').default_save_dir() == \
        os.path.join(REPO, 'runs', 'digits-dmrnet-s0')
    own = tmp_path / 'project'
    (own / 'data').mkdir(parents=True)
    monkeypatch.chdir(own)
    assert default_data_dir('digits') == os.path.join('data', 'digits')
    assert TrainConfig.for_dataset('digits').default_save_dir() == \
        os.path.join('runs', 'digits-dmrnet-s0')


def test_failed_start_leaves_no_empty_folders(tiny_run, tmp_path, monkeypatch):
    def broken(spec):
        raise UserError('no network today')
    monkeypatch.setattr(loop.build, 'network', broken)
    save = tmp_path / 'new' / 'runs' / 'x'
    with pytest.raises(UserError):
        loop.fit(tiny_run.config(save))
    assert not (tmp_path / 'new').exists()
    (tmp_path / 'kept').mkdir()
    (tmp_path / 'kept' / 'other').write_text('someone else\'s')
    with pytest.raises(UserError):
        loop.fit(tiny_run.config(tmp_path / 'kept' / 'x'))
    assert sorted(os.listdir(tmp_path / 'kept')) == ['other']


def test_failed_download_leaves_no_empty_folder(tmp_path, monkeypatch):
    import urllib.request
    from dmrnet.data import sources
    from dmrnet.data.errors import DataError

    def offline(*args, **kwargs):
        raise OSError('network is unreachable')
    monkeypatch.delenv('DMRNET_NO_DOWNLOAD', raising=False)
    monkeypatch.setattr(urllib.request, 'urlopen', offline)
    dest = tmp_path / 'data' / 'cifar10' / 'cifar-10-python.tar.gz'
    with pytest.raises(DataError, match='download failed'):
        sources.download('http://example.invalid/x.tar.gz', str(dest), ' ' * 32, 'fix')
    assert os.listdir(tmp_path) == []
    (tmp_path / 'data' / 'svhn').mkdir(parents=True)
    (tmp_path / 'data' / 'svhn' / 'train_32x32.mat').write_text('a verified first file')
    with pytest.raises(DataError):
        sources.download('http://example.invalid/y', str(tmp_path / 'data' / 'svhn' / 'y'),
                         ' ' * 32, 'fix')
    assert os.listdir(tmp_path / 'data' / 'svhn') == ['train_32x32.mat']


# -- the anchors' flag names

def test_anchor_flags_map_cleanly():
    from dmrnet.train.cifar import parser
    c = cli.parse_config(parser(), ['--num-gpus', '4', '--network', 'resnet110',
                                    '--lr-decay', '0.2'])
    assert (c.gpus, c.model, c.lr_factor) == ('0-3', 'resnet110', 0.2)
    assert cli.parse_config(parser(), ['--num-gpus', '0']).gpus == ''
    assert 'gpus' in cli.given_fields(parser(), ['--num-gpus', '2'])


def test_num_gpus_with_gpus_is_one_line(capsys):
    from dmrnet.train.cifar import parser
    with pytest.raises(SystemExit) as e:
        cli.parse_config(parser(), ['--num-gpus', '2', '--gpus', '0,1'])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and '--num-gpus and --gpus' in err[0]


def test_readme_lists_what_is_accepted():
    from dmrnet.train.cifar import parser
    text = open(os.path.join(REPO, 'README.md')).read()
    section = text.split('### Coming from GluonCV')[1].split('\n## ')[0]
    flags = {o for a in parser()._actions for o in a.option_strings}
    import re
    accepted = re.search(r'Their flag names \(([^)]*)\) are accepted', section).group(1)
    named = re.findall(r'`(--[a-z-]+)', accepted)
    assert named and all(f in flags for f in named), named
    for refused in ('--data-train', '--model-prefix', '--load-epoch', '--dtype'):
        assert refused not in flags and refused in section


# -- the launcher's tags

def test_launcher_says_tags_and_ranks_differ():
    from dmrnet.tools.launch import Job
    out = io.StringIO()
    say = [sys.executable, '-c', 'print("hello")']
    job = Job([('worker 0', None, {}, say), ('worker 1', None, {}, say)], 'local', out=out)
    try:
        job.start()
        assert job.wait(timeout=60) == 0
    finally:
        job.kill()
    text = out.getvalue()
    assert '[worker 0] hello' in text and '[worker 1] hello' in text
    assert '[launch] "[worker N]" numbers the worker processes in launch order' in text
    assert 'can differ' in text
