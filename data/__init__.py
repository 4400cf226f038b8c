"""dmrnet.data: packing the paper's datasets into MXNet RecordIO and reading them back.

    from dmrnet.data import dataset_info, get_train_iter, get_val_iter
    it = get_train_iter('cifar10', 'data/cifar10', batch_size=64, epoch=3, seed=0)
"""
import dmrnet.utils  # noqa: F401  (sets OMP threads before mxnet is imported)
from .errors import DataError, DatasetMissingError  # noqa: F401,E402
from .records import count_records, external_pack  # noqa: F401,E402
from .registry import (dataset_info, dataset_names, default_data_dir,  # noqa: F401,E402
                       normalisation)
from .iterators import (IMAGENET_AUGMENTATIONS, get_train_iter, get_val_iter,  # noqa: F401,E402
                        record_files)
