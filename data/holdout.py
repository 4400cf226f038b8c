"""Held-out splits drawn from a labelled set (SVHN's validation, Fashion-MNIST's validation,
the digits' test set): stratified and reproducible from a seed."""
import numpy as np

from dmrnet.data.errors import DataError


def per_class_holdout(labels, per_class, seed, num_classes=None, source='labels'):
    """Boolean mask picking `per_class` random items of every class, reproducibly from `seed`.

    Drawn class by class in label order, so the choice for one class does not depend on how many
    items the other classes have.
    """
    labels = np.asarray(labels).ravel()
    num_classes = num_classes or int(labels.max()) + 1
    rng = np.random.RandomState(seed)
    mask = np.zeros(labels.shape[0], dtype=bool)
    for c in range(num_classes):
        where = np.flatnonzero(labels == c)
        if where.size < per_class:
            raise DataError(source, 'class %d has %d images, the split needs %d'
                            % (c, where.size, per_class))
        mask[rng.choice(where, per_class, replace=False)] = True
    return mask
