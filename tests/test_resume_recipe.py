"""A resume continues the recorded run: flags it does not give take the recorded values, flags
that would change the result are refused in one line naming each, only more --epochs may be
asked for (and are recorded); a refused resume leaves the folder as it was; an interrupted
resume from a checkpoint file names the folder to resume."""
import os

import pytest

from dmrnet.train import loop, rundir
from runs import records

# A recipe unlike the script's defaults, so that a value taken from them shows.
RECIPE = ['--lr', 0.05, '--wd', 3e-4, '--seed', 4]


def folder_state(folder):
    return {name: os.path.getmtime(os.path.join(folder, name)) for name in os.listdir(folder)}


@pytest.fixture(scope='module')
def finished(tiny_run, tmp_path_factory):
    """A finished 2-epoch run with a recipe unlike the script's defaults."""
    folder = tmp_path_factory.mktemp('finished')
    tiny_run.main(folder, *RECIPE, '--epochs', 2)
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
def test_a_resume_that_changes_the_recipe_is_refused(tiny_run, finished, capsys, flags, named):
    before = folder_state(finished)
    code, err = tiny_run.main(finished, '--resume', finished, *flags, tiny=False, capsys=capsys)
    line = err[-1]
    assert code == 2 and line.split(': error: ', 1)[1].startswith('--resume %s: this run was trained '
                                         'with %s; resuming with' % (finished, named)), line
    assert 'would mix two recipes' in line
    assert folder_state(finished) == before      # nothing touched, summary.json kept


def test_flags_left_out_take_the_recorded_values(tiny_run, finished):
    """--resume DIR alone continues the run as recorded: its 2 epochs, its lr and wd (not the
    script's 10 epochs and 0.1), so a finished run is only exported again."""
    summary = tiny_run.main(finished, '--resume', finished, tiny=False)
    assert summary['epochs'] == 2 and summary['args']['lr'] == 0.05
    assert summary['args']['wd'] == 3e-4 and summary['args']['seed'] == 4
    assert summary['extended'] == []
    assert [r['epoch'] for r in records(finished)] == [1, 2]


def test_more_epochs_extend_the_run_and_are_recorded(tiny_run, tmp_path):
    tiny_run.main(tmp_path, *RECIPE)
    summary = tiny_run.main(tmp_path, '--resume', tmp_path, '--epochs', 2, tiny=False)
    assert summary['epochs'] == 2 and summary['args']['lr'] == 0.05
    assert summary['extended'] == [dict(epochs_from=1, epochs_to=2, at_epoch=1)]
    train_log = open(os.path.join(str(tmp_path), rundir.TRAIN_LOG)).read()
    assert '--epochs 2 extends the run from 1 epochs' in train_log


def test_a_refused_resume_keeps_a_finished_run_finished(tiny_run, finished, tmp_path, capsys):
    """A bad --data-dir used to delete summary.json before the data was checked."""
    code, err = tiny_run.main(finished, '--resume', finished, tiny=False, capsys=capsys,
                              data_dir=tmp_path / 'nowhere')
    assert code == 2 and 'nowhere' in err[-1]
    assert rundir.is_finished(str(finished))


def test_an_interrupted_resume_from_a_checkpoint_file_names_its_folder(tiny_run, tmp_path, capsys,
                                                                      monkeypatch):
    tiny_run.main(tmp_path, *RECIPE)
    pointer, _ = rundir.locate(str(tmp_path))
    checkpoint = os.path.join(str(tmp_path), pointer['params'])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(loop, 'train_epoch', interrupted)
    # No --save-dir: the folder the message names comes from the checkpoint's path.
    code, err = tiny_run.main(None, '--resume', checkpoint, '--epochs', '2', tiny=False,
                              capsys=capsys)
    assert code == 130
    assert err[-1].endswith(': error: interrupted; resume with --resume %s' % tmp_path)


def test_an_empty_save_dir_is_refused(tiny_run, capsys):
    code, err = tiny_run.main('', *RECIPE, capsys=capsys)
    assert code == 2 and "--save-dir '': give a folder" in err[-1]


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
