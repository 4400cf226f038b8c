"""Basic layers shared by every network: Conv-BN(-ReLU), projections and residual branches.

Layer details follow the authors' MXNet release (github.com/zlmzju/fusenet):
convolutions without bias; BatchNorm with learnable gamma, momentum 0.9 and eps 2e-5 (Gluon's
default eps is 1e-5); convolutions initialised Xavier-gaussian/"in"/magnitude 2 (He/MSRA, the
paper's "weights are initialized as in [6]"), the classifier Xavier-uniform/"in"/magnitude 1.

Every layer is created with its input channel count, so parameter shapes (and counts) are known
without a forward pass, and every container gets an explicit prefix, so exported parameter names
do not depend on how many models were built before in the same process.
"""
import mxnet as mx
from mxnet import autograd
from mxnet.gluon import nn

BN_MOMENTUM = 0.9
BN_EPS = 2e-5
CONV_INIT = mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)
FC_INIT = mx.init.Xavier(rnd_type='uniform', factor_type='in', magnitude=1)


def batch_norm(channels, prefix=None):
    return nn.BatchNorm(momentum=BN_MOMENTUM, epsilon=BN_EPS, in_channels=channels, prefix=prefix)


def conv_bn(in_channels, channels, kernel, stride=1, groups=1, relu=True, prefix=None):
    """Conv-BN(-ReLU), the paper's basic layer ("a Conv-BN-ReLU as a basic layer")."""
    seq = nn.HybridSequential(prefix=prefix)
    with seq.name_scope():
        seq.add(nn.Conv2D(channels, kernel, strides=stride, padding=kernel // 2, groups=groups,
                          use_bias=False, in_channels=in_channels, weight_initializer=CONV_INIT))
        seq.add(batch_norm(channels))
        if relu:
            seq.add(nn.Activation('relu'))
    return seq


def projection(in_channels, channels, stride, groups=1, prefix=None):
    """Shortcut where the width changes: 1x1 conv + BN, no ReLU (Table 1: "we use 1x1
    convolutions to replace identity mappings ... when the widths increase across stages")."""
    return conv_bn(in_channels, channels, 1, stride, groups=groups, relu=False, prefix=prefix)


def branch_layers(kind, channels, stride):
    """The layers of one residual branch as (out_channels, kernel, stride) triples.

    'basic'       : 3x3, 3x3 (CIFAR/SVHN nets, Table 1)
    'bottleneck'  : 1x1 (channels/4), 3x3 (channels/4, carries the stride), 1x1 (channels)
    ('chain', n)  : n 3x3 layers (the path-length study nets of Section 4.3)
    """
    if kind == 'basic':
        return [(channels, 3, stride), (channels, 3, 1)]
    if kind == 'bottleneck':
        return [(channels // 4, 1, 1), (channels // 4, 3, stride), (channels, 1, 1)]
    if isinstance(kind, tuple) and kind[0] == 'chain':
        return [(channels, 3, stride)] + [(channels, 3, 1)] * (kind[1] - 1)
    raise ValueError("unknown residual branch kind %r: use 'basic', 'bottleneck' or ('chain', n)"
                     % (kind,))


def residual_branch(kind, in_channels, channels, stride, groups=1, prefix=None):
    """A residual branch H(x): Conv-BN-ReLU layers, the last without ReLU ("+" comes between
    BN and ReLU). With groups=K it is K branches side by side as grouped convolutions over
    K*channels (the fused form of Figure 5)."""
    seq = nn.HybridSequential(prefix=prefix)
    layers = branch_layers(kind, channels, stride)
    with seq.name_scope():
        cin = in_channels
        for i, (cout, kernel, s) in enumerate(layers):
            seq.add(conv_bn(groups * cin, groups * cout, kernel, s, groups=groups,
                            relu=i < len(layers) - 1, prefix='layer%d_' % (i + 1)))
            cin = cout
    return seq


def classifier(in_channels, classes, prefix=None):
    """Global average pooling, then a fully connected layer with bias (Table 1's classifier)."""
    seq = nn.HybridSequential(prefix=prefix)
    with seq.name_scope():
        seq.add(GlobalAvgPool())
        seq.add(nn.Flatten())
        seq.add(nn.Dense(classes, in_units=in_channels, weight_initializer=FC_INIT))
    return seq


class GlobalAvgPool(nn.HybridBlock):
    """Global average pooling, (N, C, H, W) -> (N, C, 1, 1): the function of GlobalAvgPool2D.

    A graph traced for training (under autograd.record) computes it as a mean over the spatial
    axes, because of how MXNet 1.9.1's oneDNN path trains the Pooling operator: its backward
    runs oneDNN's reference pooling kernel and hands the gradient over in a layout (acdB16b)
    for which the last BatchNorms' backward also falls back to the reference kernel (oneDNN's
    verbose log shows it; the cost is in docs/PERFORMANCE.md). A graph traced for inference or
    export uses the Pooling operator, which deployment tools know (oneDNN's fused and INT8
    graphs; ONNX's GlobalAveragePool, where MXNet 1.9.1 would write the mean as a ReduceMean
    that onnx 1.14's checker rejects). A graph traced for training and exported later is rewritten by
    `deploy.pooling_for_deployment`. Both forms compute the same function."""

    def hybrid_forward(self, F, x):
        if autograd.is_recording():
            return F.mean(x, axis=(2, 3), keepdims=True)
        return F.Pooling(x, global_pool=True, kernel=(1, 1), pool_type='avg')


def relu(F, x):
    """The ReLU after each sum. As an `Activation` operator rather than `relu`, since MXNet's
    oneDNN graph pass fuses Activation (not relu) into the preceding convolution and sum."""
    return F.Activation(x, act_type='relu')
