"""ResNet in ResNet (RiR; Targ, Almeida and Lyman, 2016; reference [32]), the Table 3 baseline.

Both streams travel as one 2c-channel tensor [r; t] (residual stream first). A generalized
residual layer is one 3x3 convolution 2c -> 2c' over that tensor, which holds the four kernels
W_rr, W_tr (top rows) and W_rt, W_tt (bottom rows); the residual stream's shortcut is added to
the first c' output channels only; then BN and ReLU:

    r' = ReLU(BN(W_rr*r + W_tr*t + shortcut(r)))
    t' = ReLU(BN(W_rt*r + W_tt*t))

Choices the RiR paper leaves open (docs/MODELS.md):
- where the width changes, shortcuts are 1x1 conv + BN projections (as in the DMRNet authors'
  code), both the inner shortcut of the strided generalized layer and the outer RiR-block one;
- the outer RiR-block shortcut is added to the residual stream after the second generalized
  layer's ReLU (the facts file: "added to the residual stream after the second generalized block");
- the head is the merge-and-run paper's: global average pool over both streams, then FC.
"""
from mxnet.gluon import HybridBlock, nn

from .deploy import DeployableExport
from .layers import CONV_INIT, batch_norm, classifier, conv_bn, projection, relu
from .registry import register_model, register_preset


class GeneralizedResidualLayer(HybridBlock):
    """One generalized residual layer ("ResNet Init") on the stacked tensor [r; t]."""

    def __init__(self, in_channels, channels, stride=1, prefix=None):
        super().__init__(prefix=prefix)
        self.c_in, self.c = in_channels, channels
        with self.name_scope():
            self.conv = nn.Conv2D(2 * channels, 3, strides=stride, padding=1, use_bias=False,
                                  in_channels=2 * in_channels, weight_initializer=CONV_INIT)
            self.bn = batch_norm(2 * channels)
            self.proj = (projection(in_channels, channels, stride, prefix='proj_')
                         if in_channels != channels or stride != 1 else None)

    def hybrid_forward(self, F, x):
        y = self.conv(x)
        r = F.slice_axis(x, axis=1, begin=0, end=self.c_in)
        shortcut = self.proj(r) if self.proj is not None else r
        y_r = F.slice_axis(y, axis=1, begin=0, end=self.c) + shortcut
        y_t = F.slice_axis(y, axis=1, begin=self.c, end=2 * self.c)
        return relu(F, self.bn(F.concat(y_r, y_t, dim=1)))


class RiRBlock(HybridBlock):
    """A two-layer ResNet block whose layers are generalized residual layers; the outer identity
    (or projection) shortcut joins the residual stream after the second layer."""

    def __init__(self, in_channels, channels, stride=1, prefix=None):
        super().__init__(prefix=prefix)
        self.c_in, self.c = in_channels, channels
        with self.name_scope():
            self.layer1 = GeneralizedResidualLayer(in_channels, channels, stride, prefix='layer1_')
            self.layer2 = GeneralizedResidualLayer(channels, channels, 1, prefix='layer2_')
            self.proj = (projection(in_channels, channels, stride, prefix='proj_')
                         if in_channels != channels or stride != 1 else None)

    def hybrid_forward(self, F, x):
        y = self.layer2(self.layer1(x))
        r = F.slice_axis(x, axis=1, begin=0, end=self.c_in)
        shortcut = self.proj(r) if self.proj is not None else r
        y_r = F.slice_axis(y, axis=1, begin=0, end=self.c) + shortcut
        return F.concat(y_r, F.slice_axis(y, axis=1, begin=self.c, end=2 * self.c), dim=1)


class RiR(DeployableExport, HybridBlock):
    """Stem conv into both streams, RiR blocks in stages, pool + FC over both streams."""

    def __init__(self, stages=((2, 48, 1), (3, 96, 2), (3, 192, 2)), stem_channels=48,
                 classes=10, prefix=None):
        super().__init__(prefix=prefix)
        self.config = dict(stages=[tuple(s) for s in stages], stem_channels=stem_channels,
                           classes=classes)
        with self.name_scope():
            self.stem = conv_bn(3, 2 * stem_channels, 3, prefix='stem_')
            self.blocks = []
            cin = stem_channels
            for s, (count, width, stride) in enumerate(stages):
                for b in range(count):
                    blk = RiRBlock(cin, width, stride if b == 0 else 1,
                                   prefix='stage%d_block%d_' % (s + 1, b + 1))
                    self.register_child(blk)
                    self.blocks.append(blk)
                    cin = width
            self.output = classifier(2 * cin, classes, prefix='output_')

    def hybrid_forward(self, F, x):
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.output(x)


@register_model
def rir(stages=((2, 48, 1), (3, 96, 2), (3, 192, 2)), stem_channels=48, classes=10):
    """The "18-layer + wide" RiR of Table 3: 8 RiR blocks (16 generalized layers), 48/96/192
    channels per stream, the width doubling at blocks 3 and 6."""
    return RiR(stages, stem_channels, classes, prefix='rir_')


register_preset('rir18', 'rir', 'Table 3 RiR (Targ et al.), 18 layers, wide')
