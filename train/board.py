"""TensorBoard scalars of a run (--tensorboard DIR): per epoch the training loss and error, the
test error (and top-5), the learning rate and images/s, written with tensorboardX, a maintained
writer that installs beside the project's pins (no TensorFlow, no PyTorch)."""

INSTALL = 'pip install tensorboardX==2.6.5'


class Board:
    """The run's event file in `logdir`; one point per curve and epoch."""

    CURVES = (('train/loss', 'train_loss'), ('train/error', 'train_error'),
              ('test/error', 'test_error'), ('test/top5_error', 'test_top5_error'),
              ('lr', 'lr'), ('speed/images_per_sec', 'images_per_sec'))

    def __init__(self, logdir):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError('--tensorboard needs tensorboardX: %s' % INSTALL) from None
        self.writer = SummaryWriter(logdir)

    def epoch(self, record):
        for tag, key in self.CURVES:
            if record.get(key) is not None:
                self.writer.add_scalar(tag, record[key], record['epoch'])
        self.writer.flush()

    def close(self):
        self.writer.close()
