"""dmrnet.symbols: every network of the paper as Gluon HybridBlocks.

    from dmrnet.symbols import get_model, get_model_list
    net = get_model('dmrnet', L=54)        # or get_model('dmrnet56')
"""
import dmrnet.utils  # noqa: F401  (threads, before mxnet is imported)
from .registry import get_family_list, get_model, get_model_list, preset, register_model  # noqa: F401
from . import zoo, rir  # noqa: F401,E402  (fill the registry)
from .blocks import (ResidualBlock, InceptionLikeBlock, MergeAndRunBlock,  # noqa: F401
                     IdentityStreamsBlock, merge_and_run_matrix)
from .network import Network, count_params  # noqa: F401
