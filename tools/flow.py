"""Information flow (Section 3.2, Eq. 4-5): the merge-and-run matrix is idempotent, and the
gradient that reaches each residual branch at initialisation.

    python tools/flow.py [--L 54] [--plot flow.png] [--json] [--batch 16] [--seed 0]

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

log = logging.getLogger('dmrnet.flow')

FAMILIES = ('resnet', 'dilnet', 'dmrnet')
LABELS = {'resnet': 'ResNet', 'dilnet': 'DILNet', 'dmrnet': 'DMRNet'}


def idempotence(Ks=(2, 3, 4), d=3, n_max=10):
    """{K: max over n <= n_max of max |M^n - M|}."""
    from dmrnet.symbols import merge_and_run_matrix
    errors = {}
    for K in Ks:
        M = merge_and_run_matrix(K, d)
        P = M.copy()
        worst = 0.0
        for _ in range(2, n_max + 1):
            P = P @ M
            worst = max(worst, float(np.abs(P - M).max()))
        errors[K] = worst
    return errors


def branch_first_convs(block):
    """The first Conv2D of each residual branch of a (non-fused) block, in branch order."""
    bodies = [block.body] if hasattr(block, 'body') else list(block.branches)
    return [body[0][0] for body in bodies]


def gradient_norms(family, L, batch=16, seed=0, classes=10):
    """Per residual branch (input to output), the gradient norm of its first conv weight after
    one backward pass at initialisation."""
    from dmrnet.symbols import get_model  # first: sets OMP_NUM_THREADS before mxnet loads
    import mxnet as mx
    from mxnet import autograd

    mx.random.seed(seed)
    np.random.seed(seed)
    net = get_model(family, L=L, classes=classes)
    net.initialize()
    x = mx.nd.array(np.random.randn(batch, 3, 32, 32).astype('float32'))
    y = mx.nd.array(np.random.randint(0, classes, size=batch).astype('float32'))
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        loss = loss_fn(net(x), y).mean()
    loss.backward()
    norms = []
    for block in net.blocks:
        for conv in branch_first_convs(block):
            norms.append(float(conv.weight.grad().norm().asscalar()))
    return norms


def forward_by_blocks(net, x, probes=None):
    """The forward of a (non-fused) dmrnet.symbols Network, one block at a time, as its
    hybrid_forward does it; probes[i] (one array per stream) are added to block i's inputs.
    Returns (logits, the shapes of every block's inputs)."""
    import mxnet as mx
    if not net.multi:
        xs = [net.stems[0](x)]
    elif len(net.stems) > 1:
        xs = [s(x) for s in net.stems]
    else:
        xs = [net.stems[0](x)] * net.K
    shapes = []
    for i, b in enumerate(net.blocks):
        if probes is not None:
            xs = [a + p for a, p in zip(xs, probes[i])]
        shapes.append([a.shape for a in xs])
        out = b(*xs)
        xs = list(out) if isinstance(out, (list, tuple)) else [out]
    if not net.multi or net.share:
        logits = net.heads[0](xs[0])
    else:
        logits = mx.nd.add_n(*[h(s) for h, s in zip(net.heads, xs)]) * (1.0 / net.K)
    return logits, shapes


def block_input_gradients(family, L, batch=16, seed=0, classes=10):
    """Per block (input to output), the L2 norm of dLoss/d(block input) at initialisation, all
    streams of a two-stream block taken together; and, per block, the number of residual
    branches before it (ResNet: t-1, two-branch blocks: 2(t-1)), so that nets of equal L share
    an x axis. This is the gradient that *reaches* a block, where the weight gradients of
    `gradient_norms` also depend on the block's own activations.

    Gluon keeps no gradients of intermediate arrays, so a zero 'probe' leaf is added to every
    block input (x + 0 changes nothing) and its gradient read after the backward pass."""
    from dmrnet.symbols import get_model
    import mxnet as mx
    from mxnet import autograd

    mx.random.seed(seed)
    np.random.seed(seed)
    net = get_model(family, L=L, classes=classes)
    net.initialize()
    if getattr(net, 'fused', False):
        raise ValueError('block_input_gradients needs the branch form (fused=False)')
    x = mx.nd.array(np.random.randn(batch, 3, 32, 32).astype('float32'))
    y = mx.nd.array(np.random.randint(0, classes, size=batch).astype('float32'))

    _, shapes = forward_by_blocks(net, x)   # shapes only (no autograd: BN stats untouched)
    probes = [[mx.nd.zeros(sh) for sh in block] for block in shapes]
    for block in probes:
        for p in block:
            p.attach_grad()
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        logits, _ = forward_by_blocks(net, x, probes)
        loss = loss_fn(logits, y).mean()
    loss.backward()
    norms = [float(np.sqrt(sum(float((p.grad ** 2).sum().asscalar()) for p in block)))
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
        for fam, (g, before) in block_grads.items():
            ax.semilogy(before, g, marker='.', label=LABELS.get(fam, fam))
        ax.set_xlabel('residual branches between the input and the block')
        ax.set_ylabel('|dLoss / d(block input)|')
        ax.set_title('Gradient reaching each block at initialisation, L = %d' % L)
        ax.legend()
    ax = axes[0][-1]
    for fam, g in grads.items():
        ax.semilogy(range(1, len(g) + 1), g, marker='.', label=LABELS.get(fam, fam))
    ax.set_xlabel('residual branch (1 = nearest the input)')
    ax.set_ylabel('|grad| of the first conv weight')
    ax.set_title('Weight gradient of each branch at initialisation, L = %d' % L)
    ax.legend()
    fig.tight_layout()
    from dmrnet.symbols.atomic import save_figure
    save_figure(fig, out)
    log.info('wrote %s', out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--L', type=int, default=54,
                   help='L as in Table 2 (number of residual branches)')
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--plot', metavar='PNG')
    p.add_argument('--json', action='store_true')
    p.add_argument('--no-gradients', action='store_true', help='only the idempotence check')
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    # ResNet: L/3 blocks a stage; DILNet/DMRNet: L/6 two-branch blocks a stage
    if not a.no_gradients and (a.L < 6 or a.L % 6):
        p.error('--L %d: must be a positive multiple of 6 so that ResNet, DILNet and DMRNet '
                'of this L all exist' % a.L)
    if a.batch < 1:
        p.error('--batch must be >= 1')

    from dmrnet.symbols import merge_and_run_matrix
    errors = idempotence()
    result = {'idempotence_max_error': {str(K): e for K, e in errors.items()}}
    if not a.json:
        print('M (K=2, d=2):\n%s' % merge_and_run_matrix(2, 2))
        for K, e in errors.items():
            print('K=%d: max |M^n - M| over n=2..10 = %.2e' % (K, e))
    if not a.no_gradients:
        grads, block_grads = {}, {}
        for fam in FAMILIES:
            log.info('%s L=%d: forward/backward', fam, a.L)
            grads[fam] = gradient_norms(fam, a.L, a.batch, a.seed)
            block_grads[fam] = block_input_gradients(fam, a.L, a.batch, a.seed)
        result['gradient_norms'] = grads
        result['block_input_gradient_norms'] = {f: g for f, (g, _) in block_grads.items()}
        result['branches_before_block'] = {f: b for f, (_, b) in block_grads.items()}
        result['L'] = a.L
        if not a.json:
            for fam, g in grads.items():
                bg = block_grads[fam][0]
                print('%-7s weight grad first/last branch %.3e / %.3e (ratio %.2f); '
                      'grad at first/last block input %.3e / %.3e (ratio %.2f)'
                      % (LABELS[fam], g[0], g[-1], g[0] / g[-1], bg[0], bg[-1], bg[0] / bg[-1]))
        if a.plot:
            plot(grads, a.plot, a.L, block_grads)
    if a.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
