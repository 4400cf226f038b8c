"""Parameter counting as the paper and the authors' release count: trainable parameters only
(conv weights, BN gamma/beta, FC weight and bias), not BN running statistics."""
import numpy as np


def count_params(net):
    total = 0
    for p in net.collect_params().values():
        if p.grad_req == 'null':
            continue
        if any(d <= 0 for d in p.shape):
            raise ValueError('parameter %s has unknown shape %s: build the layer with its input '
                             'channels or run one forward pass first' % (p.name, p.shape))
        total += int(np.prod(p.shape))
    return total
