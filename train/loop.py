"""The training loop: `fit(config)` trains (or resumes) one run. Everything the run needs is
resolved first, without side effects, by its plan (train/plan.py); this module carries the plan
out and hands each job to its module.

Data parallel over every given context (split_and_load + gluon.Trainer on the chosen KVStore),
across machines with MXNet's parameter server (tools/launch.py). Resumable bit for bit: each
epoch's randomness is seeded from (seed, epoch), the learning rate is a function of the epoch,
and checkpoints hold parameters, momentum and the epoch count; CPU runs use MXNet's naive
(program-order) engine (dmrnet.utils.runtime.select_engine).

    the plan          train/plan.py         devices, batch split, data, resume, run folder
    set-up            train/build.py        KVStore, network, logging
    the lr schedule   train/schedule.py     the rate at each epoch
    one step          train/step.py         forward, backward, update
    across devices    train/distributed.py  metric sums, BN statistics, start barrier
    the run folder    train/rundir.py       log.jsonl, checkpoints, summary.json
    scoring           train/evaluate.py     top-1 / top-k errors
"""
import errno
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
from dmrnet.symbols.deploy import export_file, export_model, exported_epochs
from dmrnet.train import build, distributed, precision, rundir, schedule
from dmrnet.train.config import PLAIN_PROGRESS_SECONDS
from dmrnet.train.errors import RunStopped, UserError, mxnet_reason, resume_hint, setting
from dmrnet.train.plan import RunPlan, make_plan
from dmrnet.train.evaluate import evaluate
from dmrnet.train.step import make_trainer, train_step
from dmrnet.utils import amx
from dmrnet.utils.process import raise_if_terminated
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
    if not run.plan.is_chief or sys.stderr.isatty():
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
    """A run under way: its plan (train/plan.py) and what carrying it out holds: the engine,
    the KVStore, the precision decided, the TensorBoard writer, the folder's lock, logging."""

    def __init__(self, plan, data):
        self.data = data
        # Before the first operator (the KVStore's included), which creates MXNet's engine.
        self.engine = select_engine(plan.contexts)
        self.kv = build.kvstore(plan.kv_store)
        if distributed.is_distributed(self.kv):
            plan = plan.for_worker(self.kv.rank, self.kv.num_workers)
        self.plan, self.config = plan, plan.config
        self.amp_dtype = plan.requested_amp_dtype()   # until decide_precision
        self.loss_scaling = precision.needs_loss_scaling(self.amp_dtype)
        self.precision = None
        self.board = None
        if self.config.tensorboard and plan.is_chief:
            from dmrnet.train.board import Board
            try:
                self.board = Board(self.config.tensorboard)
            except ImportError as e:
                raise UserError(str(e)) from None
        # Everything above only read; from here on the run folder is this process's.
        save_dir = plan.save_dir
        self.created_folder = not os.path.isdir(save_dir)
        # The outermost folder the run will create (runs/ itself, on a first run): a failed
        # start leaves none of them behind.
        self.created_root = save_dir
        while not os.path.isdir(os.path.dirname(os.path.abspath(self.created_root))):
            self.created_root = os.path.dirname(os.path.abspath(self.created_root))
        self.lock = None
        if plan.is_chief:
            try:
                self.lock = rundir.FolderLock(save_dir)
            except OSError as e:
                raise UserError('%s cannot be written (%s): choose a folder you can write to'
                                % (setting('save_dir', save_dir), e.strerror or e)) from None
        build.setup_logging(save_dir, plan.rank, plan.is_chief)

    def decide_precision(self):
        """float32, bfloat16 or float16 for this run (train/precision.py): on a CPU, --amp may
        time both first; a resumed run keeps what its checkpoint recorded. Logged, so after
        set-up (the line goes to train.log too)."""
        plan = self.plan
        recorded = (plan.resume_meta or {}).get('precision')
        self.precision = precision.decide(precision.amp_mode(self.config.amp), plan.contexts,
                                          plan.model, plan.device_batch, recorded)
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
        save_dir = self.plan.save_dir
        if failed and self.created_folder and not rundir.has_checkpoint(save_dir):
            shutil.rmtree(save_dir, ignore_errors=True)
            remove_empty_parents(save_dir, self.created_root)
        self.lock.release()
        self.lock = None

    # -- data
    def train_iters(self, epoch):
        c, plan = self.config, self.plan
        return [self.data.get_train_iter(c.dataset, plan.data_dir, plan.part_batch, epoch=epoch,
                                         seed=c.seed, num_parts=plan.parts, part_index=p,
                                         num_threads=c.num_data_threads,
                                         augment=c.augmentation or True,
                                         files=plan.train_pack, stats=plan.stats)
                for p in plan.part_ids()]

    def val_iter(self):
        c, plan = self.config, self.plan
        return self.data.get_val_iter(c.dataset, plan.data_dir, c.batch_size // plan.num_workers,
                                      num_parts=plan.num_workers, part_index=plan.rank,
                                      num_threads=c.num_data_threads, files=plan.val_pack,
                                      stats=plan.stats)

    def batches(self, iters):
        """Per step: a list of (data, label) per device."""
        contexts = self.plan.contexts
        if len(iters) == 1:
            for b in iters[0]:
                xs = gluon.utils.split_and_load(b.data[0], contexts)
                ys = gluon.utils.split_and_load(b.label[0], contexts)
                yield list(zip(xs, ys))
        else:
            for bs in zip(*iters):
                yield [(b.data[0].as_in_context(c), b.label[0].as_in_context(c))
                       for b, c in zip(bs, contexts)]

    def meta(self, epoch, best_error, best_epoch, history_tail):
        """A checkpoint's record."""
        plan = self.plan
        return dict(plan.identity(), epoch=epoch, classes=plan.classes, seed=self.config.seed,
                    best_test_error=best_error, best_epoch=best_epoch,
                    args=plan.recorded_config(), precision=self.precision,
                    extended=plan.extensions(), last=history_tail)


def fit(config, data=None):
    """Train (or resume) the run `config` describes; returns FitResult(net, summary), the
    summary being None on workers other than rank 0. Raises UserError / RunStopped."""
    if data is None:
        import dmrnet.data as data
    run = Run(config if isinstance(config, RunPlan) else make_plan(config, data), data)
    failed = True
    try:
        result = _fit(run)
        failed = False
        return result
    finally:
        run.close(failed)


def _fit(run):
    c, plan = run.config, run.plan
    log.info('%s on %s: %d worker(s) x %s, total batch %d (%d per device), kvstore %s, '
             'engine %s', plan.model.name, c.dataset, plan.num_workers,
             ','.join(map(str, plan.contexts)), c.batch_size, plan.device_batch, plan.kv_store,
             run.engine)
    amx_warning = amx.training_warning()  # never enabled here: oneDNN 2.4 trains badly with it
    if amx_warning:
        log.warning(amx_warning)
    if plan.extended:
        log.warning('--epochs %d extends the run from %d epochs (recorded in its summary); its lr '
                    'steps are now at epochs %s', plan.extended['epochs_to'],
                    plan.extended['epochs_from'], schedule.steps_of(c))
    run.decide_precision()
    if run.amp_dtype:
        precision.init_amp(run.amp_dtype)
    net = build.network(plan.model)
    nparams = count_params(net)
    mx.random.seed(c.seed)
    np.random.seed(c.seed)
    net.initialize(ctx=plan.contexts)
    start_epoch, best_error, best_epoch = 0, float('inf'), 0
    if plan.resume_meta:
        m, folder = plan.resume_meta, plan.resume_dir
        try:
            net.load_parameters(os.path.join(folder, m['params']), ctx=plan.contexts)
        except (mx.base.MXNetError, AssertionError, ValueError) as e:
            raise UserError('%s: %s is unreadable or not parameters of %s (%s)'
                            % (setting('resume', c.resume), os.path.join(folder, m['params']),
                               plan.model.name, mxnet_reason(e))) from None
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
             plan.model.name, nparams, c.lr, schedule.steps_of(c), c.optimizer, c.wd,
             c.momentum, start_epoch + 1, c.epochs)
    # (epoch, folder) of the newest complete checkpoint, named in every stop message.
    last_saved = (start_epoch, plan.resume_dir or plan.save_dir)
    try:
        for epoch in range(start_epoch, c.epochs):
            rec = train_epoch(run, net, trainer, loss_fn, sync, epoch, last_saved)
            distributed.average_running_stats(net, sync)
            w1, w5, n = evaluate(net, run.val_iter(), plan.contexts, c.max_val_batches,
                                 on_batch=plain_progress(
                                     run, 'epoch %d/%d test' % (epoch + 1, c.epochs),
                                     plan.val_batches()))
            w1, w5, n = sync.sum([w1, w5, n])
            rec['test_error'] = 100.0 * w1 / max(n, 1)
            if plan.classes > 10:
                rec['test_top5_error'] = 100.0 * w5 / max(n, 1)
            is_best = rec['test_error'] < best_error
            if is_best:
                best_error, best_epoch = rec['test_error'], epoch + 1
            history.append(rec)
            log_epoch(epoch, rec, c.epochs)
            if run.board is not None:
                run.board.epoch(rec)
            if plan.is_chief:
                rundir.write_log(plan.save_dir, history)
                due = (epoch + 1) % c.checkpoint_every == 0 or epoch + 1 == c.epochs
                if due or is_best:
                    rundir.save(plan.save_dir, net, trainer,
                                run.meta(epoch + 1, best_error, best_epoch, rec),
                                is_best, with_states=not plan.async_kv)
                    last_saved = (epoch + 1, plan.save_dir)
                if is_best:  # deployable files during the run, not only at its end
                    export_best(run, os.path.join(plan.save_dir, rundir.BEST))
                _draw_curves(plan.save_dir)
        return FitResult(net, finish(run, net, history, nparams, best_error, best_epoch))
    except OSError as e:
        if e.errno in DISK_ERRNOS:
            raise RunStopped('cannot write %s (%s); %s' % (e.filename or plan.save_dir,
                                                           e.strerror or os.strerror(e.errno),
                                                           resume_hint(*last_saved))) from None
        raise


def _trainer(run, net, start_epoch):
    """The Trainer at `start_epoch`: its learning rate, restored momentum, start barrier."""
    c = run.config
    opt_params = {'learning_rate': schedule.lr_at(c, start_epoch), 'wd': c.wd,
                  'momentum': c.momentum}
    if run.amp_dtype:
        opt_params['multi_precision'] = True
    if run.plan.async_kv:
        servers = schedule.server_schedule(c, start_epoch, run.plan.steps_per_epoch(),
                                           run.plan.num_workers)
        if servers is not None:
            opt_params['lr_scheduler'] = servers
    trainer = make_trainer(net, c.optimizer, opt_params, run.kv, run.plan.async_kv)
    if run.loss_scaling:
        from mxnet.contrib import amp
        amp.init_trainer(trainer)
    if run.plan.resume_meta and run.plan.resume_meta.get('states'):
        if run.plan.async_kv:
            log.warning('dist_async: optimizer state lives on the servers; momentum restarts')
        else:
            try:
                rundir.load_states(trainer, os.path.join(run.plan.resume_dir,
                                                         run.plan.resume_meta['states']))
            except rundir.CheckpointError as e:
                raise UserError('%s: %s' % (setting('resume', c.resume), e)) from None
    if distributed.is_distributed(run.kv) and not run.plan.async_kv:
        distributed.start_barrier(trainer, run.kv)
    return trainer


def _start_log(run, start_epoch):
    """The epoch records the run continues from (rank 0), written to its own folder; a run
    resumed into a new folder carries the epochs it continues from."""
    if not run.plan.is_chief:
        return []
    source = run.plan.save_dir
    if run.plan.resume_dir and not os.path.exists(os.path.join(run.plan.save_dir, rundir.LOG)):
        source = run.plan.resume_dir
    history = rundir.read_log(source, upto=start_epoch)
    rundir.write_log(run.plan.save_dir, history)
    if not run.config.export_only and start_epoch < run.config.epochs:
        rundir.mark_unfinished(run.plan.save_dir)
    return history


def _draw_curves(save_dir):
    try:
        from dmrnet.train.curves import plot_runs
        plot_runs([save_dir], os.path.join(save_dir, rundir.CURVES))
    except Exception as e:  # a figure must never stop training
        log.debug('curves not drawn: %s', e)


def train_epoch(run, net, trainer, loss_fn, sync, epoch, last_saved):
    c = run.config
    seed_everything(c.seed, epoch)
    lr = schedule.lr_at(c, epoch)
    if not run.plan.async_kv:
        trainer.set_learning_rate(lr)
    iters = run.train_iters(epoch)
    steps = run.plan.steps_per_epoch()
    bar = None
    if c.progress and sys.stderr.isatty() and run.plan.is_chief:
        from tqdm import tqdm
        bar = tqdm(total=steps * c.batch_size, unit='img', unit_scale=True, leave=False,
                   desc='epoch %d/%d' % (epoch + 1, c.epochs), file=sys.stderr,
                   mininterval=PROGRESS_REFRESH)
    plain = None if bar is not None else plain_progress(
        run, 'epoch %d/%d training' % (epoch + 1, c.epochs), steps)
    loss_sum = wrong = seen = 0.0
    tic = time.time()
    for i, parts in enumerate(run.batches(iters)):
        raise_if_terminated()
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
                                           resume_hint(*last_saved)))
        loss_sum += batch_loss
        wrong += batch_wrong
        seen += n
        if bar is not None:
            bar.update(n * run.plan.num_workers)
            bar.set_postfix(loss='%.3f' % (loss_sum / seen), err='%.1f%%' % (100 * wrong / seen),
                            refresh=False)
        elif plain is not None:
            plain(i + 1, seen * run.plan.num_workers)
        if c.log_interval and (i + 1) % c.log_interval == 0:
            # MXNet's Speedometer format (0-based epoch), which tools/parse_log.py and people's
            # scripts read: the running figures of this epoch so far.
            log.info('Epoch[%d] Batch [%d]\tSpeed: %.2f samples/sec\taccuracy=%f\t'
                     'cross-entropy=%f', epoch, i + 1,
                     seen * run.plan.num_workers / max(time.time() - tic, 1e-9), 1 - wrong / seen,
                     loss_sum / seen)
    mx.nd.waitall()
    seconds = time.time() - tic
    if bar is not None:
        bar.close()
    loss_sum, wrong, seen, seconds = sync.sum([loss_sum, wrong, seen, seconds])
    seconds /= run.plan.num_workers
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
    if not run.plan.is_chief:
        return None
    last_epoch = history[-1]['epoch'] if history else (run.plan.resume_meta or {}).get('epoch', 0)
    export(run, net, rundir.LAST_EXPORT, last_epoch)
    best_pointer = os.path.join(run.plan.save_dir, rundir.BEST)
    if not os.path.exists(best_pointer) and run.plan.resume_dir:
        best_pointer = os.path.join(run.plan.resume_dir, rundir.BEST)
    if os.path.exists(best_pointer):  # again: a run resumed into a new folder has none yet
        export_best(run, best_pointer)
    final = history[-1] if history else {}
    summary = dict(run.plan.identity(), args=run.plan.recorded_config(), precision=run.precision,
                   extended=run.plan.extensions(),
                   params=nparams,
                   epochs=last_epoch, final_test_error=final.get('test_error'),
                   best_test_error=None if best_error == float('inf') else best_error,
                   best_epoch=best_epoch, final_train_loss=final.get('train_loss'))
    if run.plan.classes > 10:
        summary['final_test_top5_error'] = final.get('test_top5_error')
        summary['best_test_top5_error'] = next(
            (r.get('test_top5_error') for r in history if r['epoch'] == best_epoch), None)
    rundir.write_summary(run.plan.save_dir, summary)
    log.info('done: final test error %s%%, best %s%% (epoch %d); %s',
             format_error(summary['final_test_error']), format_error(summary['best_test_error']),
             best_epoch, run.plan.save_dir)
    return summary


def export_best(run, pointer):
    """Export the checkpoint `pointer` names as RUN/best, from a network of its own: exporting
    traces a graph for inference, which must not replace the training network's (its classifier
    pools differently for training, and a run must compute the same whether or not it exported
    on the way)."""
    meta, folder = rundir.locate(pointer)
    best = build.network(run.plan.model)
    best.load_parameters(os.path.join(folder, meta['params']), ctx=run.plan.contexts[0])
    export(run, best, rundir.BEST_EXPORT, meta['epoch'])


def export(run, net, name, epoch):
    """RUN/name-symbol.json + -NNNN.params + -meta.json (with how to feed the model)."""
    prefix = rundir.export_prefix(run.plan.save_dir, name)
    try:
        export_model(net, prefix, epoch=epoch, input_shape=(1,) + run.plan.image_shape,
                     ctx=run.plan.contexts[0],
                     metadata=dict(run.plan.identity(), classes=run.plan.classes),
                     mean=run.plan.mean, std=run.plan.std)
    except mx.base.MXNetError as e:
        if 'Write' not in str(e):
            raise
        raise rundir.write_error(prefix, e) from None
    # An earlier export under this prefix (before a --resume) would otherwise be what
    # evaluate.py picks when it looks for the newest prefix-NNNN.params.
    for old in exported_epochs(prefix):
        if old != epoch:
            os.remove(export_file(prefix, 'params', old))


def format_error(value):
    return 'n/a' if value is None else '%.2f' % value
