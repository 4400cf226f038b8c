"""The networks of the paper as registered families and named presets.

L counts residual branches, as in Table 2: a ResNet has L residual blocks (L/3 a stage, depth
2L+2); a DILNet or DMRNet has L/2 two-branch blocks (L/6 a stage, depth L+2 counting one
branch). Widths are 16w, 32w, 64w with the first conv at 16w ("4x wider" DMRNet-Wide: w=4).
"""
from dmrnet.paper import FAMILIES, LABELS, TABLE2_L, TABLE5_L, table2_preset

from .network import Network
from .registry import register_model, register_preset

CIFAR_STRIDES = (1, 2, 2)
IMAGENET_WIDTHS = (256, 512, 1024, 2048)
IMAGENET_STRIDES = (1, 2, 2, 2)


def _per_stage(L, branches, family):
    step = 3 * branches
    if not isinstance(L, int) or L <= 0 or L % step:
        raise ValueError('%s: L=%r does not split evenly into 3 stages of %d-branch blocks; L must '
                         'be a positive multiple of %d (Table 2 uses L in %s)'
                         % (family, L, branches, step, ', '.join(map(str, TABLE2_L))))
    return L // step


def _check_width(width):
    if not isinstance(width, int) or width < 1:
        raise ValueError('width must be a positive integer multiplier of (16, 32, 64), got %r'
                         % (width,))


def _cifar_stages(blocks_per_stage, width):
    _check_width(width)
    return [(blocks_per_stage, 16 * width * 2 ** i, s) for i, s in enumerate(CIFAR_STRIDES)]


def _check_stages(stages, family):
    stages = tuple(stages)
    if len(stages) != 4 or any(not isinstance(n, int) or n < 1 for n in stages):
        raise ValueError('%s: stages must be 4 positive block counts, e.g. (3, 4, 23, 3); got %r'
                         % (family, stages))
    return [(n, w, s) for n, w, s in zip(stages, IMAGENET_WIDTHS, IMAGENET_STRIDES)]


@register_model
def resnet(L=54, width=1, classes=10):
    """ResNet of Table 1/2: L residual blocks of two 3x3 layers, depth 2L+2 (Figure 2a)."""
    return Network('residual', _cifar_stages(_per_stage(L, 1, 'resnet'), width),
                   stem_channels=16 * width, classes=classes, prefix='resnet_')


@register_model
def dilnet(L=54, width=1, branches=2, classes=10):
    """DILNet: inception-like blocks, Eq. (2), L/(3K) blocks a stage (Figure 2b)."""
    return Network('inception', _cifar_stages(_per_stage(L, branches, 'dilnet'), width),
                   stem_channels=16 * width, branches=branches, classes=classes, prefix='dilnet_')


@register_model
def dmrnet(L=54, width=1, branches=2, fused=False, share=True, classes=10):
    """DMRNet: merge-and-run blocks, Eq. (3), L/(3K) blocks a stage (Figure 2c); K=branches.
    share=False gives the "w/o sharing" merge-and-run column of Table 5."""
    return Network('merge_run', _cifar_stages(_per_stage(L, branches, 'dmrnet'), width),
                   stem_channels=16 * width, branches=branches, head='once', share=share,
                   fused=fused, classes=classes, prefix='dmrnet_')


@register_model
def identity(L=48, share=True, width=1, fused=False, classes=10):
    """Table 5's identity-mapping network: two ResNets of L/2 blocks side by side, either
    sharing the first conv and the classifier (their last blocks' outputs summed before the
    shared pooling and FC) or not sharing anything (their class scores averaged)."""
    return Network('identity', _cifar_stages(_per_stage(L, 2, 'identity'), width),
                   stem_channels=16 * width, branches=2, head='sum', share=share, fused=fused,
                   classes=classes, prefix='identity_')


@register_model
def pathnet(L=27, blocks=3, classes=10):
    """Section 4.3 / Figure 6: residual networks formed from one plain network of depth 2L+2
    (2L/3 3x3 layers a stage). blocks=3: one residual block a stage whose branch is the whole
    stage (2L/3 layers); blocks=6: two blocks a stage, branches of L/3 layers. Shortcuts are
    identities except the two 1x1 projections where the width grows ("counting two projection
    layers in the shortcut connections")."""
    if blocks not in (3, 6):
        raise ValueError('pathnet: blocks must be 3 or 6 (Section 4.3), got %r' % (blocks,))
    per_stage = blocks // 3
    if not isinstance(L, int) or L <= 0 or (2 * L) % (3 * per_stage):
        raise ValueError('pathnet: L=%r must be a positive multiple of 3 so that each of the %d '
                         'residual branches has 2L/%d layers' % (L, blocks, blocks))
    chain = 2 * L // (3 * per_stage)
    return Network('residual', _cifar_stages(per_stage, 1), branch=('chain', chain),
                   classes=classes, prefix='pathnet_')


@register_model
def resnet_imagenet(stages=(3, 4, 23, 3), classes=1000):
    """ResNet with bottleneck blocks for ImageNet; (3, 4, 23, 3) is ResNet-101 (Table 4)."""
    return Network('residual', _check_stages(stages, 'resnet_imagenet'), branch='bottleneck',
                   stem_kind='imagenet', stem_channels=64, classes=classes,
                   prefix='resnet_imagenet_')


@register_model
def dmrnet_imagenet(stages=(2, 2, 8, 2), branches=2, fused=False, classes=1000):
    """DMRNet with bottleneck branches for ImageNet; (2, 2, 8, 2) is DMRNet-44 (Table 4).
    The last block sums its streams before the final ReLU (authors' release)."""
    return Network('merge_run', _check_stages(stages, 'dmrnet_imagenet'), branch='bottleneck',
                   stem_kind='imagenet', stem_channels=64, branches=branches, head='sum',
                   fused=fused, classes=classes, prefix='dmrnet_imagenet_')


for _L in TABLE2_L:
    for _family in FAMILIES:
        register_preset(table2_preset(_family, _L), _family,
                        'Table 2 %s, L=%d' % (LABELS[_family], _L), L=_L)
register_preset('dmrnet_wide32', 'dmrnet', 'Table 3 DMRNet-Wide, depth 32', L=30, width=4)
register_preset('dmrnet_wide50', 'dmrnet', 'Table 3 DMRNet-Wide, depth 50', L=48, width=4)
for _L in TABLE5_L:
    register_preset('identity%d' % (_L + 2), 'identity', 'Table 5 identity, sharing', L=_L)
    register_preset('identity%d_noshare' % (_L + 2), 'identity', 'Table 5 identity, w/o sharing',
                    L=_L, share=False)
    register_preset('dmrnet%d_noshare' % (_L + 2), 'dmrnet', 'Table 5 merge-and-run, w/o sharing',
                    L=_L, share=False)
register_preset('resnet101_imagenet', 'resnet_imagenet', 'Table 4 ResNet-101', stages=(3, 4, 23, 3))
register_preset('dmrnet44_imagenet', 'dmrnet_imagenet', 'Table 4 DMRNet-44', stages=(2, 2, 8, 2))
