"""The CIFAR DMRNet of the paper in PyTorch, layer for layer the same as `dmrnet.symbols`'
`get_model('dmrnet', L=..)` (branch form), for a fair framework comparison in the benchmark
(torch_jobs.py).

    from dmrnet.tools.bench.torch_dmrnet import DMRNet, copy_from_gluon
    net = DMRNet(L=54, classes=10)          # 1,710,426 parameters, like dmrnet56
    copy_from_gluon(gluon_net, net)         # same weights -> same outputs (eval mode)

Layers (authors' release): Conv-BN-ReLU, convolutions without bias, BatchNorm eps 2e-5 and
MXNet momentum 0.9 (PyTorch's `momentum` is the weight of the *new* statistic: 0.1);
per-stream 1x1 conv + BN projections where the width changes; block m = (x1 + x2) / 2,
y_k = ReLU(m + H_k(x_k)); the first block takes the stem output as both streams; the last
block gives ReLU(m + H_1(x_1) + H_2(x_2)); global average pooling and FC.

The module tree mirrors Gluon's structural parameter names (`layers.<i>.` + the Gluon name,
`gamma`/`beta` -> `weight`/`bias`), so copying weights is a renaming. PyTorch is an optional
dependency (requirements-bench.txt, installed into .venv/bench-site: put that folder on
PYTHONPATH to import it outside the benchmark's job processes, and import GluonCV there through
frameworks.import_gluoncv); importing this module without it raises ImportError.
"""
import argparse
import logging

import torch
from torch import nn

BN_EPS = 2e-5
BN_MOMENTUM = 0.1  # = 1 - MXNet's 0.9


def conv_bn(cin, cout, kernel, stride=1, relu=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
              nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def residual_branch(cin, cout, stride):
    return nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, 1, relu=False))


class MergeAndRun(nn.Module):
    def __init__(self, cin, cout, stride, branches=2, last=False):
        super().__init__()
        self.K, self.last = branches, last
        for k in range(branches):
            self.add_module('branch%d' % (k + 1), residual_branch(cin, cout, stride))
        self.project = cin != cout or stride != 1
        if self.project:
            for k in range(branches):
                self.add_module('proj%d' % (k + 1), conv_bn(cin, cout, 1, stride, relu=False))

    def forward(self, xs):
        hs = [getattr(self, 'branch%d' % (k + 1))(x) for k, x in enumerate(xs)]
        if self.project:
            xs = [getattr(self, 'proj%d' % (k + 1))(x) for k, x in enumerate(xs)]
        m = xs[0]
        for x in xs[1:]:
            m = m + x
        m = m * (1.0 / self.K)
        if self.last:
            out = m
            for h in hs:
                out = out + h
            return [torch.relu(out)]
        return [torch.relu(m + h) for h in hs]


class DMRNet(nn.Module):
    """DMRNet for 32x32 inputs; L as in Table 2 of the paper (a multiple of 6)."""

    def __init__(self, L=54, width=1, branches=2, classes=10):
        super().__init__()
        if L % 6:
            raise ValueError('L must be a multiple of 6, got %d' % L)
        self.K = branches
        n = L // 6
        layers = [conv_bn(3, 16 * width, 3)]
        cin = 16 * width
        for s, stride in enumerate((1, 2, 2)):
            cout = 16 * width * 2 ** s
            for b in range(n):
                layers.append(MergeAndRun(cin, cout, stride if b == 0 else 1, branches,
                                          last=(s == 2 and b == n - 1)))
                cin = cout
        layers.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        xs = [self.layers[0](x)] * self.K
        for block in self.layers[1:-1]:
            xs = block(xs)
        return self.layers[-1](xs[0])


def count_params(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def torch_name(gluon_name):
    """Gluon structural parameter name -> this module's state_dict key."""
    head, _, last = gluon_name.rpartition('.')
    last = {'gamma': 'weight', 'beta': 'bias'}.get(last, last)
    return 'layers.%s.%s' % (head, last)


def copy_from_gluon(gluon_net, torch_net):
    """Copy every parameter and BN running statistic of a branch-form Gluon DMRNet."""
    state = torch_net.state_dict()
    src = gluon_net._collect_params_with_prefix()
    new = {}
    for name, param in src.items():
        key = torch_name(name)
        if key not in state:
            raise KeyError('no PyTorch parameter for Gluon parameter %s (%s)' % (name, key))
        value = torch.from_numpy(param.data().asnumpy())
        if tuple(value.shape) != tuple(state[key].shape):
            raise ValueError('%s: shape %s vs %s'
                             % (name, tuple(value.shape), tuple(state[key].shape)))
        new[key] = value
    missing = [k for k in state if k not in new and not k.endswith('num_batches_tracked')]
    if missing:
        raise KeyError('PyTorch parameters without a Gluon source: %s' % missing[:5])
    torch_net.load_state_dict(new, strict=False)
    return torch_net


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split('\n')[0])
    p.add_argument('--L', type=int, default=54)
    p.add_argument('--classes', type=int, default=10)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    net = DMRNet(L=args.L, classes=args.classes)
    logging.info('PyTorch DMRNet L=%d: %d parameters', args.L, count_params(net))
    return net


if __name__ == '__main__':
    main()
