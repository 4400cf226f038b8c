"""dmrnet.paper: what the paper fixes that several parts of dmrnet name — the depths of its
tables and figures, its families and their labels, the Table 3 networks. Plain constants: no
MXNet, no model zoo, so that reports and analyses can import them cheaply.

L counts residual branches, as in Table 2: a ResNet has L residual blocks (depth 2L+2); a DILNet
or DMRNet has L/2 two-branch blocks (depth L+2 counting one branch).
"""

# Table 2's depths L (CIFAR-10/100, SVHN) and Figure 6's (average path lengths L+3).
TABLE2_L = (12, 18, 24, 30, 36, 48, 54, 96)
FIGURE6_L = (6, 12, 18, 24, 30, 36, 48, 54)
# Table 5's ablation depths (identity mappings against merge-and-run, with and without sharing).
TABLE5_L = (48, 96)

# The three families Table 2 and Figure 7 compare, and how figures and tables name them.
FAMILIES = ('resnet', 'dilnet', 'dmrnet')
LABELS = {'resnet': 'ResNet', 'dilnet': 'DILNet', 'dmrnet': 'DMRNet', 'identity': 'Identity',
          'dmrnet_wide': 'DMRNet-Wide', 'rir': 'RiR', 'pathnet': 'PathNet',
          'resnet_imagenet': 'ResNet', 'dmrnet_imagenet': 'DMRNet'}

# Table 3: (family as the paper prints it, depth) -> our preset.
TABLE3_MODELS = {('dmrnet', 56): 'dmrnet56', ('dmrnet_wide', 32): 'dmrnet_wide32',
                 ('dmrnet_wide', 50): 'dmrnet_wide50', ('resnet', 110): 'resnet110',
                 ('rir', 18): 'rir18'}


def table2_depth(family, L):
    """The depth in a Table 2 network's name: 2L+2 for ResNets, L+2 otherwise."""
    return 2 * L + 2 if family == 'resnet' else L + 2


def table2_preset(family, L):
    """The preset name of a Table 2 network, e.g. ('dmrnet', 12) -> 'dmrnet14'."""
    return '%s%d' % (family, table2_depth(family, L))
