"""The run plan (train/plan.py) in-process: what it resolves from a config and its data, that it
refuses every bad input with one line naming the setting, and that it writes nothing."""
import json
import os

import pytest

import mxnet as mx

from dmrnet.train import TrainConfig, plan as plans, rundir, schedule
from dmrnet.train.errors import UserError, command_line


def config(digits, save_dir, **changes):
    """A two-batch digits run of a small ResNet, with `changes` (any field, dataset too)."""
    fields = dict(data_dir=digits, model='resnet', L=3, max_batches=2, max_val_batches=1,
                  save_dir=None if save_dir is None else str(save_dir))
    fields.update(changes)
    return TrainConfig.for_dataset('digits').replace(**fields)


def tree(folder):
    """Every path under `folder` (to see that planning wrote nothing)."""
    return sorted(os.path.join(d, n) for d, subs, files in os.walk(str(folder))
                  for n in subs + files)


def test_a_plan_resolves_the_run_and_writes_nothing(digits, tmp_path):
    before = tree(tmp_path)
    p = plans.make_plan(config(digits, tmp_path / 'run', cpus=2, batch_size=32))
    assert tree(tmp_path) == before                       # not even the run folder
    assert p.save_dir == str(tmp_path / 'run') and p.data_dir == digits
    assert p.contexts == (mx.cpu(0), mx.cpu(1)) and p.kv_store == 'device'
    assert (p.parts, p.part_batch, p.device_batch) == (1, 32, 16)
    assert (p.classes, p.image_shape, p.num_train, p.num_val) == (10, (3, 32, 32), 1437, 360)
    assert p.model.family == 'resnet' and p.model.full_kwargs['L'] == 3
    assert (p.steps_per_epoch(), p.val_batches()) == (2, 1)      # the caps
    whole = plans.make_plan(config(digits, tmp_path / 'run', batch_size=32, max_batches=None,
                                   max_val_batches=None))
    assert (whole.steps_per_epoch(), whole.val_batches()) == (1437 // 32, -(-360 // 32))
    assert p.resume_meta is None and p.extended is None and p.is_chief
    with pytest.raises(Exception):
        p.save_dir = 'elsewhere'                          # frozen: read, never edited
    with pytest.raises(TypeError):
        p.info['classes'] = 3


def test_one_normalisation_override_or_the_registry(digits, tmp_path):
    from dmrnet.data import dataset_info
    own = dataset_info('digits')
    p = plans.make_plan(config(digits, tmp_path))
    assert (list(p.mean), list(p.std)) == (own['mean'], own['std'])
    p = plans.make_plan(config(digits, tmp_path, mean=(1.0, 2.0, 3.0), std=(4.0, 5.0, 6.0)))
    assert p.stats == ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    assert dataset_info('digits')['mean'] == own['mean']  # the registry is left as it was


def test_per_worker_and_per_device_shards(digits, tmp_path):
    p = plans.make_plan(config(digits, tmp_path, cpus=2, batch_size=32, shard_per_device=True))
    worker = p.for_worker(1, 2)
    assert (worker.rank, worker.num_workers, worker.is_chief) == (1, 2, False)
    assert (worker.parts, worker.part_batch, worker.part_ids()) == (4, 8, [2, 3])
    assert p.rank == 0                                    # the plan made for one worker stays
    with pytest.raises(UserError, match=r'batch_size=32 \(total\) is not divisible by 3 workers '
                                        r'x 2 devices'):
        p.for_worker(0, 3)


@pytest.mark.parametrize('changes, says', [
    (dict(gpus='zero'), "gpus='zero': expected ids like"),
    (dict(batch_size=30, cpus=4), 'batch_size=30 (total) is not divisible by 1 workers x 4'),
    (dict(dataset='mnist'), 'unknown dataset mnist'),
    (dict(augmentation='release-2016'), "augmentation='release-2016': only ImageNet"),
    (dict(dataset='imagenet', augmentation='release-2099'),
     "augmentation='release-2099': no such ImageNet augmentation; use one of release-2016, "
     "release-2018"),
    (dict(kv_store='nccl'), "kv_store='nccl' needs GPUs"),
    (dict(kv_store='dist_sync'), "kv_store='dist_sync' needs the parameter-server environment"),
    (dict(model='nosuchnet'), 'nosuchnet'),
    (dict(model='resnet26', L=18), '--model resnet26 is'),
    (dict(epochs=0), 'epochs=0: must be a whole number'),
    (dict(resume='nowhere'), 'resume: no checkpoint at nowhere'),
])
def test_bad_input_is_one_line_naming_the_setting(digits, tmp_path, monkeypatch, changes, says):
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    if 'model' in changes:
        changes.setdefault('L', None)   # a preset takes no L unless the case gives one
    with pytest.raises(UserError) as e:
        plans.make_plan(config(digits, tmp_path / 'run', **changes))
    assert says in str(e.value) and '\n' not in str(e.value)
    assert not (tmp_path / 'run').exists()


def test_messages_name_flags_on_the_command_line(digits, tmp_path):
    with command_line(), pytest.raises(UserError, match="^--gpus 'zero': expected ids"):
        plans.make_plan(config(digits, tmp_path, gpus='zero'))


def test_a_missing_pack_names_its_packing_command(tmp_path):
    with pytest.raises(UserError, match=r'digits_train.*data/digits.py'):
        plans.make_plan(config(str(tmp_path / 'empty'), tmp_path / 'run'))


def test_the_packs_are_checked_once_here_labels_too(digits, tmp_path, monkeypatch):
    """The plan hands the iterators checked packs (the dataset's with its packing command as the
    repair); a pack given by path with a label outside the classes is refused here, before any
    folder, as the dataset's own would be."""
    import cv2
    import numpy as np
    from dmrnet.data import iterators, records
    p = plans.make_plan(config(digits, tmp_path / 'run'))
    assert isinstance(p.train_pack, records.Pack) and 'data/digits.py' in p.train_pack.fix
    assert p.val_pack.rec == os.path.join(digits, 'digits_test.rec')

    def checked_again(*args, **kwargs):
        raise AssertionError('a pack the plan checked was checked again')
    monkeypatch.setattr(records, 'check_record_headers', checked_again)
    monkeypatch.setattr(records, 'verify_records', checked_again)
    batch = next(iter(iterators.get_train_iter('digits', digits, 8, files=p.train_pack)))
    assert batch.data[0].shape == (8, 3, 32, 32)
    monkeypatch.undo()

    image = cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    records.write_records(str(tmp_path), 'labelled', [(1, image), (99, image)])
    rec = os.path.join(str(tmp_path), 'labelled.rec')
    before = tree(tmp_path)
    with pytest.raises(UserError, match='labelled outside the 10 classes'):
        plans.make_plan(config(digits, tmp_path / 'run', rec_val=rec))
    assert tree(tmp_path) == before


def fake_checkpoint(folder, model, args, epoch=2):
    """A run folder's pointer of `model` (a ModelSpec) and the files it names, as rundir.save
    leaves them (a plan does not read the parameters)."""
    os.makedirs(folder, exist_ok=True)
    stem = rundir.CHECKPOINT % epoch
    for name in (stem + '.params', stem + '.states'):
        open(os.path.join(folder, name), 'wb').close()
    meta = dict(model=model.name, model_kwargs=model.kwargs, family=model.family,
                family_kwargs=model.full_kwargs, dataset='digits', epoch=epoch,
                params=stem + '.params', states=stem + '.states', args=args)
    with open(os.path.join(folder, rundir.LAST), 'w') as f:
        json.dump(meta, f)


def test_a_resume_is_checked_against_the_checkpoint(digits, tmp_path):
    run = str(tmp_path / 'run')
    fake_checkpoint(run, plans.make_plan(config(digits, run)).model, dict(epochs=10, lr=0.1))
    resumed = plans.make_plan(config(digits, None, resume=run, epochs=12))
    assert resumed.save_dir == resumed.resume_dir == os.path.abspath(run)
    assert dict(resumed.extended) == dict(epochs_from=10, epochs_to=12, at_epoch=2)
    # from the checkpoint's own file, the same folder (the rule an interrupted resume names)
    ckpt = os.path.join(run, 'ckpt-0002.params')
    assert plans.make_plan(config(digits, None, resume=ckpt, epochs=12)).save_dir == \
        resumed.save_dir == plans.run_folder(config(digits, None, resume=ckpt))
    with pytest.raises(UserError, match='this run was trained with lr 0.1; resuming with lr 0.5'):
        plans.make_plan(config(digits, None, resume=run, lr=0.5))
    with pytest.raises(UserError, match=r'the checkpoint is resnet .*L=3.*this run is resnet '
                                        r'.*L=4'):
        plans.make_plan(config(digits, None, resume=run, L=4))
    with pytest.raises(UserError, match="already holds a run: continue it with resume="):
        plans.make_plan(config(digits, run))


def test_the_schedule_is_one_function_of_the_epoch():
    c = TrainConfig.for_dataset('cifar10', epochs=8)
    assert schedule.steps_of(c) == [4, 6, 7]
    assert schedule.steps_of(c.as_dict()) == [4, 6, 7]      # a run's recorded args
    assert [schedule.lr_at(c, e) for e in range(8)] == pytest.approx(
        [0.1] * 4 + [0.01] * 2 + [1e-3, 1e-4])
    assert schedule.lr_steps(100, 'every30') == [30, 60, 90]
    with pytest.raises(ValueError, match='unknown lr schedule'):
        schedule.lr_steps(10, 'cosine')
    servers = schedule.server_schedule(c, start_epoch=5, steps_per_epoch=10, num_workers=2)
    assert servers.step == [20, 40] and servers.factor == 0.1
    assert schedule.server_schedule(c, start_epoch=7, steps_per_epoch=10, num_workers=2) is None


def test_recipe_settings_are_the_configs_and_the_flags_defaults():
    from dmrnet.train import cli, recipes
    from dmrnet.train.digits import parser
    recipe = recipes.recipe_for('fashion')
    c = TrainConfig.for_dataset('fashion')
    for name, value in recipe.settings().items():
        expected = dict(value) if name == 'family_defaults' else value
        assert getattr(c, name) == expected, name
    defaults = cli.parse_config(parser(), [])
    assert {k: getattr(defaults, k) for k in recipes.recipe_for('digits').settings()
            if k != 'family_defaults'} == {k: v for k, v in
                                           recipes.recipe_for('digits').settings().items()
                                           if k != 'family_defaults'}
