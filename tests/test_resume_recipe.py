"""A resume continues the recorded run: flags it does not give take the recorded values, flags
that would change the result are refused in one line naming each, only more --epochs may be
asked for (and are recorded); a refused resume leaves the folder as it was; an interrupted
resume from a checkpoint file names the folder to resume."""
import json
import os

import pytest

from dmrnet.train import cli, loop

TINY = ['--model', 'resnet', '--L', 3, '--max-batches', 2, '--max-val-batches', 1,
        '--batch-size', 16, '--lr', 0.05, '--wd', 3e-4, '--seed', 4]


def main(digits, save_dir, *extra, capsys=None, data_dir=None):
    from dmrnet.train.digits import parser
    argv = ['--data-dir', data_dir or digits, '--save-dir', str(save_dir), '--no-progress',
            '--num-data-threads', '1'] + [str(a) for a in extra]
    with pytest.raises(SystemExit) if capsys else _nothing() as e:
        summary = cli.main(parser(), argv)
    if capsys:
        err = capsys.readouterr().err.strip().splitlines()
        return e.value.code, err[-1] if err else ''
    return summary


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def folder_state(folder):
    return {name: os.path.getmtime(os.path.join(folder, name)) for name in os.listdir(folder)}


@pytest.fixture(scope='module')
def finished(digits, tmp_path_factory):
    """A finished 2-epoch run with a recipe unlike the script's defaults."""
    folder = tmp_path_factory.mktemp('finished')
    main(digits, folder, *TINY, '--epochs', 2)
    return folder


@pytest.mark.parametrize('flags, named', [
    (['--lr', 0.1], '--lr 0.05'),
    (['--wd', 1e-4, '--momentum', 0.5], '--wd 0.0003 --momentum 0.9'),
    (['--batch-size', 32], '--batch-size 16'),
    (['--seed', 0], '--seed 4'),
    (['--optimizer', 'sgd'], '--optimizer nag'),
    (['--max-batches', 3], '--max-batches 2'),
    (['--lr-steps', 1], '--lr-steps none'),
    (['--epochs', 1], '--epochs (the checkpoint has trained 2) 2'),
    (['--epochs', 1, '--lr', 0.2], '--epochs (the checkpoint has trained 2) 2 --lr 0.05'),
    (['--cpus', 2], 'devices (per-device batch) 16'),
])
def test_a_resume_that_changes_the_recipe_is_refused(digits, finished, capsys, flags, named):
    before = folder_state(finished)
    code, line = main(digits, finished, '--resume', finished, *flags, capsys=capsys)
    assert code == 2 and line.split(': error: ', 1)[1].startswith('--resume %s: this run was trained '
                                         'with %s; resuming with' % (finished, named)), line
    assert 'would mix two recipes' in line
    assert folder_state(finished) == before      # nothing touched, summary.json kept


def test_flags_left_out_take_the_recorded_values(digits, finished):
    """--resume DIR alone continues the run as recorded: its 2 epochs, its lr and wd (not the
    script's 10 epochs and 0.1), so a finished run is only exported again."""
    summary = main(digits, finished, '--resume', finished)
    assert summary['epochs'] == 2 and summary['args']['lr'] == 0.05
    assert summary['args']['wd'] == 3e-4 and summary['args']['seed'] == 4
    assert summary['extended'] == []
    log = [json.loads(line) for line in open(os.path.join(str(finished), 'log.jsonl'))]
    assert [r['epoch'] for r in log] == [1, 2]


def test_more_epochs_extend_the_run_and_are_recorded(digits, tmp_path):
    main(digits, tmp_path, *TINY, '--epochs', 1)
    summary = main(digits, tmp_path, '--resume', tmp_path, '--epochs', 2)
    assert summary['epochs'] == 2 and summary['args']['lr'] == 0.05
    assert summary['extended'] == [dict(epochs_from=1, epochs_to=2, at_epoch=1)]
    train_log = open(os.path.join(str(tmp_path), 'train.log')).read()
    assert '--epochs 2 extends the run from 1 epochs' in train_log


def test_a_refused_resume_keeps_a_finished_run_finished(digits, finished, tmp_path, capsys):
    """A bad --data-dir used to delete summary.json before the data was checked."""
    code, line = main(digits, finished, '--resume', finished, capsys=capsys,
                      data_dir=str(tmp_path / 'nowhere'))
    assert code == 2 and 'nowhere' in line
    assert os.path.exists(os.path.join(str(finished), 'summary.json'))


def test_an_interrupted_resume_from_a_checkpoint_file_names_its_folder(digits, tmp_path, capsys,
                                                                      monkeypatch):
    main(digits, tmp_path, *TINY, '--epochs', 1)
    pointer = json.load(open(os.path.join(str(tmp_path), 'last.json')))
    checkpoint = os.path.join(str(tmp_path), pointer['params'])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(loop, 'train_epoch', interrupted)
    from dmrnet.train.digits import parser
    with pytest.raises(SystemExit) as e:
        cli.main(parser(), ['--data-dir', digits, '--no-progress', '--resume', checkpoint,
                            '--epochs', '2'])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 130
    assert line.endswith(': error: interrupted; resume with --resume %s' % tmp_path)


def test_an_empty_save_dir_is_refused(digits, capsys):
    code, line = main(digits, '', *TINY, capsys=capsys)
    assert code == 2 and "--save-dir '': give a folder" in line


def test_the_runner_refuses_to_mix_recipes_in_one_experiment(digits, tmp_path, capsys):
    """Finished runs are skipped by a rerun: with other training options the experiment would
    hold two recipes (the report compared them as one)."""
    from dmrnet.tools.experiments import runner
    common = ['digits-compare', '--runs-dir', str(tmp_path), '--data-dir', digits, '--seeds',
              '1', '--filter', '*dmrnet*', '--scale', '0.05', '--epochs', '1']
    assert runner.main(common + ['--', '--no-progress', '--max-val-batches', '1']) == 0
    capsys.readouterr()
    for extra, named in ((['--lr', '0.9'], '--lr 0.1'), (['--wd', '0.01'], '--wd 0.0001')):
        with pytest.raises(SystemExit) as e:
            runner.main(common + ['--', '--no-progress', '--max-val-batches', '1'] + extra)
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1, err
        assert 'were trained with another recipe (digits-dmrnet14-s0: %s' % named in err[0]
    with pytest.raises(SystemExit) as e:       # a longer schedule is another recipe here too
        runner.main(common[:-1] + ['2', '--', '--no-progress', '--max-val-batches', '1'])
    assert e.value.code == 2 and '--epochs 1' in capsys.readouterr().err
    # the same options (and ones that change nothing) go through
    assert runner.main(common + ['--', '--no-progress', '--max-val-batches', '1',
                                 '--log-interval', '5']) == 0
