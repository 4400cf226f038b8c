"""Information flow (Section 3.2, Eq. 4-5): the merge-and-run matrix is idempotent, and the
gradient that reaches each residual branch at initialisation.

    python -m dmrnet.tools.analysis.flow [--L 54] [--plot flow.png] [--json] [--batch 16]
                                         [--seed 0]
    (the same: python tools/analysis/flow.py ...)

(a) M = (1/K) [I .. I; ..; I .. I] (dmrnet.symbols.merge_and_run_matrix) satisfies M^n = M; this
    is what lets Eq. 5 send every earlier branch's output straight to a later block. We check it
    numerically for K = 2..4 and n = 1..10 and print M for K = 2.
(b) ResNet, DILNet and DMRNet with the same L (so the same number of residual branches, L) are
    built with get_model and their authors' initialisers, and one forward/backward of a random
    batch with random labels (softmax cross-entropy, BatchNorm in training mode) is run. Two
    measures: the norm of the gradient of the loss with respect to each block's input (what
    reaches the block; x axis: residual branches before it), and, per residual branch, the norm
    of the gradient of its first convolution's weight (branches numbered 1..L from the input;
    branches 2t-1 and 2t sit in the t-th two-branch block), so the three curves share an axis.
"""
import argparse
import json
import logging
import sys

import numpy as np

from dmrnet.paper import FAMILIES, LABELS
from dmrnet.utils.files import save_figure  # (dmrnet.utils sets OMP threads before mxnet)

log = logging.getLogger('dmrnet.flow')


def idempotence(Ks=(2, 3, 4), d=3, n_max=10):
    """{K: max over n <= n_max of max |M^n - M|}."""
    from dmrnet.symbols import merge_and_run_matrix
    errors = {}
    for K in Ks:
        M = merge_and_run_matrix(K, d)
        power = M.copy()
        worst = 0.0
        for _ in range(2, n_max + 1):
            power = power @ M
            worst = max(worst, float(np.abs(power - M).max()))
        errors[K] = worst
    return errors


def branch_first_convs(block):
    """The first Conv2D of each residual branch of a (non-fused) block, in branch order."""
    bodies = [block.body] if hasattr(block, 'body') else list(block.branches)
    return [body[0][0] for body in bodies]


def _initialised(family, L, batch, seed, classes):
    """A freshly initialised network and a random batch with random labels."""
    import mxnet as mx
    from dmrnet.symbols import get_model
    mx.random.seed(seed)
    np.random.seed(seed)
    net = get_model(family, L=L, classes=classes)
    net.initialize()
    x = mx.nd.array(np.random.randn(batch, 3, 32, 32).astype('float32'))
    y = mx.nd.array(np.random.randint(0, classes, size=batch).astype('float32'))
    return net, x, y


def gradient_norms(family, L, batch=16, seed=0, classes=10):
    """Per residual branch (input to output), the gradient norm of its first conv weight after
    one backward pass at initialisation."""
    import mxnet as mx
    from mxnet import autograd
    net, x, y = _initialised(family, L, batch, seed, classes)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        loss = loss_fn(net(x), y).mean()
    loss.backward()
    return [float(conv.weight.grad().norm().asscalar())
            for block in net.blocks for conv in branch_first_convs(block)]


def forward_by_blocks(net, x, probes=None):
    """The forward of a (non-fused) dmrnet.symbols Network, one block at a time, as its
    hybrid_forward does it; probes[i] (one array per stream) are added to block i's inputs.
    Returns (logits, the shapes of every block's inputs)."""
    import mxnet as mx
    if not net.multi:
        streams = [net.stems[0](x)]
    elif len(net.stems) > 1:
        streams = [stem(x) for stem in net.stems]
    else:
        streams = [net.stems[0](x)] * net.K
    shapes = []
    for i, block in enumerate(net.blocks):
        if probes is not None:
            streams = [stream + probe for stream, probe in zip(streams, probes[i])]
        shapes.append([stream.shape for stream in streams])
        outputs = block(*streams)
        streams = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    if not net.multi or net.share:
        logits = net.heads[0](streams[0])
    else:
        logits = mx.nd.add_n(*[head(stream) for head, stream in zip(net.heads, streams)]) \
            * (1.0 / net.K)
    return logits, shapes


def block_input_gradients(family, L, batch=16, seed=0, classes=10):
    """Per block (input to output), the L2 norm of dLoss/d(block input) at initialisation, all
    streams of a two-stream block taken together; and, per block, the number of residual
    branches before it (ResNet: t-1, two-branch blocks: 2(t-1)), so that nets of equal L share
    an x axis. This is the gradient that *reaches* a block, where the weight gradients of
    `gradient_norms` also depend on the block's own activations.

    Gluon keeps no gradients of intermediate arrays, so a zero 'probe' leaf is added to every
    block input (x + 0 changes nothing) and its gradient read after the backward pass."""
    import mxnet as mx
    from mxnet import autograd
    net, x, y = _initialised(family, L, batch, seed, classes)
    if getattr(net, 'fused', False):
        raise ValueError('block_input_gradients needs the branch form (fused=False)')

    _, shapes = forward_by_blocks(net, x)   # shapes only (no autograd: BN stats untouched)
    probes = [[mx.nd.zeros(shape) for shape in block] for block in shapes]
    for block in probes:
        for probe in block:
            probe.attach_grad()
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        logits, _ = forward_by_blocks(net, x, probes)
        loss = loss_fn(logits, y).mean()
    loss.backward()
    norms = [float(np.sqrt(sum(float((probe.grad ** 2).sum().asscalar()) for probe in block)))
             for block in probes]
    per_block = L // len(norms)    # residual branches in one block: 1 (ResNet) or K
    return norms, [per_block * t for t in range(len(norms))]


def plot(grads, out, L, block_grads=None):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2 if block_grads else 1, figsize=(13 if block_grads else 7, 4),
                             squeeze=False)
    if block_grads:
        ax = axes[0][0]
        for family, (norms, before) in block_grads.items():
            ax.semilogy(before, norms, marker='.', label=LABELS.get(family, family))
        ax.set_xlabel('residual branches between the input and the block')
        ax.set_ylabel('|dLoss / d(block input)|')
        ax.set_title('Gradient reaching each block at initialisation, L = %d' % L)
        ax.legend()
    ax = axes[0][-1]
    for family, norms in grads.items():
        ax.semilogy(range(1, len(norms) + 1), norms, marker='.', label=LABELS.get(family, family))
    ax.set_xlabel('residual branch (1 = nearest the input)')
    ax.set_ylabel('|grad| of the first conv weight')
    ax.set_title('Weight gradient of each branch at initialisation, L = %d' % L)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, out)
    log.info('wrote %s', out)


def main(argv=None):
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n')[0])
    parser.add_argument('--L', type=int, default=54,
                        help='L as in Table 2 (number of residual branches)')
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--plot', metavar='PNG')
    parser.add_argument('--json', action='store_true')
    parser.add_argument('--no-gradients', action='store_true',
                        help='only the idempotence check')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    # ResNet: L/3 blocks a stage; DILNet/DMRNet: L/6 two-branch blocks a stage
    if not args.no_gradients and (args.L < 6 or args.L % 6):
        parser.error('--L %d: must be a positive multiple of 6 so that ResNet, DILNet and DMRNet '
                     'of this L all exist' % args.L)
    if args.batch < 1:
        parser.error('--batch must be >= 1')

    from dmrnet.symbols import merge_and_run_matrix
    errors = idempotence()
    result = {'idempotence_max_error': {str(K): error for K, error in errors.items()}}
    if not args.json:
        print('M (K=2, d=2):\n%s' % merge_and_run_matrix(2, 2))
        for K, error in errors.items():
            print('K=%d: max |M^n - M| over n=2..10 = %.2e' % (K, error))
    if not args.no_gradients:
        grads, block_grads = {}, {}
        for family in FAMILIES:
            log.info('%s L=%d: forward/backward', family, args.L)
            grads[family] = gradient_norms(family, args.L, args.batch, args.seed)
            block_grads[family] = block_input_gradients(family, args.L, args.batch, args.seed)
        result['gradient_norms'] = grads
        result['block_input_gradient_norms'] = {
            family: norms for family, (norms, _) in block_grads.items()}
        result['branches_before_block'] = {
            family: before for family, (_, before) in block_grads.items()}
        result['L'] = args.L
        if not args.json:
            for family, norms in grads.items():
                reaching = block_grads[family][0]
                print('%-7s weight grad first/last branch %.3e / %.3e (ratio %.2f); '
                      'grad at first/last block input %.3e / %.3e (ratio %.2f)'
                      % (LABELS[family], norms[0], norms[-1], norms[0] / norms[-1],
                         reaching[0], reaching[-1], reaching[0] / reaching[-1]))
        if args.plot:
            plot(grads, args.plot, args.L, block_grads)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
