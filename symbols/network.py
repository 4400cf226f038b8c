"""One network class for every family of the paper: stem, stages of blocks, classifier.

A network is described by data: the block type, the stages as (blocks, width, stride), the
residual branch kind and the stem. ResNets stack ResidualBlocks (Figure 2a), DILNets stack
InceptionLikeBlocks (2b), DMRNets stack MergeAndRunBlocks (2c); the Table 5 ablation stacks
IdentityStreamsBlocks. Multi-stream networks start with the stem's output as every stream
("The first block takes the first conv's output as both streams").
"""
import numpy as np
from mxnet.gluon import HybridBlock, nn

from .deploy.mixin import DeployableExport
from .blocks import IdentityStreamsBlock, InceptionLikeBlock, MergeAndRunBlock, ResidualBlock
from .layers import classifier, conv_bn

BLOCKS = {
    'residual': ResidualBlock,
    'inception': InceptionLikeBlock,
    'merge_run': MergeAndRunBlock,
    'identity': IdentityStreamsBlock,
}
MULTI_STREAM = ('merge_run', 'identity')


def stem(kind, channels, prefix):
    """'cifar': conv(3x3, 16w) + BN + ReLU (Table 1, conv0).
    'imagenet': conv(7x7/2, 64) + BN + ReLU + 3x3/2 max-pool without padding (authors' release)."""
    if kind == 'cifar':
        return conv_bn(3, channels, 3, prefix=prefix)
    if kind == 'imagenet':
        seq = conv_bn(3, channels, 7, stride=2, prefix=prefix)
        with seq.name_scope():
            seq.add(nn.MaxPool2D(pool_size=3, strides=2, padding=0))
        return seq
    raise ValueError("unknown stem %r: use 'cifar' or 'imagenet'" % (kind,))


class Network(DeployableExport, HybridBlock):
    """Stem -> stages -> global average pool -> FC.

    Parameters
    ----------
    block : 'residual' | 'inception' | 'merge_run' | 'identity'
    stages : list of (num_blocks, width, stride)
    branch : residual branch kind, see `layers.branch_layers`
    stem_kind, stem_channels : see `stem`
    branches : K, the number of parallel residual branches of a block (1 for ResNets)
    head : how the last multi-stream block feeds the classifier ('once' or 'sum', see
        MergeAndRunBlock); ignored for single-stream networks
    share : multi-stream networks only. True: one stem feeds every stream and one classifier
        reads the last block (the paper's DMRNets). False: every stream has its own stem and
        classifier and the K class scores are averaged (Table 5, "w/o sharing").
    fused : merge-and-run / identity blocks as grouped convolutions (Figure 5)
    """

    def __init__(self, block, stages, branch='basic', stem_kind='cifar', stem_channels=16,
                 branches=1, head='once', share=True, fused=False, classes=10, prefix=None):
        super().__init__(prefix=prefix)
        if block not in BLOCKS:
            raise ValueError('unknown block %r: use one of %s' % (block, sorted(BLOCKS)))
        self.multi = block in MULTI_STREAM
        self.K = branches if self.multi else 1
        self.share, self.fused = share, fused and self.multi
        self.config = dict(block=block, stages=[tuple(s) for s in stages], branch=branch,
                           stem_kind=stem_kind, stem_channels=stem_channels, branches=branches,
                           head=head, share=share, fused=self.fused, classes=classes)
        with self.name_scope():
            n_stems = 1 if share or not self.multi else self.K
            self.stems = [self._child(stem(stem_kind, stem_channels, 'stem%s_' % self._tag(i, n_stems)))
                          for i in range(n_stems)]
            self.blocks = []
            cin = stem_channels
            for s, (count, width, stride) in enumerate(stages):
                for b in range(count):
                    last = s == len(stages) - 1 and b == count - 1
                    kwargs = dict(branch=branch, prefix='stage%d_block%d_' % (s + 1, b + 1))
                    if block == 'inception':
                        kwargs['branches'] = branches
                    elif self.multi:
                        kwargs.update(branches=branches, fused=self.fused,
                                      head=head if (last and share) else None)
                    self.blocks.append(self._child(
                        BLOCKS[block](cin, width, stride if b == 0 else 1, **kwargs)))
                    cin = width
            n_heads = 1 if share or not self.multi else self.K
            self.heads = [self._child(classifier(cin, classes, 'output%s_' % self._tag(i, n_heads)))
                          for i in range(n_heads)]
        self.out_channels = cin

    @staticmethod
    def _tag(i, n):
        return '' if n == 1 else str(i + 1)

    def _child(self, block):
        self.register_child(block)
        return block

    def hybrid_forward(self, F, x):
        if not self.multi:
            x = self.stems[0](x)
            for b in self.blocks:
                x = b(x)
            return self.heads[0](x)
        xs = [s(x) for s in self.stems] if len(self.stems) > 1 else [self.stems[0](x)] * self.K
        if self.fused:
            xs = [F.concat(*xs, dim=1)]
        for b in self.blocks:
            xs = b(*xs)
        if self.share:
            return self.heads[0](xs[0])
        if self.fused:
            xs = F.split(xs[0], num_outputs=self.K, axis=1)
        return F.add_n(*[h(s) for h, s in zip(self.heads, xs)]) * (1.0 / self.K)


def count_params(net):
    """Parameters as the paper and the authors' release count them: trainable ones only (conv
    weights, BN gamma/beta, FC weight and bias), not BN running statistics."""
    total = 0
    for p in net.collect_params().values():
        if p.grad_req == 'null':
            continue
        if any(d <= 0 for d in p.shape):
            raise ValueError('parameter %s has unknown shape %s: build the layer with its input '
                             'channels or run one forward pass first' % (p.name, p.shape))
        total += int(np.prod(p.shape))
    return total
