"""dmrnet.data: packing the paper's datasets into MXNet RecordIO and reading them back.

    from dmrnet.data import dataset_info, get_train_iter, get_val_iter
    it = get_train_iter('cifar10', 'data/cifar10', batch_size=64, epoch=3, seed=0)
"""
import dmrnet.utils  # noqa: F401  (sets OMP threads before mxnet is imported)
from .common import DataError, DatasetMissingError  # noqa: F401,E402
from .iterators import (count_records, dataset_info, dataset_names,  # noqa: F401,E402
                        default_data_dir, external_pack, get_train_iter, get_val_iter,
                        record_files)
