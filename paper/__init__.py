"""dmrnet.paper: what the paper fixes that several parts of dmrnet name — the depths of its
tables and figures, its families and their labels, the Table 3 networks, the data sets of its
tables, and what the authors' release fixes beside it (exact parameter counts, BatchNorm's
images per device). Plain constants: no MXNet, no model zoo, so that reports and analyses can
import them cheaply. The paper's printed numbers are in numbers.json, read by
dmrnet.paper.reference.

L counts residual branches, as in Table 2: a ResNet has L residual blocks (depth 2L+2); a DILNet
or DMRNet has L/2 two-branch blocks (depth L+2 counting one branch).
"""

# Table 2's depths L (CIFAR-10/100, SVHN) and Figure 6's (average path lengths L+3).
TABLE2_L = (12, 18, 24, 30, 36, 48, 54, 96)
FIGURE6_L = (6, 12, 18, 24, 30, 36, 48, 54)
# Table 5's ablation depths (identity mappings against merge-and-run, with and without sharing).
TABLE5_L = (48, 96)
# The depth of Figure 7's training curves (ResNet-110 against DMRNet-56).
FIGURE7_L = 54

# The data sets of Tables 2 and 3, and the part of them Table 5 reports.
TABLE2_DATASETS = ('cifar10', 'cifar100', 'svhn')
TABLE5_DATASETS = ('cifar10', 'cifar100')

# The three families Table 2 and Figure 7 compare, and how figures and tables name them.
FAMILIES = ('resnet', 'dilnet', 'dmrnet')
LABELS = {'resnet': 'ResNet', 'dilnet': 'DILNet', 'dmrnet': 'DMRNet', 'identity': 'Identity',
          'dmrnet_wide': 'DMRNet-Wide', 'rir': 'RiR', 'pathnet': 'PathNet',
          'resnet_imagenet': 'ResNet', 'dmrnet_imagenet': 'DMRNet'}

# Table 3: (family as the paper prints it, depth) -> our preset.
TABLE3_MODELS = {('dmrnet', 56): 'dmrnet56', ('dmrnet_wide', 32): 'dmrnet_wide32',
                 ('dmrnet_wide', 50): 'dmrnet_wide50', ('resnet', 110): 'resnet110',
                 ('rir', 18): 'rir18'}


# Exact trainable-parameter counts of the authors' networks (10 classes), from building the
# MXNet symbols of their release: what our networks must equal (the paper prints rounded ones).
AUTHORS_TABLE2 = {  # L: counts in the order of FAMILIES (ResNet, DILNet, DMRNet)
    12: (369690, 346650, 349402), 18: (564122, 541082, 543834), 24: (758554, 735514, 738266),
    30: (952986, 929946, 932698), 36: (1147418, 1124378, 1127130),
    48: (1536282, 1513242, 1515994), 54: (1730714, 1707674, 1710426),
    96: (3091738, 3068698, 3071450),
}
AUTHORS_OTHER = {'dmrnet_wide32': 14851402, 'dmrnet_wide50': 24151882,
                 'resnet101_imagenet': 44549160, 'dmrnet44_imagenet': 43338024}

# The authors trained CIFAR and SVHN on 2 GPUs x 32 images, so BatchNorm normalised over 32.
AUTHORS_IMAGES_PER_DEVICE = 32


def table2_depth(family, L):
    """The depth in a Table 2 network's name: 2L+2 for ResNets, L+2 otherwise."""
    return 2 * L + 2 if family == 'resnet' else L + 2


def table2_preset(family, L):
    """The preset name of a Table 2 network, e.g. ('dmrnet', 12) -> 'dmrnet14'."""
    return '%s%d' % (family, table2_depth(family, L))


def authors_counts():
    """Preset name -> the authors' exact parameter count."""
    counts = dict(AUTHORS_OTHER)
    for L, family_counts in AUTHORS_TABLE2.items():
        for family, count in zip(FAMILIES, family_counts):
            counts[table2_preset(family, L)] = count
    return counts
