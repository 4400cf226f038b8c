"""The one training loop behind train/cifar.py, svhn.py, imagenet.py and digits.py.

Data parallel over every given context (split_and_load + gluon.Trainer on the chosen KVStore),
across machines with MXNet's parameter server (tools/launch.py). Resumable bit for bit: each
epoch's randomness is seeded from (seed, epoch), the learning rate is a function of the epoch,
and checkpoints hold parameters, momentum and the epoch count; CPU runs use MXNet's naive
(program-order) engine, which makes oneDNN's results independent of scheduling
(dmrnet.symbols.runtime.use_naive_engine_on_cpu).

Exit status: 0 done, 2 bad input (devices, data, resume, flags), 3 the run stopped (the loss
diverged, a checkpoint could not be written); the last good checkpoint is kept in both cases.
"""
import contextlib
import errno
import glob
import json
import logging
import math
import os
import random
import sys
import time

import numpy as np

import mxnet as mx
from mxnet import autograd, gluon

from dmrnet.symbols import count_params, get_model
from dmrnet.symbols.atomic import atomic_path
from dmrnet.symbols.export import export_model
from dmrnet.symbols.registry import preset, resolve
from dmrnet.symbols.runtime import use_naive_engine_on_cpu
from dmrnet.train import checkpoint
from dmrnet.train.args import lr_at, lr_steps, parse_devices

log = logging.getLogger('dmrnet.train')

# An int key far from the Trainer's (parameter indices) to sum metrics over workers.
METRIC_KEY = 1 << 20
AUX_KEY = 1 << 21
# Seconds between progress-bar redraws: often enough to watch, rarely enough for a remote tty.
PROGRESS_REFRESH = 0.5
# Errors that mean the run folder cannot take more data; the run stops, keeping what it has.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO)


class UserError(Exception):
    """Bad input: exit status 2, one line."""


class RunStopped(Exception):
    """The run cannot go on (divergence, disk): exit status 3, one line."""


# ------------------------------------------------------------------------------------------
# Set-up

def get_contexts(args):
    try:
        gpus = parse_devices(args.gpus)
    except ValueError:
        raise UserError('--gpus %r: expected ids like "0", "0,1" or "0-7"' % args.gpus) from None
    if gpus:
        have = mx.context.num_gpus()
        missing = [g for g in gpus if g >= have or g < 0]
        if missing:
            raise UserError('--gpus %s: GPU %s not present (this machine has %d GPU%s%s)'
                            % (args.gpus, ','.join(map(str, missing)), have,
                               '' if have == 1 else 's',
                               '' if have else '; leave --gpus empty to train on CPU'))
        return [mx.gpu(g) for g in gpus]
    if args.cpus < 1:
        raise UserError('--cpus must be >= 1')
    if args.amp:
        raise UserError('--amp (float16 mixed precision) needs GPUs: give --gpus or drop --amp')
    return [mx.cpu(i) for i in range(args.cpus)]


def create_kvstore(args, contexts):
    """The KVStore the Trainer uses, or its name where Gluon creates it itself."""
    if args.amp and 'async' in args.kv_store:
        # The servers would apply a step before AMP could see that its gradients overflowed.
        raise UserError('--amp cannot be combined with --kv-store %s (updates happen on the '
                        'servers, where overflowed float16 steps cannot be skipped); use '
                        'dist_sync or dist_device_sync' % args.kv_store)
    if args.kv_store.startswith('dist'):
        if 'DMLC_ROLE' not in os.environ:
            raise UserError('--kv-store %s needs the parameter-server environment: start the '
                            'run with tools/launch.py -n WORKERS -s SERVERS -- python train/...'
                            % args.kv_store)
        return mx.kv.create(args.kv_store)
    if args.kv_store == 'nccl' and not any(c.device_type == 'gpu' for c in contexts):
        raise UserError('--kv-store nccl needs GPUs; use local or device on CPU')
    return args.kv_store


ARCH_FLAGS = ('L', 'width', 'branches', 'fused', 'blocks')


def model_spec(args, classes):
    """(name, kwargs, family, full kwargs) of the network: a preset or a family plus the flags
    that were given. A script's `family_defaults` (e.g. the demo's L=6) complete a bare family
    only; a flag that contradicts a preset's own architecture is refused rather than silently
    building another network under the preset's name."""
    kwargs = {k: getattr(args, k) for k in ARCH_FLAGS if getattr(args, k, None) is not None}
    try:
        family, _ = resolve(args.model)
    except ValueError as e:
        raise UserError(str(e).split('\n')[0] + ' (see --help for --model)') from None
    if family == args.model:
        for k, v in (getattr(args, 'family_defaults', None) or {}).items():
            kwargs.setdefault(k, v)
    else:
        own = preset(args.model)['kwargs']
        clash = sorted(k for k in kwargs if k in own and own[k] != kwargs[k])
        if clash:
            raise UserError('--model %s is %s; %s contradicts it: give the family instead, e.g. '
                            '--model %s %s' % (
                                args.model, _kw(own), ', '.join('--%s %s' % (k, kwargs[k])
                                                                for k in clash),
                                family, ' '.join('--%s %s' % (k, kwargs[k]) for k in clash)))
    kwargs['classes'] = classes
    family, full = resolve(args.model, **kwargs)
    return args.model, kwargs, family, full


def build_model(args, classes):
    name, kwargs, _, _ = model_spec(args, classes)
    try:
        return get_model(name, **kwargs)
    except (ValueError, TypeError, AssertionError) as e:
        raise UserError('--model %s %s: %s' % (name, kwargs, e)) from None


def seed_everything(seed, epoch):
    """Seed every RNG from (seed, epoch) so an epoch's randomness does not depend on history."""
    s = (seed * 1000003 + epoch * 7919 + 17) % (2 ** 31 - 1)
    mx.random.seed(s)
    np.random.seed(s)
    random.seed(s)


def setup_logging(save_dir, rank, write_files):
    fmt = '%%(asctime)s [rank %d] %%(levelname)s %%(message)s' % rank
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for h in list(root.handlers):
        if getattr(h, '_dmrnet', False):
            root.removeHandler(h)
    handlers = [logging.StreamHandler(sys.stderr)]
    if write_files:
        os.makedirs(save_dir, exist_ok=True)
        handlers.append(logging.FileHandler(os.path.join(save_dir, 'train.log')))
    for h in handlers:
        h.setFormatter(logging.Formatter(fmt))
        h._dmrnet = True
        root.addHandler(h)


# ------------------------------------------------------------------------------------------
# Metrics over devices and workers

class Sync:
    """Sums small metric vectors over workers (dist_sync kvstore); identity otherwise."""

    def __init__(self, kv):
        self.kv = kv if (kv is not None and not isinstance(kv, str)
                         and kv.num_workers > 1 and 'async' not in kv.type) else None
        self.ready = set()

    def _allreduce(self, key, array):
        if key not in self.ready:
            self.kv.init(key, mx.nd.zeros_like(array))
            self.ready.add(key)
        self.kv.push(key, array)
        out = mx.nd.zeros_like(array)
        self.kv.pull(key, out=out)
        return out

    def sum(self, values):
        v = mx.nd.array(np.asarray(values, dtype=np.float64), dtype='float32')
        if self.kv is None:
            return v.asnumpy().astype(np.float64)
        return self._allreduce(METRIC_KEY + len(values), v).asnumpy().astype(np.float64)

    def mean(self, key, array):
        return self._allreduce(key, array) / self.kv.num_workers


def average_running_stats(net, sync):
    """Replace each device's BatchNorm running mean/var by their mean over all devices and
    workers. Training never reads them (it uses batch statistics) and their update is linear,
    so this changes nothing but evaluation and checkpoints: every device then evaluates the same
    model, a checkpoint holds exactly what training holds (bit-exact resume with several
    devices), and W one-device workers end with what one W-device process ends with."""
    aux = [p for p in net.collect_params().values() if p.grad_req == 'null']
    for i, p in enumerate(aux):
        mean = p._reduce()
        if sync.kv is not None:
            mean = sync.mean(AUX_KEY + i, mean)
        p.set_data(mean)


def evaluate(net, data_iter, contexts, max_batches=None, topk=5):
    """(top-1 errors, top-k errors, images) over `data_iter`, ignoring padded images."""
    wrong1 = wrongk = n = 0
    data_iter.reset()
    for i, batch in enumerate(data_iter):
        if max_batches is not None and i >= max_batches:
            break
        datas = gluon.utils.split_and_load(batch.data[0], contexts, even_split=False)
        outs = [net(x).astype('float32').asnumpy() for x in datas]  # AMP: float16 scores
        scores = np.concatenate(outs, 0)
        labels = batch.label[0].asnumpy().astype(np.int64)
        keep = scores.shape[0] - (batch.pad or 0)
        scores, labels = scores[:keep], labels[:keep]
        top = np.argsort(-scores, axis=1)
        wrong1 += int((top[:, 0] != labels).sum())
        k = min(topk, scores.shape[1])
        wrongk += int((~(top[:, :k] == labels[:, None]).any(1)).sum())
        n += keep
    return wrong1, wrongk, n


# ------------------------------------------------------------------------------------------
# The loop

class Run:
    """Everything one training run holds; `fit` drives it."""

    def __init__(self, args, data):
        self.args, self.data = args, data
        self.contexts = get_contexts(args)
        # Before the first operator (the KVStore's included), which creates MXNet's engine.
        self.engine = use_naive_engine_on_cpu(self.contexts)
        self.kv = create_kvstore(args, self.contexts)
        dist = not isinstance(self.kv, str)
        self.async_kv = 'async' in args.kv_store
        self.rank = self.kv.rank if dist else 0
        self.num_workers = self.kv.num_workers if dist else 1
        self.is_chief = self.rank == 0
        try:
            self.info = data.dataset_info(args.dataset)
        except (KeyError, ValueError) as e:
            raise UserError('unknown dataset %s (%s)' % (args.dataset, e)) from None
        self.classes = self.info['classes']
        args.data_dir = args.data_dir or os.path.join('data', args.dataset)
        self.resume_meta = self.resume_dir = None
        if args.resume:
            try:
                self.resume_meta, self.resume_dir = checkpoint.locate(args.resume)
            except checkpoint.CheckpointError as e:
                raise UserError('--resume: %s' % e) from None
        if args.save_dir is None:
            args.save_dir = self.resume_dir or os.path.join(
                'runs', '%s-%s-s%d' % (args.dataset, args.model, args.seed))
        if not args.resume and any(os.path.exists(os.path.join(args.save_dir, f))
                                   for f in ('last.json', 'summary.json')):
            # Starting afresh there would mix two runs' checkpoints, logs and exports.
            raise UserError('--save-dir %s already holds a run: continue it with --resume %s, '
                            'or start afresh in another (or emptied) folder'
                            % (args.save_dir, args.save_dir))
        setup_logging(args.save_dir, self.rank, self.is_chief)
        devices = len(self.contexts)
        parts = self.num_workers * (devices if args.shard_per_device else 1)
        if args.batch_size % (self.num_workers * devices):
            raise UserError('--batch-size %d (total) is not divisible by %d workers x %d devices'
                            % (args.batch_size, self.num_workers, devices))
        self.parts, self.part_batch = parts, args.batch_size // parts
        if args.epochs < 1:
            raise UserError('--epochs must be >= 1')
        self.name, self.kwargs, self.family, self.full_kwargs = model_spec(args, self.classes)

    # -- data
    def part_ids(self):
        if self.args.shard_per_device:
            d = len(self.contexts)
            return [self.rank * d + i for i in range(d)]
        return [self.rank]

    def train_iters(self, epoch):
        a = self.args
        return [self.data.get_train_iter(a.dataset, a.data_dir, self.part_batch, epoch=epoch,
                                         seed=a.seed, num_parts=self.parts, part_index=p,
                                         num_threads=a.num_data_threads)
                for p in self.part_ids()]

    def val_iter(self):
        a = self.args
        return self.data.get_val_iter(a.dataset, a.data_dir, a.batch_size // self.num_workers,
                                      num_parts=self.num_workers, part_index=self.rank,
                                      num_threads=a.num_data_threads)

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

    def steps_per_epoch(self):
        n = self.info['num_train'] // (self.part_batch * self.parts)
        if self.args.max_batches is not None:
            n = min(n, self.args.max_batches)
        return max(n, 1)

    # -- metadata
    def meta(self, epoch, best_error, best_epoch, history_tail):
        a = self.args
        return dict(epoch=epoch, model=self.name, model_kwargs=self.kwargs, family=self.family,
                    family_kwargs=self.full_kwargs, dataset=a.dataset, classes=self.classes,
                    seed=a.seed, best_test_error=best_error, best_epoch=best_epoch,
                    args=vars(a), last=history_tail)

    def check_resume(self):
        m = self.resume_meta
        mine = (self.family, self.full_kwargs, self.args.dataset)
        theirs = (m.get('family'), m.get('family_kwargs'), m.get('dataset'))
        if json.loads(json.dumps(mine)) != json.loads(json.dumps(theirs)):
            raise UserError('--resume %s: the checkpoint is %s %s on %s, this run is %s %s on %s'
                            % (self.args.resume, theirs[0], _kw(theirs[1]), theirs[2],
                               mine[0], _kw(mine[1]), mine[2]))


def _kw(d):
    return '(%s)' % ', '.join('%s=%s' % kv for kv in sorted((d or {}).items()))


def _log_lines(path, upto):
    """Keep the log.jsonl lines of epochs <= upto (a resumed run rewrites the later ones)."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get('epoch', 0) <= upto:
                out.append(rec)
    return out


def _write_log(path, records):
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            for r in records:
                f.write(json.dumps(r, sort_keys=True) + '\n')


def make_trainer(net, optimizer, opt_params, kv='device', async_kv=False):
    """A Trainer over the trainable parameters, weight decay on all of them (Gluon leaves
    wd_mult at 1 for BN gamma/beta and biases, as the authors' recipe wants; the Module API
    would exempt them)."""
    # BatchNorm running statistics stay out of the Trainer: its KVStore would broadcast them
    # from the first device at the first step, overwriting what the first batch put there.
    trainable = {k: v for k, v in net.collect_params().items() if v.grad_req != 'null'}
    # Updating on the workers keeps the optimizer state local, so it can be checkpointed and
    # the per-epoch learning rate applies; asynchronous SGD has to update on the servers.
    return gluon.Trainer(trainable, optimizer, opt_params, kvstore=kv,
                         update_on_kvstore=True if async_kv else False)


def fit(args, data=None):
    """Train (or resume) per `args`; returns the summary dict. Raises UserError / RunStopped."""
    if data is None:
        import dmrnet.data as data
    run = Run(args, data)
    a = args
    log.info('%s on %s: %d worker(s) x %s, total batch %d (%d per %s), kvstore %s',
             run.name, a.dataset, run.num_workers, ','.join(map(str, run.contexts)),
             a.batch_size, a.batch_size // (run.num_workers * len(run.contexts)),
             'device', a.kv_store + ', engine ' + run.engine)
    if a.amp:
        from mxnet.contrib import amp
        amp.init()
    net = build_model(a, run.classes)
    nparams = count_params(net)
    mx.random.seed(a.seed)
    np.random.seed(a.seed)
    net.initialize(ctx=run.contexts)
    start_epoch, best_error, best_epoch = 0, float('inf'), 0
    if run.resume_meta:
        run.check_resume()
        m, folder = run.resume_meta, run.resume_dir
        try:
            net.load_parameters(os.path.join(folder, m['params']), ctx=run.contexts)
        except (mx.base.MXNetError, AssertionError, ValueError) as e:
            raise UserError('--resume %s: parameters do not fit %s (%s)'
                            % (a.resume, run.name, str(e).split('\n')[0])) from None
        start_epoch = m['epoch']
        best_error = m.get('best_test_error')
        best_error = float('inf') if best_error is None else best_error
        best_epoch = m.get('best_epoch', 0)
        log.info('resumed from %s (epoch %d, best test error %.2f%%)',
                 os.path.join(folder, m['params']), start_epoch, best_error)
    net.hybridize(static_alloc=True, static_shape=True)

    opt_params = {'learning_rate': lr_at(a, start_epoch), 'wd': a.wd, 'momentum': a.momentum}
    if a.amp:
        opt_params['multi_precision'] = True
    async_kv = run.async_kv
    if async_kv:
        schedule = server_lr_schedule(run, start_epoch)
        if schedule is not None:
            opt_params['lr_scheduler'] = schedule
    trainer = make_trainer(net, a.optimizer, opt_params, run.kv, async_kv)
    if a.amp:
        amp.init_trainer(trainer)
    if run.resume_meta and run.resume_meta.get('states'):
        states = os.path.join(run.resume_dir, run.resume_meta['states'])
        if async_kv:
            log.warning('dist_async: optimizer state lives on the servers; momentum restarts')
        else:
            trainer.load_states(states)
            # The states file carries a pickled optimizer, which replaces the Trainer's: the
            # flags of this run, not of the checkpoint's, say what weight decay and momentum are.
            trainer._optimizer.wd, trainer._optimizer.momentum = a.wd, a.momentum
    if not isinstance(run.kv, str) and not async_kv:
        # Gluon would pull the initial parameters from the servers inside the first step, as
        # asynchronous operations that nothing orders before the first gradient push: a fast
        # worker's gradients could then reach the servers first and be pulled as "parameters"
        # by a slow one (seen: dist_sync runs diverging from the start, one run in three).
        # Finish the initial pull everywhere before anyone pushes.
        trainer._init_kvstore()
        trainer._init_params()
        mx.nd.waitall()
        run.kv._barrier()
    sync = Sync(run.kv)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    save_dir = a.save_dir
    log_path = os.path.join(save_dir, 'log.jsonl')
    # A run resumed into a new folder carries the epochs it continues from.
    source = log_path if not run.resume_dir or os.path.exists(log_path) else os.path.join(
        run.resume_dir, 'log.jsonl')
    history = _log_lines(source, start_epoch) if run.is_chief else []
    if run.is_chief:
        _write_log(log_path, history)
        if not a.export_only and start_epoch < a.epochs:
            # summary.json marks a finished run; a run extended by --resume is not finished.
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(save_dir, 'summary.json'))

    if a.export_only:
        if not run.resume_meta:
            raise UserError('--export-only needs --resume')
        return finish(run, net, history, nparams, best_error, best_epoch)

    log.info('%s: %d parameters; lr %g, steps at epochs %s, %s, wd %g, momentum %g; epochs %d-%d',
             run.name, nparams, a.lr, lr_steps(a), a.optimizer, a.wd, a.momentum,
             start_epoch + 1, a.epochs)
    # (epoch, folder) of the newest complete checkpoint, named in every stop message.
    last_saved = (start_epoch, run.resume_dir or save_dir)
    try:
        for epoch in range(start_epoch, a.epochs):
            rec = train_epoch(run, net, trainer, loss_fn, sync, epoch, last_saved)
            average_running_stats(net, sync)
            w1, w5, n = evaluate(net, run.val_iter(), run.contexts, a.max_val_batches)
            w1, w5, n = sync.sum([w1, w5, n])
            rec['test_error'] = 100.0 * w1 / max(n, 1)
            if run.classes > 10:
                rec['test_top5_error'] = 100.0 * w5 / max(n, 1)
            is_best = rec['test_error'] < best_error
            if is_best:
                best_error, best_epoch = rec['test_error'], epoch + 1
            history.append(rec)
            log.info('[Epoch %d] lr %g train loss %.4f error %.2f%% | test error %.2f%%%s | '
                     '%.0f s, %.0f images/s', epoch + 1, rec['lr'], rec['train_loss'],
                     rec['train_error'], rec['test_error'],
                     ' top-5 %.2f%%' % rec['test_top5_error'] if 'test_top5_error' in rec
                     else '', rec['seconds'], rec['images_per_sec'])
            if run.is_chief:
                _write_log(log_path, history)
                due = (epoch + 1) % a.checkpoint_every == 0 or epoch + 1 == a.epochs
                if due or is_best:
                    checkpoint.save(save_dir, net, trainer,
                                    run.meta(epoch + 1, best_error, best_epoch, rec),
                                    is_best, with_states=not async_kv)
                    last_saved = (epoch + 1, save_dir)
                try:
                    from dmrnet.train.curves import plot_runs
                    plot_runs([save_dir], os.path.join(save_dir, 'curves.png'))
                except Exception as e:  # a figure must never stop training
                    log.debug('curves not drawn: %s', e)
        return finish(run, net, history, nparams, best_error, best_epoch)
    except OSError as e:
        if e.errno in DISK_ERRNOS:
            raise RunStopped('cannot write %s (%s); %s' % (e.filename or save_dir,
                                                           e.strerror or os.strerror(e.errno),
                                                           kept(*last_saved))) from None
        raise


def server_lr_schedule(run, start_epoch):
    """dist_async updates on the servers, which never see set_learning_rate: give the optimizer
    they receive the remaining steps of the schedule, counted in server updates (every worker's
    push of a batch is one)."""
    a = run.args
    per_epoch = run.steps_per_epoch() * run.num_workers
    steps = [(s - start_epoch) * per_epoch for s in lr_steps(a) if s > start_epoch]
    if not steps:
        return None
    return mx.lr_scheduler.MultiFactorScheduler(step=steps, factor=a.lr_factor)


def train_epoch(run, net, trainer, loss_fn, sync, epoch, last_saved):
    a = run.args
    seed_everything(a.seed, epoch)
    lr = lr_at(a, epoch)
    if not run.async_kv:
        trainer.set_learning_rate(lr)
    iters = run.train_iters(epoch)
    steps = run.steps_per_epoch()
    bar = None
    if not a.no_progress and sys.stderr.isatty() and run.is_chief:
        from tqdm import tqdm
        bar = tqdm(total=steps * a.batch_size, unit='img', unit_scale=True, leave=False,
                   desc='epoch %d/%d' % (epoch + 1, a.epochs), file=sys.stderr,
                   mininterval=PROGRESS_REFRESH)
    loss_sum = wrong = seen = 0.0
    tic = time.time()
    for i, parts in enumerate(run.batches(iters)):
        if i >= steps:
            break
        with autograd.record():
            outs = [net(x) for x, _ in parts]
            losses = [loss_fn(o, y) for o, (_, y) in zip(outs, parts)]
            # AMP's loss scaling is a multiplication the gradients must flow through, so it
            # has to be recorded too.
            heads = amp_scaled(losses, trainer) if a.amp else losses
        autograd.backward(heads)
        # Gradients are sums over the images; dividing by the global batch (all devices, all
        # workers) makes one step independent of how the batch is split.
        trainer.step(a.batch_size)
        batch_loss = sum(float(l.sum().asscalar()) for l in losses)
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
        if a.log_interval and (i + 1) % a.log_interval == 0:
            log.info('[Epoch %d Batch %d/%d] loss %.4f error %.2f%% %.0f images/s', epoch + 1,
                     i + 1, steps, loss_sum / seen, 100 * wrong / seen,
                     seen * run.num_workers / max(time.time() - tic, 1e-9))
    mx.nd.waitall()
    seconds = time.time() - tic
    if bar is not None:
        bar.close()
    loss_sum, wrong, seen, seconds = sync.sum([loss_sum, wrong, seen, seconds])
    seconds /= run.num_workers
    return dict(epoch=epoch + 1, lr=lr, train_loss=loss_sum / max(seen, 1),
                train_error=100.0 * wrong / max(seen, 1), seconds=round(seconds, 3),
                images_per_sec=round(seen / max(seconds, 1e-9), 2))


def amp_scaled(losses, trainer):
    """The losses times AMP's current loss scale; tells the Trainer to divide it out again."""
    from mxnet.contrib import amp
    with amp.scale_loss(losses, trainer) as scaled:
        return scaled


def finish(run, net, history, nparams, best_error, best_epoch):
    """Export best and last models and write summary.json (rank 0)."""
    a = run.args
    summary = None
    if run.is_chief:
        c, h, w = run.info['image_shape']
        shape = (1, c, h, w)
        meta = dict(model=run.name, model_kwargs=run.kwargs, family=run.family,
                    family_kwargs=run.full_kwargs, dataset=a.dataset, classes=run.classes)
        last_epoch = history[-1]['epoch'] if history else (run.resume_meta or {}).get('epoch', 0)
        export(net, os.path.join(a.save_dir, 'last'), last_epoch, shape, meta, run.contexts[0])
        best_meta = os.path.join(a.save_dir, 'best.json')
        if not os.path.exists(best_meta) and run.resume_dir:
            best_meta = os.path.join(run.resume_dir, 'best.json')
        if os.path.exists(best_meta):
            m, folder = checkpoint.locate(best_meta)
            best = build_model(a, run.classes)
            best.load_parameters(os.path.join(folder, m['params']), ctx=run.contexts[0])
            export(best, os.path.join(a.save_dir, 'best'), m['epoch'], shape, meta,
                   run.contexts[0])
        final = history[-1] if history else {}
        summary = dict(model=run.name, model_kwargs=run.kwargs, family=run.family,
                       family_kwargs=run.full_kwargs, dataset=a.dataset, args=vars(a),
                       params=nparams, epochs=last_epoch,
                       final_test_error=final.get('test_error'),
                       best_test_error=None if best_error == float('inf') else best_error,
                       best_epoch=best_epoch, final_train_loss=final.get('train_loss'))
        if run.classes > 10:
            summary['final_test_top5_error'] = final.get('test_top5_error')
            summary['best_test_top5_error'] = next(
                (r.get('test_top5_error') for r in history if r['epoch'] == best_epoch), None)
        checkpoint.write_json(os.path.join(a.save_dir, 'summary.json'), summary)
        log.info('done: final test error %s%%, best %s%% (epoch %d); %s',
                 _fmt(summary['final_test_error']), _fmt(summary['best_test_error']),
                 best_epoch, a.save_dir)
    return summary


def kept(epoch, save_dir):
    if epoch == 0:
        return 'no checkpoint had been written to %s yet, so there is nothing to resume' % save_dir
    return ('the last good checkpoint (epoch %d) is intact in %s: continue with --resume %s'
            % (epoch, save_dir, save_dir))


def export(net, prefix, epoch, shape, meta, ctx):
    try:
        _, params = export_model(net, prefix, epoch=epoch, input_shape=shape, ctx=ctx,
                                 metadata=meta)
    except mx.base.MXNetError as e:
        if 'Write' not in str(e):
            raise
        raise checkpoint.write_error(prefix, e) from None
    # An earlier export under this prefix (before a --resume) would otherwise be what
    # evaluate.py picks when it looks for the newest prefix-NNNN.params.
    for old in glob.glob(glob.escape(prefix) + '-[0-9][0-9][0-9][0-9].params'):
        if os.path.abspath(old) != os.path.abspath(params):
            os.remove(old)


def _fmt(v):
    return 'n/a' if v is None else '%.2f' % v


def main(parser, argv=None):
    """Entry point of every script: parse, fit, turn known failures into one line + status."""
    args = parser.parse_args(argv)
    try:
        summary = fit(args)
    except UserError as e:
        _fail(parser.prog, e, 2)
    except RunStopped as e:
        _fail(parser.prog, e, 3)
    except FileNotFoundError as e:  # dmrnet.data.DatasetMissingError names the pack command
        _fail(parser.prog, e, 2)
    except Exception as e:
        from dmrnet.data import DataError
        if isinstance(e, DataError):
            _fail(parser.prog, e, 2)
        raise
    except KeyboardInterrupt:
        _fail(parser.prog, 'interrupted; resume with --resume %s' % args.save_dir, 130)
    if summary is not None:  # rank 0
        print(result_line(summary, args.save_dir), flush=True)
    return summary


def result_line(s, save_dir):
    """The run's outcome in one line; the best figure is what train/evaluate.py reports for
    SAVE_DIR/best."""
    top5 = lambda key: (', top-5 %s%%' % _fmt(s[key])) if s.get(key) is not None else ''
    return ('%s test error: %s%%%s (best, epoch %d of %d, exported as %s); last epoch %s%%%s'
            % (s['dataset'], _fmt(s['best_test_error']), top5('best_test_top5_error'),
               s['best_epoch'], s['epochs'], os.path.join(save_dir, 'best'),
               _fmt(s['final_test_error']), top5('final_test_top5_error')))


def _fail(prog, msg, status):
    logging.shutdown()
    print('%s: error: %s' % (prog, msg), file=sys.stderr)
    sys.exit(status)
