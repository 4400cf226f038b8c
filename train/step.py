"""One training step, the same everywhere a step is taken: the training loop, the benchmark, the
form selection and the data benchmark all train through `Trainer` + `train_step`."""
import mxnet as mx
from mxnet import autograd, gluon


def make_trainer(net, optimizer='nag', opt_params=None, kvstore='device', async_kv=False):
    """A Trainer over the trainable parameters, weight decay on all of them (Gluon leaves
    wd_mult at 1 for BN gamma/beta and biases, as the authors' recipe wants; the Module API
    would exempt them)."""
    # BatchNorm running statistics stay out of the Trainer: its KVStore would broadcast them
    # from the first device at the first step, overwriting what the first batch put there.
    trainable = {k: v for k, v in net.collect_params().items() if v.grad_req != 'null'}
    # Updating on the workers keeps the optimizer state local, so it can be checkpointed and
    # the per-epoch learning rate applies; asynchronous SGD has to update on the servers.
    return gluon.Trainer(trainable, optimizer, dict(opt_params or {}), kvstore=kvstore,
                         update_on_kvstore=True if async_kv else False)


def train_step(net, trainer, loss_fn, parts, batch_size, loss_scaling=False):
    """Forward, backward and update on `parts`, a list of (data, label) per device; returns
    (losses, outputs) per device. `batch_size` is the global batch (all devices, all workers):
    gradients are sums over images, so dividing by it makes a step independent of how the
    batch is split. `loss_scaling`: AMP's dynamic loss scale (float16; the Trainer must have
    been through amp.init_trainer)."""
    with autograd.record():
        outs = [net(x) for x, _ in parts]
        losses = [loss_fn(o, y) for o, (_, y) in zip(outs, parts)]
        # AMP's loss scaling is a multiplication the gradients must flow through, so it has
        # to be recorded too.
        heads = _amp_scaled(losses, trainer) if loss_scaling else losses
    autograd.backward(heads)
    trainer.step(batch_size)
    return losses, outs


def _amp_scaled(losses, trainer):
    """The losses times AMP's current loss scale; tells the Trainer to divide it out again."""
    from mxnet.contrib import amp
    with amp.scale_loss(losses, trainer) as scaled:
        return scaled


def synthetic_step(net, ctx, shape, classes=10, optimizer='nag', opt_params=None,
                   loss_scaling=False):
    """A closure running one training step of `net` on a fixed synthetic batch of `shape`
    (and waiting for it): what the benchmarks time. `net` is initialized and hybridized (and
    built after amp.init for mixed precision)."""
    trainer = make_trainer(net, optimizer, opt_params or {'learning_rate': 0.01,
                                                          'momentum': 0.9, 'wd': 1e-4})
    if loss_scaling:
        from mxnet.contrib import amp
        amp.init_trainer(trainer)
    x = mx.nd.random.normal(shape=shape, ctx=ctx)
    y = mx.nd.array(mx.nd.random.randint(0, classes, (shape[0],)).asnumpy(), ctx=ctx)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

    def step():
        train_step(net, trainer, loss_fn, [(x, y)], shape[0], loss_scaling=loss_scaling)
        mx.nd.waitall()
    step.trainer = trainer
    return step
