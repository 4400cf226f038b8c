"""ONNX export of an exported model, with MXNet's own converter (mx.onnx). Loaded only by what
writes ONNX (tools/export.py --onnx): the networks never import it."""
import logging
import os

import mxnet as mx

from dmrnet.utils.files import atomic_path

from .files import export_file, finish_export


def export_onnx(prefix, epoch=0, input_shape=(1, 3, 32, 32), onnx_file=None):
    """Convert an exported model to ONNX with MXNet's own exporter (mx.onnx), its batch axis
    dynamic (any batch size runs; `input_shape`'s batch is only the example the converter
    traces). The opset is the installed onnx package's: onnx 1.14.x gives opset 19, which
    onnxruntime 1.16 runs."""
    import numpy as np
    onnx_file = onnx_file or '%s.onnx' % prefix
    finish_export(prefix)
    # mx.onnx logs its steps on the root logger, naming the temporary file as the result
    with atomic_path(onnx_file) as tmp, _quiet_root_log('mxnet' + os.sep + 'onnx'):
        mx.onnx.export_model(export_file(prefix, 'symbol'), export_file(prefix, 'params', epoch),
                             [tuple(input_shape)], np.float32, tmp, dynamic=True,
                             dynamic_input_shapes=[(None,) + tuple(input_shape[1:])])
        _only_data_as_input(tmp)
    return onnx_file


def _only_data_as_input(onnx_file):
    """mx.onnx lists every weight among the graph's inputs as well as its initializers, which
    ONNX Runtime warns about once per weight (about 140 lines a model) and which lets a caller
    override weights by feeding them; keep `data` as the one input."""
    import onnx
    model = onnx.load(onnx_file)
    weights = {initializer.name for initializer in model.graph.initializer}
    kept = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    onnx.save(model, onnx_file)


class _quiet_root_log:
    """Drop, while active, the root logger's records from source files under `part`."""

    def __init__(self, part):
        self.part = part

    def filter(self, record):
        return self.part not in record.pathname

    def __enter__(self):
        logging.getLogger().addFilter(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeFilter(self)
        return False
