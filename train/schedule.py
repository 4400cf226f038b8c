"""The learning-rate schedule: the one definition of when the rate drops and what it is at an
epoch. Paper, Section 4: divided by 10 at 1/2, 3/4 and 7/8 of training (CIFAR, SVHN; 'fractions')
or every 30 epochs (ImageNet, the authors' train_imagenet.py; 'every30'); explicit epochs
(--lr-steps) replace either.

The rate is a pure function of the epoch, so that a resumed run lands on it exactly; the
parameter servers of dist_async, which never see the workers' epochs, get the same steps counted
in their own updates.
"""
SCHEDULES = ('fractions', 'every30')
FRACTIONS = (0.5, 0.75, 0.875)
EVERY = 30


def lr_steps(epochs, schedule='fractions', steps=None):
    """Epochs after which the learning rate is multiplied by the factor."""
    if steps:
        return sorted(int(s) for s in steps)
    if schedule == 'every30':
        return list(range(EVERY, epochs, EVERY))
    if schedule == 'fractions':
        return sorted({int(round(epochs * f)) for f in FRACTIONS} - {0})
    raise ValueError('unknown lr schedule %r: use %s' % (schedule, ' or '.join(SCHEDULES)))


def steps_of(config):
    """The drop epochs of a TrainConfig (or of a run's recorded args, a dict)."""
    get = config.get if isinstance(config, dict) else lambda k: getattr(config, k)
    return lr_steps(get('epochs'), get('lr_schedule'), get('lr_steps'))


def lr_at(config, epoch):
    """Learning rate of 0-based `epoch`."""
    return config.lr * config.lr_factor ** sum(epoch >= s for s in steps_of(config))


def describe(lr, schedule):
    """README's words for a recipe's schedule."""
    return {'fractions': '%g, /10 at 1/2, 3/4, 7/8' % lr,
            'every30': '%g, /10 every %d epochs' % (lr, EVERY)}[schedule]


def server_schedule(config, start_epoch, steps_per_epoch, num_workers):
    """dist_async updates on the servers, which never see set_learning_rate: the remaining drops
    counted in server updates (every worker's push of a batch is one), as the MultiFactorScheduler
    the servers' optimizer carries. None when no drop remains."""
    import mxnet as mx
    per_epoch = steps_per_epoch * num_workers
    steps = [(s - start_epoch) * per_epoch for s in steps_of(config) if s > start_epoch]
    if not steps:
        return None
    return mx.lr_scheduler.MultiFactorScheduler(step=steps, factor=config.lr_factor)
