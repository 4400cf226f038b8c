"""The plan of one training run: everything the run needs, resolved once from its TrainConfig and
its data before anything is written.

`make_plan(config)` checks every input and answers every question the run will ask: which
devices, which KVStore, how the batch is split, the dataset's facts and the one normalisation
the run reads its images with, which packs it reads, which checkpoint it resumes and the folder
it writes, the network. It only reads (the packs' quick check, the checkpoint's records) and
raises a UserError (train/errors.py) naming the setting to change; the loop (train/loop.py)
keeps the side effects: the engine, the KVStore, the lock, logging, training. The command line
asks the same plan where the run writes when it is interrupted.

A distributed worker learns its rank only when its KVStore connects to the scheduler, so the
plan is made for one worker and `for_worker(rank, workers)` gives the worker's own.
"""
import dataclasses
import os
import types
from collections import namedtuple
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

from dmrnet.train import precision, resume, rundir
from dmrnet.train.config import TrainConfig
from dmrnet.train.errors import CheckpointError, UserError, flag, setting
from dmrnet.utils import cuda
from dmrnet.utils.devices import contexts as device_contexts, parse_devices

ModelSpec = namedtuple('ModelSpec', 'name kwargs family full_kwargs')
ModelSpec.__doc__ = """The network of a run: the name given (a preset or a family), the keyword
arguments get_model takes with it, and the family with every architecture argument resolved
(what a checkpoint records, and what a resume must match)."""


@dataclass(frozen=True)
class RunPlan:
    config: TrainConfig
    contexts: Tuple[Any, ...]
    kv_store: str
    info: Mapping[str, Any]          # the dataset's facts (dmrnet.data's registry), read-only
    mean: Tuple[float, ...]          # the normalisation the run reads images with (0-255 RGB)
    std: Tuple[float, ...]
    data_dir: str
    # What the run reads (dmrnet.data.records.Pack: .rec, .idx, repair command), checked here
    # once: the dataset's own packs, or the packs given by path.
    train_pack: Tuple[str, str, str]
    val_pack: Tuple[str, str, str]
    num_train: int
    num_val: int
    model: ModelSpec
    save_dir: str
    resume_meta: Optional[Mapping[str, Any]] = None   # the checkpoint continued, if any
    resume_dir: Optional[str] = None
    extended: Optional[Mapping[str, int]] = None      # this resume's --epochs extension
    rank: int = 0
    num_workers: int = 1

    # -- who computes what
    @property
    def classes(self):
        return self.info['classes']

    @property
    def image_shape(self):
        return tuple(self.info['image_shape'])

    @property
    def stats(self):
        return self.mean, self.std

    @property
    def distributed(self):
        return self.kv_store.startswith('dist')

    @property
    def async_kv(self):
        return 'async' in self.kv_store

    @property
    def is_chief(self):
        return self.rank == 0

    @property
    def parts(self):
        """Shards the training set is read in: one per worker, or one per device."""
        return self.num_workers * (len(self.contexts) if self.config.shard_per_device else 1)

    @property
    def part_batch(self):
        return self.config.batch_size // self.parts

    @property
    def device_batch(self):
        return self.config.batch_size // (self.num_workers * len(self.contexts))

    def part_ids(self):
        """The shards this worker reads."""
        if self.config.shard_per_device:
            d = len(self.contexts)
            return [self.rank * d + i for i in range(d)]
        return [self.rank]

    def steps_per_epoch(self):
        n = self.num_train // (self.part_batch * self.parts)
        if self.config.max_batches is not None:
            n = min(n, self.config.max_batches)
        return max(n, 1)

    def val_batches(self):
        """Batches of one test pass of this worker (for progress lines)."""
        batch = self.config.batch_size // self.num_workers
        n = -(-self.num_val // (batch * self.num_workers))
        if self.config.max_val_batches is not None:
            n = min(n, self.config.max_val_batches)
        return max(n, 1)

    def requested_amp_dtype(self):
        """--amp's dtype on these devices before the CPU's measurement decides (None: no
        --amp)."""
        return precision.amp_dtype(self.contexts) if self.config.amp else None

    # -- what the run records
    def recorded_config(self):
        return dict(self.config.as_dict(), data_dir=self.data_dir, save_dir=self.save_dir)

    def identity(self):
        return dict(model=self.model.name, model_kwargs=self.model.kwargs,
                    family=self.model.family, family_kwargs=self.model.full_kwargs,
                    dataset=self.config.dataset)

    def extensions(self):
        """Every --epochs extension of this run, as its record keeps them."""
        earlier = list((self.resume_meta or {}).get('extended') or [])
        return earlier + ([dict(self.extended)] if self.extended else [])

    def for_worker(self, rank, num_workers):
        """This plan for worker `rank` of `num_workers` (as the KVStore assigned them)."""
        plan = dataclasses.replace(self, rank=rank, num_workers=num_workers)
        _check_batch(plan.config, len(plan.contexts), num_workers)
        return plan


def make_plan(config, data=None):
    """The RunPlan of `config` for one worker; UserError naming the setting to change when the
    run cannot start. `data`: the data module (dmrnet.data)."""
    if data is None:
        import dmrnet.data as data
    config.validate()
    contexts = devices(config)
    check_kvstore(config, contexts)
    _check_batch(config, len(contexts), 1)
    try:
        info = data.dataset_info(config.dataset)
    except (KeyError, ValueError) as e:
        raise UserError('unknown dataset %s (%s)' % (config.dataset, e)) from None
    if config.augmentation and info['recipe'] != 'imagenet':
        raise UserError('%s: only ImageNet has named augmentations; %s trains with its own'
                        % (setting('augmentation', config.augmentation), config.dataset))
    if config.augmentation and config.augmentation not in data.IMAGENET_AUGMENTATIONS:
        raise UserError('%s: no such ImageNet augmentation; use one of %s'
                        % (setting('augmentation', config.augmentation),
                           ', '.join(data.IMAGENET_AUGMENTATIONS)))
    # --rgb-mean/--rgb-std replace the registry's normalisation here, once; the iterators and
    # the exports take what the plan says.
    mean, std = data.normalisation(info, None if config.mean is None else
                                   (config.mean, config.std))
    data_dir = config.data_dir or data.default_data_dir(config.dataset)
    given = (('train', config.rec_train, config.rec_train_idx),
             ('val', config.rec_val, config.rec_val_idx))
    train_pack, val_pack = (_pack(config, data, info, data_dir, *split) for split in given)
    # a pack given by path replaces the dataset's, and its .idx says how many images it holds
    num_train = data.count_records(train_pack.idx) if config.rec_train else info['num_train']
    num_val = data.count_records(val_pack.idx) if config.rec_val else info['num_val']
    resume_meta = resume_dir = None
    if config.resume:
        try:
            resume_meta, resume_dir = rundir.locate(config.resume)
        except CheckpointError as e:
            raise UserError('%s: %s' % (flag('resume'), e)) from None
    save_dir = rundir.run_folder(config.save_dir, config.resume, config.default_save_dir())
    _check_folder(save_dir, resume_dir)
    model = model_spec(config, info['classes'])
    extended = _check_resume(config, model, resume_meta) if resume_meta else None
    return RunPlan(config=config, contexts=tuple(contexts), kv_store=config.kv_store,
                   info=types.MappingProxyType(dict(info)), mean=tuple(mean), std=tuple(std),
                   data_dir=data_dir, train_pack=train_pack, val_pack=val_pack,
                   num_train=num_train, num_val=num_val, model=model, save_dir=save_dir,
                   resume_meta=resume_meta, resume_dir=resume_dir, extended=extended)


def run_folder(config):
    """Where `config`'s run writes (what an interruption's message names), without checking
    anything else."""
    return rundir.run_folder(config.save_dir, config.resume, config.default_save_dir())


# -- the parts of a plan

def devices(config):
    """The run's contexts: the GPUs of --gpus once the driver says they can run this build, else
    --cpus CPU contexts (where --amp needs a CPU with bfloat16)."""
    try:
        gpus = parse_devices(config.gpus)
    except ValueError:
        raise UserError('%s: expected ids like "0", "0,1" or "0-7"'
                        % setting('gpus', config.gpus, '%r')) from None
    if gpus:
        # the driver is asked directly: MXNet's own answer (num_gpus) cannot tell a CPU build
        # from a missing driver from a GPU it has no kernels for
        problem = cuda.gpu_problem(gpus)
        if problem:
            raise UserError(problem)
    found = device_contexts(config.gpus, config.cpus)
    if config.amp and not gpus:
        reason = precision.check_amp(found)
        if reason:
            raise UserError(reason)
    return found


def check_kvstore(config, contexts):
    """The KVStore can serve these devices in this environment."""
    if config.amp and 'async' in config.kv_store and \
            precision.needs_loss_scaling(precision.amp_dtype(contexts)):
        # The servers would apply a step before AMP could see that its gradients overflowed.
        raise UserError('%s cannot be combined with %s (updates happen on the '
                        'servers, where overflowed float16 steps cannot be skipped); use '
                        'dist_sync or dist_device_sync'
                        % (flag('amp'), setting('kv_store', config.kv_store)))
    if config.kv_store.startswith('dist') and 'DMLC_ROLE' not in os.environ:
        raise UserError('%s needs the parameter-server environment: start the run with '
                        'tools/launch.py -n WORKERS -s SERVERS -- python train/...'
                        % setting('kv_store', config.kv_store))
    if config.kv_store == 'nccl' and not any(c.device_type == 'gpu' for c in contexts):
        raise UserError('%s needs GPUs; use local or device on CPU'
                        % setting('kv_store', 'nccl'))


def model_spec(config, classes):
    """The ModelSpec of the run: a preset or a family plus the fields that were given. The
    recipe's `family_defaults` (e.g. the demo's L=6) complete a bare family only; a field that
    contradicts a preset's own architecture is refused rather than silently building another
    network under the preset's name."""
    from dmrnet.symbols.registry import preset, resolve
    kwargs = config.arch_kwargs()
    try:
        family, _ = resolve(config.model)
    except ValueError as e:
        raise UserError(str(e).split('\n')[0] + ' (see --help for --model)') from None
    if family == config.model:
        for k, v in (config.family_defaults or {}).items():
            kwargs.setdefault(k, v)
    else:
        own = preset(config.model)['kwargs']
        clash = sorted(k for k in kwargs if k in own and own[k] != kwargs[k])
        if clash:
            given = ' '.join('--%s %s' % (k, kwargs[k]) for k in clash)
            raise UserError('--model %s is %s; %s contradicts it: give the family instead, e.g. '
                            '--model %s %s' % (config.model, describe_kwargs(own),
                                               ', '.join('--%s %s' % (k, kwargs[k])
                                                         for k in clash), family, given))
    kwargs['classes'] = classes
    family, full = resolve(config.model, **kwargs)
    return ModelSpec(config.model, kwargs, family, full)


def describe_kwargs(kwargs):
    return '(%s)' % ', '.join('%s=%s' % item for item in sorted((kwargs or {}).items()))


def _check_batch(config, devices, workers):
    if config.batch_size % (workers * devices):
        raise UserError('%s (total) is not divisible by %d workers x %d devices'
                        % (setting('batch_size', config.batch_size), workers, devices))


def _pack(config, data, info, data_dir, split, rec, idx):
    """The checked Pack of `split`: the one given by path (`rec`, `idx`: headers and labels),
    else the dataset's own (the quick check of its manifest, headers and labels). Checked before
    the run folder is touched (a resume must not mark a finished run unfinished and then stop
    on a missing pack), and only here: the iterators of every epoch read what this returns."""
    try:
        if rec:
            return data.external_pack(rec, idx, classes=info['classes'])
        return data.record_files(config.dataset, data_dir, split)
    except data.DataError as e:
        raise UserError(str(e)) from None


def _check_folder(save_dir, resume_dir):
    """Starting afresh in a folder that holds a run, or continuing another run there, would mix
    two runs' checkpoints, logs and exports."""
    if rundir.holds_run(save_dir) and not (
            resume_dir and os.path.samefile(save_dir, resume_dir)):
        raise UserError('%s already holds a run: continue it with %s, or start afresh in '
                        'another (or emptied) folder (it holds %s)'
                        % (setting('save_dir', save_dir), setting('resume', save_dir),
                           rundir.model_name(save_dir) or 'a finished run'))


def _check_resume(config, model, meta):
    """The checkpoint is of this network and data, and this run continues its recipe
    (train/resume.py); returns the --epochs extension this resume asks for, or None."""
    mine = (model.family, model.full_kwargs, config.dataset)
    theirs = (meta.get('family'), meta.get('family_kwargs'), meta.get('dataset'))
    if not rundir.json_equal(mine, theirs):
        raise UserError('%s: the checkpoint is %s %s on %s, this run is %s %s on %s'
                        % (setting('resume', config.resume), theirs[0],
                           describe_kwargs(theirs[1]), theirs[2], mine[0],
                           describe_kwargs(mine[1]), mine[2]))
    recorded = meta.get('args') or {}
    found = resume.differences(recorded, config, meta['epoch'])
    if found:
        raise UserError(resume.refusal(config.resume, found))
    grown = resume.extension(recorded, config)
    if grown:
        return dict(epochs_from=grown[0], epochs_to=grown[1], at_epoch=meta['epoch'])
    return None
