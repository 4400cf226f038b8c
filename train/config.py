"""The typed configuration of one training run: built from the recipe table, overridable field
by field, validated once, and read (never edited) by every part of the training code. The
command line builds the same object (train/cli.py).

    from dmrnet.train import TrainConfig, fit
    config = TrainConfig.for_dataset('digits', data_dir='data/digits', epochs=3)
    net, summary = fit(config)
"""
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

from dmrnet.train.errors import ConfigError, flag, on_command_line, setting
from dmrnet.train.precision import AMP_MODES
from dmrnet.train.recipes import recipe_for
from dmrnet.train.schedule import SCHEDULES as LR_SCHEDULES
from dmrnet.utils.places import default_path

KV_STORES = ('local', 'device', 'nccl', 'dist_sync', 'dist_device_sync', 'dist_async')
OPTIMIZERS = ('nag', 'sgd')
# Seconds between the plain progress lines of output that is not a terminal (a log file, a
# pipe): often enough that a long epoch or test pass is not silent, rarely enough for a log.
PLAIN_PROGRESS_SECONDS = 30
# Architecture fields: a preset fixes them, a family takes them.
ARCH_FIELDS = ('L', 'width', 'branches', 'fused', 'blocks')


@dataclass(frozen=True)
class TrainConfig:
    # model
    model: str = 'dmrnet'
    L: Optional[int] = None
    width: Optional[int] = None
    branches: Optional[int] = None
    fused: Optional[bool] = None
    blocks: Optional[int] = None
    family_defaults: dict = field(default_factory=dict)
    # data
    dataset: str = 'digits'
    data_dir: Optional[str] = None
    num_data_threads: Optional[int] = None
    augmentation: Optional[str] = None   # ImageNet: a named recipe; None: the dataset's default
    # A pack made elsewhere (im2rec), by path, instead of the dataset's; and its statistics.
    rec_train: Optional[str] = None
    rec_train_idx: Optional[str] = None
    rec_val: Optional[str] = None
    rec_val_idx: Optional[str] = None
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None
    shard_per_device: bool = False
    # devices
    gpus: str = ''
    cpus: int = 1
    kv_store: str = 'device'
    # --amp: False (off), 'auto' (bfloat16 on a CPU only where measured faster; True means
    # this too) or 'force' (train/precision.py)
    amp: Union[bool, str] = False
    # optimisation
    batch_size: int = 64
    epochs: int = 10
    optimizer: str = 'nag'
    lr: float = 0.1
    lr_steps: Optional[Tuple[int, ...]] = None
    lr_schedule: str = 'fractions'
    lr_factor: float = 0.1
    wd: float = 1e-4
    momentum: float = 0.9
    seed: int = 0
    max_batches: Optional[int] = None
    max_val_batches: Optional[int] = None
    # output
    save_dir: Optional[str] = None
    resume: Optional[str] = None
    export_only: bool = False
    checkpoint_every: int = 1
    log_interval: int = 50
    progress: bool = True
    tensorboard: Optional[str] = None   # a folder for TensorBoard's event files

    @classmethod
    def for_dataset(cls, dataset, **overrides):
        """The paper's recipe for `dataset` (train/recipes.py) with `overrides` on top."""
        base = recipe_for(dataset).settings()
        base.update(dataset=dataset, family_defaults=dict(base['family_defaults']))
        base.update(overrides)
        return cls(**base)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def as_dict(self):
        """JSON-ready (checkpoints and summary.json record it)."""
        d = dataclasses.asdict(self)
        d['lr_steps'] = list(self.lr_steps) if self.lr_steps is not None else None
        return d

    # -- derived values
    def default_save_dir(self):
        """Where a run without --save-dir (and without --resume) writes: runs/<run> under the
        folder dmrnet.utils.places chooses (the current one, or the checkout)."""
        return default_path('runs', '%s-%s-s%d' % (self.dataset, self.model, self.seed))

    def arch_kwargs(self):
        """The architecture fields that were given."""
        return {k: getattr(self, k) for k in ARCH_FIELDS if getattr(self, k) is not None}

    # -- validation: every field checked before any work
    def validate(self):
        """Raise ConfigError naming the first field that cannot be trained, with a fix."""
        def need(ok, message):
            if not ok:
                raise ConfigError(message)

        def positive_int(name, value, allow_none=False):
            if value is None and allow_none:
                return
            need(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                 '%s: must be a whole number >= 1' % setting(name, value, '%r'))

        positive_int('batch_size', self.batch_size)
        positive_int('epochs', self.epochs)
        positive_int('cpus', self.cpus)
        positive_int('checkpoint_every', self.checkpoint_every)
        positive_int('max_batches', self.max_batches, allow_none=True)
        positive_int('max_val_batches', self.max_val_batches, allow_none=True)
        positive_int('num_data_threads', self.num_data_threads, allow_none=True)
        for name in ('L', 'width', 'branches', 'blocks'):
            positive_int(name, getattr(self, name), allow_none=True)
        need(isinstance(self.seed, int) and 0 <= self.seed < 2 ** 31,
             '%s: must be a whole number in 0..2147483647' % setting('seed', self.seed, '%r'))
        need(isinstance(self.log_interval, int) and self.log_interval >= 0,
             '%s: must be >= 0 (0: no batch log lines)'
             % setting('log_interval', self.log_interval, '%r'))
        for name, value, low, high in (('lr', self.lr, 0, None), ('wd', self.wd, 0, None),
                                       ('momentum', self.momentum, 0, 1),
                                       ('lr_factor', self.lr_factor, 0, 1)):
            need(isinstance(value, (int, float)) and math.isfinite(value),
                 '%s: must be a finite number' % setting(name, value, '%r'))
            if name == 'lr':
                need(value > 0, '%s: must be > 0 (the paper uses 0.1)' % setting(name, value, '%g'))
            else:
                need(value >= low, '%s: must be >= %g' % (setting(name, value, '%g'), low))
            if high is not None:
                need(value < high if name == 'momentum' else value <= high,
                     '%s: must be %s %g' % (setting(name, value, '%g'),
                                            '<' if name == 'momentum' else '<=', high))
        need(self.amp in (False, None, True) + AMP_MODES,
             '%s: use %s' % (setting('amp', self.amp, '%r'),
                             '--amp (auto) or --amp force' if on_command_line() else
                             "amp='auto' or amp='force'"))
        need(self.kv_store in KV_STORES, '%s: use one of %s'
             % (setting('kv_store', self.kv_store, '%r'), ', '.join(KV_STORES)))
        need(self.optimizer in OPTIMIZERS, '%s: use one of %s'
             % (setting('optimizer', self.optimizer, '%r'), ', '.join(OPTIMIZERS)))
        need(self.lr_schedule in LR_SCHEDULES, '%s: use one of %s'
             % (setting('lr_schedule', self.lr_schedule, '%r'), ', '.join(LR_SCHEDULES)))
        if self.lr_steps is not None:
            need(all(isinstance(s, int) and s >= 1 for s in self.lr_steps),
                 '%s: epochs must be whole numbers >= 1, e.g. 200,300,350'
                 % setting('lr_steps', self.lr_steps, '%r'))
        need(not (self.export_only and not self.resume),
             '%s needs %s' % (flag('export_only'), flag('resume')))
        need(self.save_dir != '', "%s: give a folder, or leave it out (the run then writes "
                                  "runs/<dataset>-<model>-s<seed>)" % setting('save_dir', '', '%r'))
        need((self.mean is None) == (self.std is None),
             '%s and %s go together' % (flag('mean'), flag('std')))
        for name in ('mean', 'std'):
            value = getattr(self, name)
            need(value is None or (len(value) == 3 and all(math.isfinite(v) for v in value)),
                 '%s: three numbers (R,G,B, 0-255 scale)' % setting(name, value, '%r'))
        need(self.std is None or all(v > 0 for v in self.std), '%s: must be > 0' % flag('std'))
        for idx, rec in (('rec_train_idx', 'rec_train'), ('rec_val_idx', 'rec_val')):
            need(getattr(self, idx) is None or getattr(self, rec) is not None,
                 '%s needs %s' % (flag(idx), flag(rec)))
        return self
