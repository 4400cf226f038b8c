"""The training loop: `fit(config)` trains (or resumes) one run and hands each job to its module.

Data parallel over every given context (split_and_load + gluon.Trainer on the chosen KVStore),
across machines with MXNet's parameter server (tools/launch.py). Resumable bit for bit: each
epoch's randomness is seeded from (seed, epoch), the learning rate is a function of the epoch,
and checkpoints hold parameters, momentum and the epoch count; CPU runs use MXNet's naive
(program-order) engine (dmrnet.utils.runtime.select_engine).

    set-up            train/build.py        devices, KVStore, network, logging
    one step          train/step.py         forward, backward, update
    across devices    train/distributed.py  metric sums, BN statistics, start barrier
    the run folder    train/rundir.py       log.jsonl, checkpoints, summary.json
    scoring           train/evaluate.py     top-1 / top-k errors
"""
import errno
import glob
import logging
import math
import os
import random
import shutil
import sys
import time
from collections import namedtuple

import numpy as np

import mxnet as mx
from mxnet import gluon

from dmrnet.symbols import count_params
from dmrnet.symbols.deploy import export_model
from dmrnet.train import build, distributed, precision, resume, rundir
from dmrnet.train.build import RunStopped, UserError
from dmrnet.train.config import PLAIN_PROGRESS_SECONDS, ConfigError, flag, setting
from dmrnet.train.evaluate import evaluate
from dmrnet.train.step import make_trainer, train_step
from dmrnet.utils import amx
from dmrnet.utils.runtime import select_engine

log = logging.getLogger('dmrnet.train')

# Seconds between progress-bar redraws: often enough to watch, rarely enough for a remote tty.
PROGRESS_REFRESH = 0.5
# Errors that mean the run folder cannot take more data; the run stops, keeping what it has.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO)

FitResult = namedtuple('FitResult', 'net summary')


class PlainProgress:
    """Where no progress bar can show (stderr is a file or a pipe), a log line at most every
    `every` seconds: "epoch 3/8 training: batch 120 of 468, 812 images/s", so that a long epoch
    or test pass is not silent in a log. Called after each batch with the batches and images so
    far."""

    def __init__(self, what, total, every=PLAIN_PROGRESS_SECONDS, clock=time.time):
        self.what, self.total, self.every, self.clock = what, total, every, clock
        self.start = self.last = clock()

    def __call__(self, batch, images):
        now = self.clock()
        if now - self.last < self.every or batch >= self.total:
            return  # the last batch is followed by the epoch's own line
        self.last = now
        log.info('%s: batch %d of %d, %.0f images/s', self.what, batch, self.total,
                 images / max(now - self.start, 1e-9))


def plain_progress(run, what, total):
    """A PlainProgress for rank 0 when stderr is not a terminal; None where the bar (or
    nothing, on other workers) shows."""
    if not run.is_chief or sys.stderr.isatty():
        return None
    return PlainProgress(what, total)


def remove_empty_parents(path, root):
    """Remove the folders from `path`'s parent up to `root` (included) while they are empty: the
    ones a failed start created; a folder another run wrote into meanwhile stays."""
    path, root = os.path.abspath(path), os.path.abspath(root)
    while path != root and path.startswith(root + os.sep):
        path = os.path.dirname(path)
        try:
            os.rmdir(path)
        except OSError:
            return


def seed_everything(seed, epoch):
    """Seed every RNG from (seed, epoch) so an epoch's randomness does not depend on history."""
    s = (seed * 1000003 + epoch * 7919 + 17) % (2 ** 31 - 1)
    mx.random.seed(s)
    np.random.seed(s)
    random.seed(s)


class Run:
    """What one training run is made of, derived once from its (immutable) config."""

    def __init__(self, config, data):
        try:
            config.validate()
        except ConfigError as e:
            raise UserError(str(e)) from None
        self.config, self.data = config, data
        self.contexts = build.contexts(config)
        # --amp's dtype before the CPU decision (decide_precision, at the end of set-up)
        self.amp_dtype = precision.amp_dtype(self.contexts) if config.amp else None
        self.loss_scaling = bool(config.amp) and precision.needs_loss_scaling(self.amp_dtype)
        self.precision = None
        # Before the first operator (the KVStore's included), which creates MXNet's engine.
        self.engine = select_engine(self.contexts)
        self.kv = build.kvstore(config, self.contexts)
        dist = distributed.is_distributed(self.kv)
        self.async_kv = 'async' in config.kv_store
        self.rank = self.kv.rank if dist else 0
        self.num_workers = self.kv.num_workers if dist else 1
        self.is_chief = self.rank == 0
        try:
            self.info = data.dataset_info(config.dataset)
        except (KeyError, ValueError) as e:
            raise UserError('unknown dataset %s (%s)' % (config.dataset, e)) from None
        self.classes = self.info['classes']
        if config.augmentation and self.info['recipe'] != 'imagenet':
            raise UserError('--augmentation %s: only ImageNet has named augmentations; %s '
                            'trains with its own' % (config.augmentation, config.dataset))
        self.data_dir = config.data_dir or data.default_data_dir(config.dataset)
        # A pack given by path replaces the dataset's; its .idx says how many images it holds.
        self.train_files = self.val_files = None
        self.num_train = self.info['num_train']
        try:
            if config.rec_train:
                self.train_files = data.external_pack(config.rec_train, config.rec_train_idx)
                self.num_train = data.count_records(self.train_files[1])
            if config.rec_val:
                self.val_files = data.external_pack(config.rec_val, config.rec_val_idx)
        except data.DataError as e:
            raise UserError(str(e)) from None
        if config.mean is not None:
            self.info['mean'], self.info['std'] = list(config.mean), list(config.std)
        self.stats = (self.info['mean'], self.info['std'])
        self.resume_meta = self.resume_dir = None
        if config.resume:
            try:
                self.resume_meta, self.resume_dir = rundir.locate(config.resume)
            except rundir.CheckpointError as e:
                raise UserError('%s: %s' % (flag('resume'), e)) from None
        self.save_dir = rundir.run_folder(config.save_dir, config.resume,
                                          config.default_save_dir())
        if rundir.holds_run(self.save_dir) and not (
                self.resume_dir and os.path.samefile(self.save_dir, self.resume_dir)):
            # Starting afresh there, or continuing another run there, would mix two runs'
            # checkpoints, logs and exports.
            raise UserError('%s already holds a run: continue it with %s, or start afresh in '
                            'another (or emptied) folder (it holds %s)'
                            % (setting('save_dir', self.save_dir),
                               setting('resume', self.save_dir),
                               rundir.model_name(self.save_dir) or 'a finished run'))
        devices = len(self.contexts)
        self.parts = self.num_workers * (devices if config.shard_per_device else 1)
        if config.batch_size % (self.num_workers * devices):
            raise UserError('%s (total) is not divisible by %d workers x %d devices'
                            % (setting('batch_size', config.batch_size), self.num_workers,
                               devices))
        self.part_batch = config.batch_size // self.parts
        self.name, self.kwargs, self.family, self.full_kwargs = build.model_spec(
            config, self.classes)
        self.extended = None
        if self.resume_meta:
            self.check_resume()
        self.check_data()
        self.board = None
        if config.tensorboard and self.is_chief:
            from dmrnet.train.board import Board
            try:
                self.board = Board(config.tensorboard)
            except ImportError as e:
                raise UserError(str(e)) from None
        # Everything above only read; from here on the run folder is this process's.
        self.created_folder = not os.path.isdir(self.save_dir)
        # The outermost folder the run will create (runs/ itself, on a first run): a failed
        # start leaves none of them behind.
        self.created_root = self.save_dir
        while not os.path.isdir(os.path.dirname(os.path.abspath(self.created_root))):
            self.created_root = os.path.dirname(os.path.abspath(self.created_root))
        self.lock = None
        if self.is_chief:
            try:
                self.lock = rundir.FolderLock(self.save_dir)
            except rundir.FolderInUse as e:
                raise UserError(str(e)) from None
            except OSError as e:
                raise UserError('%s cannot be written (%s): choose a folder you can write to'
                                % (setting('save_dir', self.save_dir), e.strerror or e)) from None
        build.setup_logging(self.save_dir, self.rank, self.is_chief)

    def decide_precision(self):
        """float32, bfloat16 or float16 for this run (train/precision.py): on a CPU, --amp may
        time both first; a resumed run keeps what its checkpoint recorded. Logged, so after
        set-up (the line goes to train.log too)."""
        c = self.config
        recorded = (self.resume_meta or {}).get('precision')
        self.precision = precision.decide(
            precision.amp_mode(c.amp), self.contexts,
            (self.name, self.kwargs, self.family, self.full_kwargs),
            c.batch_size // (self.num_workers * len(self.contexts)), recorded)
        dtype = self.precision['dtype']
        self.amp_dtype = dtype if dtype != 'float32' else None
        self.loss_scaling = precision.needs_loss_scaling(self.amp_dtype)

    def close(self, failed):
        """Release the run folder; a folder this run created and left without a checkpoint
        (it failed before its first one) is removed rather than left looking like a run."""
        if self.board is not None:
            self.board.close()
        # The run's handlers go with it: a process (a notebook, a test) that goes on must not
        # keep writing into this run's train.log, or into a stream that has closed since.
        build.close_logging()
        if self.lock is None:
            return
        if failed and self.created_folder and not rundir.has_checkpoint(self.save_dir):
            shutil.rmtree(self.save_dir, ignore_errors=True)
            remove_empty_parents(self.save_dir, self.created_root)
        self.lock.release()
        self.lock = None

    # -- data
    def part_ids(self):
        if self.config.shard_per_device:
            d = len(self.contexts)
            return [self.rank * d + i for i in range(d)]
        return [self.rank]

    def train_iters(self, epoch):
        c = self.config
        return [self.data.get_train_iter(c.dataset, self.data_dir, self.part_batch, epoch=epoch,
                                         seed=c.seed, num_parts=self.parts, part_index=p,
                                         num_threads=c.num_data_threads,
                                         augment=c.augmentation or True,
                                         files=self.train_files, stats=self.stats)
                for p in self.part_ids()]

    def val_iter(self):
        c = self.config
        return self.data.get_val_iter(c.dataset, self.data_dir, c.batch_size // self.num_workers,
                                      num_parts=self.num_workers, part_index=self.rank,
                                      num_threads=c.num_data_threads, files=self.val_files,
                                      stats=self.stats)

    def batches(self, iters):
        """Per step: a list of (data, label) per device."""
        if len(iters) == 1:
            for b in iters[0]:
                xs = gluon.utils.split_and_load(b.data[0], self.contexts)
                ys = gluon.utils.split_and_load(b.label[0], self.contexts)
                yield list(zip(xs, ys))
        else:
            for bs in zip(*iters):
                yield [(b.data[0].as_in_context(c), b.label[0].as_in_context(c))
                       for b, c in zip(bs, self.contexts)]

    def val_batches(self):
        """Batches of one test pass of this worker (for progress lines)."""
        batch = self.config.batch_size // self.num_workers
        images = self.data.count_records(self.val_files[1]) if self.val_files else self.info['num_val']
        n = -(-images // (batch * self.num_workers))
        if self.config.max_val_batches is not None:
            n = min(n, self.config.max_val_batches)
        return max(n, 1)

    def steps_per_epoch(self):
        n = self.num_train // (self.part_batch * self.parts)
        if self.config.max_batches is not None:
            n = min(n, self.config.max_batches)
        return max(n, 1)

    # -- what the run records
    def recorded_config(self):
        return dict(self.config.as_dict(), data_dir=self.data_dir, save_dir=self.save_dir)

    def identity(self):
        return dict(model=self.name, model_kwargs=self.kwargs, family=self.family,
                    family_kwargs=self.full_kwargs, dataset=self.config.dataset)

    def meta(self, epoch, best_error, best_epoch, history_tail):
        return dict(self.identity(), epoch=epoch, classes=self.classes, seed=self.config.seed,
                    best_test_error=best_error, best_epoch=best_epoch,
                    args=self.recorded_config(), precision=self.precision,
                    extended=self.extensions(), last=history_tail)

    def check_resume(self):
        """The checkpoint is of this network and data, and this run continues its recipe
        (train/resume.py); before anything in the run folder changes."""
        m = self.resume_meta
        mine = (self.family, self.full_kwargs, self.config.dataset)
        theirs = (m.get('family'), m.get('family_kwargs'), m.get('dataset'))
        if not rundir.json_equal(mine, theirs):
            raise UserError('%s: the checkpoint is %s %s on %s, this run is %s %s on %s'
                            % (setting('resume', self.config.resume), theirs[0], build.describe_kwargs(theirs[1]),
                               theirs[2], mine[0], build.describe_kwargs(mine[1]), mine[2]))
        recorded = m.get('args') or {}
        found = resume.differences(recorded, self.config, m['epoch'])
        if found:
            raise UserError(resume.refusal(self.config.resume, found))
        grown = resume.extension(recorded, self.config)
        if grown:
            self.extended = dict(epochs_from=grown[0], epochs_to=grown[1], at_epoch=m['epoch'])

    def extensions(self):
        """Every --epochs extension of this run, as its record keeps them."""
        earlier = list((self.resume_meta or {}).get('extended') or [])
        return earlier + ([self.extended] if self.extended else [])

    def check_data(self):
        """The packs this run reads are there and sound (their quick check), before the run
        folder is touched: a resume must not mark a finished run unfinished and then stop on
        a missing pack."""
        for files, split in ((self.train_files, 'train'), (self.val_files, 'val')):
            if files is None:
                try:
                    self.data.record_files(self.config.dataset, self.data_dir, split)
                except self.data.DataError as e:
                    raise UserError(str(e)) from None


def fit(config, data=None):
    """Train (or resume) the run `config` describes; returns FitResult(net, summary), the
    summary being None on workers other than rank 0. Raises UserError / RunStopped."""
    if data is None:
        import dmrnet.data as data
    run = Run(config, data)
    failed = True
    try:
        result = _fit(run)
        failed = False
        return result
    finally:
        run.close(failed)


def _fit(run):
    c = run.config
    log.info('%s on %s: %d worker(s) x %s, total batch %d (%d per %s), kvstore %s',
             run.name, c.dataset, run.num_workers, ','.join(map(str, run.contexts)),
             c.batch_size, c.batch_size // (run.num_workers * len(run.contexts)),
             'device', c.kv_store + ', engine ' + run.engine)
    amx_warning = amx.training_warning()  # never enabled here: oneDNN 2.4 trains badly with it
    if amx_warning:
        log.warning(amx_warning)
    if run.extended:
        log.warning('--epochs %d extends the run from %d epochs (recorded in its summary); its lr '
                    'steps are now at epochs %s', run.extended['epochs_to'],
                    run.extended['epochs_from'], c.lr_step_epochs())
    run.decide_precision()
    if run.amp_dtype:
        precision.init_amp(run.amp_dtype)
    net = build.network(c, run.classes)
    nparams = count_params(net)
    mx.random.seed(c.seed)
    np.random.seed(c.seed)
    net.initialize(ctx=run.contexts)
    start_epoch, best_error, best_epoch = 0, float('inf'), 0
    if run.resume_meta:
        m, folder = run.resume_meta, run.resume_dir
        try:
            net.load_parameters(os.path.join(folder, m['params']), ctx=run.contexts)
        except (mx.base.MXNetError, AssertionError, ValueError) as e:
            raise UserError('%s: %s is unreadable or not parameters of %s (%s)'
                            % (setting('resume', c.resume), os.path.join(folder, m['params']), run.name,
                               build.mxnet_reason(e))) from None
        start_epoch = m['epoch']
        best_error = m.get('best_test_error')
        best_error = float('inf') if best_error is None else best_error
        best_epoch = m.get('best_epoch', 0)
        log.info('resumed from %s (epoch %d, best test error %.2f%%)',
                 os.path.join(folder, m['params']), start_epoch, best_error)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = _trainer(run, net, start_epoch)
    sync = distributed.Sync(run.kv)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    history = _start_log(run, start_epoch)

    if c.export_only:
        return FitResult(net, finish(run, net, history, nparams, best_error, best_epoch))

    log.info('%s: %d parameters; lr %g, steps at epochs %s, %s, wd %g, momentum %g; epochs %d-%d',
             run.name, nparams, c.lr, c.lr_step_epochs(), c.optimizer, c.wd, c.momentum,
             start_epoch + 1, c.epochs)
    # (epoch, folder) of the newest complete checkpoint, named in every stop message.
    last_saved = (start_epoch, run.resume_dir or run.save_dir)
    try:
        for epoch in range(start_epoch, c.epochs):
            rec = train_epoch(run, net, trainer, loss_fn, sync, epoch, last_saved)
            distributed.average_running_stats(net, sync)
            w1, w5, n = evaluate(net, run.val_iter(), run.contexts, c.max_val_batches,
                                 on_batch=plain_progress(
                                     run, 'epoch %d/%d test' % (epoch + 1, c.epochs),
                                     run.val_batches()))
            w1, w5, n = sync.sum([w1, w5, n])
            rec['test_error'] = 100.0 * w1 / max(n, 1)
            if run.classes > 10:
                rec['test_top5_error'] = 100.0 * w5 / max(n, 1)
            is_best = rec['test_error'] < best_error
            if is_best:
                best_error, best_epoch = rec['test_error'], epoch + 1
            history.append(rec)
            log_epoch(epoch, rec, c.epochs)
            if run.board is not None:
                run.board.epoch(rec)
            if run.is_chief:
                rundir.write_log(run.save_dir, history)
                due = (epoch + 1) % c.checkpoint_every == 0 or epoch + 1 == c.epochs
                if due or is_best:
                    rundir.save(run.save_dir, net, trainer,
                                run.meta(epoch + 1, best_error, best_epoch, rec),
                                is_best, with_states=not run.async_kv)
                    last_saved = (epoch + 1, run.save_dir)
                if is_best:  # deployable files during the run, not only at its end
                    export_best(run, os.path.join(run.save_dir, rundir.BEST))
                _draw_curves(run.save_dir)
        return FitResult(net, finish(run, net, history, nparams, best_error, best_epoch))
    except OSError as e:
        if e.errno in DISK_ERRNOS:
            raise RunStopped('cannot write %s (%s); %s' % (e.filename or run.save_dir,
                                                           e.strerror or os.strerror(e.errno),
                                                           kept(*last_saved))) from None
        raise


def _trainer(run, net, start_epoch):
    """The Trainer at `start_epoch`: its learning rate, restored momentum, start barrier."""
    c = run.config
    opt_params = {'learning_rate': c.lr_at(start_epoch), 'wd': c.wd, 'momentum': c.momentum}
    if run.amp_dtype:
        opt_params['multi_precision'] = True
    if run.async_kv:
        schedule = distributed.server_lr_schedule(c, start_epoch, run.steps_per_epoch(),
                                                  run.num_workers)
        if schedule is not None:
            opt_params['lr_scheduler'] = schedule
    trainer = make_trainer(net, c.optimizer, opt_params, run.kv, run.async_kv)
    if run.loss_scaling:
        from mxnet.contrib import amp
        amp.init_trainer(trainer)
    if run.resume_meta and run.resume_meta.get('states'):
        if run.async_kv:
            log.warning('dist_async: optimizer state lives on the servers; momentum restarts')
        else:
            try:
                rundir.load_states(trainer, os.path.join(run.resume_dir,
                                                         run.resume_meta['states']))
            except rundir.CheckpointError as e:
                raise UserError('%s: %s' % (setting('resume', c.resume), e)) from None
    if distributed.is_distributed(run.kv) and not run.async_kv:
        distributed.start_barrier(trainer, run.kv)
    return trainer


def _start_log(run, start_epoch):
    """The epoch records the run continues from (rank 0), written to its own folder; a run
    resumed into a new folder carries the epochs it continues from."""
    if not run.is_chief:
        return []
    source = run.save_dir
    if run.resume_dir and not os.path.exists(os.path.join(run.save_dir, rundir.LOG)):
        source = run.resume_dir
    history = rundir.read_log(source, upto=start_epoch)
    rundir.write_log(run.save_dir, history)
    if not run.config.export_only and start_epoch < run.config.epochs:
        rundir.mark_unfinished(run.save_dir)
    return history


def _draw_curves(save_dir):
    try:
        from dmrnet.train.curves import plot_runs
        plot_runs([save_dir], os.path.join(save_dir, 'curves.png'))
    except Exception as e:  # a figure must never stop training
        log.debug('curves not drawn: %s', e)


def train_epoch(run, net, trainer, loss_fn, sync, epoch, last_saved):
    c = run.config
    seed_everything(c.seed, epoch)
    lr = c.lr_at(epoch)
    if not run.async_kv:
        trainer.set_learning_rate(lr)
    iters = run.train_iters(epoch)
    steps = run.steps_per_epoch()
    bar = None
    if c.progress and sys.stderr.isatty() and run.is_chief:
        from tqdm import tqdm
        bar = tqdm(total=steps * c.batch_size, unit='img', unit_scale=True, leave=False,
                   desc='epoch %d/%d' % (epoch + 1, c.epochs), file=sys.stderr,
                   mininterval=PROGRESS_REFRESH)
    plain = None if bar is not None else plain_progress(
        run, 'epoch %d/%d training' % (epoch + 1, c.epochs), steps)
    loss_sum = wrong = seen = 0.0
    tic = time.time()
    for i, parts in enumerate(run.batches(iters)):
        if i >= steps:
            break
        losses, outs = train_step(net, trainer, loss_fn, parts, c.batch_size,
                                  loss_scaling=run.loss_scaling)
        batch_loss = sum(float(loss.sum().asscalar()) for loss in losses)
        batch_wrong = sum(int((o.argmax(axis=1).astype('int64') !=
                               y.astype('int64')).sum().asscalar()) for o, (_, y) in
                          zip(outs, parts))
        n = sum(x.shape[0] for x, _ in parts)
        if not math.isfinite(batch_loss):
            raise RunStopped('training diverged: loss is %s at epoch %d batch %d (lr %g); lower '
                             '--lr; %s' % (batch_loss, epoch + 1, i + 1, lr,
                                           kept(*last_saved)))
        loss_sum += batch_loss
        wrong += batch_wrong
        seen += n
        if bar is not None:
            bar.update(n * run.num_workers)
            bar.set_postfix(loss='%.3f' % (loss_sum / seen), err='%.1f%%' % (100 * wrong / seen),
                            refresh=False)
        elif plain is not None:
            plain(i + 1, seen * run.num_workers)
        if c.log_interval and (i + 1) % c.log_interval == 0:
            # MXNet's Speedometer format (0-based epoch), which tools/parse_log.py and people's
            # scripts read: the running figures of this epoch so far.
            log.info('Epoch[%d] Batch [%d]\tSpeed: %.2f samples/sec\taccuracy=%f\t'
                     'cross-entropy=%f', epoch, i + 1,
                     seen * run.num_workers / max(time.time() - tic, 1e-9), 1 - wrong / seen,
                     loss_sum / seen)
    mx.nd.waitall()
    seconds = time.time() - tic
    if bar is not None:
        bar.close()
    loss_sum, wrong, seen, seconds = sync.sum([loss_sum, wrong, seen, seconds])
    seconds /= run.num_workers
    return dict(epoch=epoch + 1, lr=lr, train_loss=loss_sum / max(seen, 1),
                train_error=100.0 * wrong / max(seen, 1), seconds=round(seconds, 3),
                images_per_sec=round(seen / max(seconds, 1e-9), 2))


def log_epoch(epoch, rec, epochs):
    """The epoch's line, counted from 1 and out of the run's epochs ("epoch 3/8") so that it
    cannot be read as MXNet's 0-based count, and the three lines MXNet's fit() writes (0-based:
    "Epoch[2]" is the same epoch) for parse_log."""
    log.info('epoch %d/%d: lr %g train loss %.4f error %.2f%% | test error %.2f%%%s | %.0f s, '
             '%.0f images/s', epoch + 1, epochs, rec['lr'], rec['train_loss'], rec['train_error'],
             rec['test_error'], ' top-5 %.2f%%' % rec['test_top5_error']
             if 'test_top5_error' in rec else '', rec['seconds'], rec['images_per_sec'])
    log.info('Epoch[%d] Train-accuracy=%f', epoch, 1 - rec['train_error'] / 100)
    log.info('Epoch[%d] Time cost=%.3f', epoch, rec['seconds'])
    log.info('Epoch[%d] Validation-accuracy=%f', epoch, 1 - rec['test_error'] / 100)


def finish(run, net, history, nparams, best_error, best_epoch):
    """Export best and last models and write summary.json (rank 0); returns the summary."""
    if not run.is_chief:
        return None
    last_epoch = history[-1]['epoch'] if history else (run.resume_meta or {}).get('epoch', 0)
    export(run, net, 'last', last_epoch)
    best_pointer = os.path.join(run.save_dir, rundir.BEST)
    if not os.path.exists(best_pointer) and run.resume_dir:
        best_pointer = os.path.join(run.resume_dir, rundir.BEST)
    if os.path.exists(best_pointer):  # again: a run resumed into a new folder has none yet
        export_best(run, best_pointer)
    final = history[-1] if history else {}
    summary = dict(run.identity(), args=run.recorded_config(), precision=run.precision,
                   extended=run.extensions(),
                   params=nparams,
                   epochs=last_epoch, final_test_error=final.get('test_error'),
                   best_test_error=None if best_error == float('inf') else best_error,
                   best_epoch=best_epoch, final_train_loss=final.get('train_loss'))
    if run.classes > 10:
        summary['final_test_top5_error'] = final.get('test_top5_error')
        summary['best_test_top5_error'] = next(
            (r.get('test_top5_error') for r in history if r['epoch'] == best_epoch), None)
    rundir.write_summary(run.save_dir, summary)
    log.info('done: final test error %s%%, best %s%% (epoch %d); %s',
             format_error(summary['final_test_error']), format_error(summary['best_test_error']),
             best_epoch, run.save_dir)
    return summary


def kept(epoch, save_dir):
    if epoch == 0:
        return 'no checkpoint had been written to %s yet, so there is nothing to resume' % save_dir
    return ('the last good checkpoint (epoch %d) is intact in %s: continue with --resume %s'
            % (epoch, save_dir, save_dir))


def export_best(run, pointer):
    """Export the checkpoint `pointer` names as RUN/best, from a network of its own: exporting
    traces a graph for inference, which must not replace the training network's (its classifier
    pools differently for training, and a run must compute the same whether or not it exported
    on the way)."""
    meta, folder = rundir.locate(pointer)
    best = build.network(run.config, run.classes)
    best.load_parameters(os.path.join(folder, meta['params']), ctx=run.contexts[0])
    export(run, best, 'best', meta['epoch'])


def export(run, net, name, epoch):
    """RUN/name-symbol.json + -NNNN.params + -meta.json (with how to feed the model)."""
    prefix = os.path.join(run.save_dir, name)
    try:
        _, params = export_model(net, prefix, epoch=epoch,
                                 input_shape=(1,) + tuple(run.info['image_shape']),
                                 ctx=run.contexts[0],
                                 metadata=dict(run.identity(), classes=run.classes),
                                 mean=run.info['mean'], std=run.info['std'])
    except mx.base.MXNetError as e:
        if 'Write' not in str(e):
            raise
        raise rundir.write_error(prefix, e) from None
    # An earlier export under this prefix (before a --resume) would otherwise be what
    # evaluate.py picks when it looks for the newest prefix-NNNN.params.
    for old in glob.glob(glob.escape(prefix) + '-[0-9][0-9][0-9][0-9].params'):
        if os.path.abspath(old) != os.path.abspath(params):
            os.remove(old)


def format_error(value):
    return 'n/a' if value is None else '%.2f' % value
