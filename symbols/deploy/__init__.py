"""From a trained Gluon network to deployable files, and the graph passes that make them fast.

    files    the exported-file format: file names, the meta file (how to feed the model:
             read_export_meta, recorded_stats, ...), a model's files written and verified as
             one set (ExportSet, finish_export, verify_export)
    write    export_model, save_symbol_model, export_bfloat16: networks and graphs to files
    load     import_model, load_checkpoint, to_block, fp32_block: files to runnable blocks
    passes   inference graph passes: Pooling for the training-time mean, raw-pixel input,
             the oneDNN graph (fold_merge_scales, rewrite_for_onednn, optimize_exported),
             bfloat16
    mixin    DeployableExport, what the network classes take from here
    int8     quantize (MXNet's oneDNN INT8 tooling), DEFAULT_CALIB_MODE, DEFAULT_NUM_CALIB
    onnx     export_onnx

Every name is importable from this package. Those of int8 and onnx are loaded on first use, so
that importing the networks (which import the mixin, and so this package) loads neither.
"""
import importlib

from .files import (ExportError, ExportSet, export_file, export_meta, exported_epochs,  # noqa: F401,E501
                    finish_export, input_description, input_shape_for, meta_path, pending_path,
                    read_export_meta, recorded_input_shape, recorded_stats, verify_export)
from .load import fp32_block, import_model, load_checkpoint, to_block  # noqa: F401
from .mixin import DeployableExport  # noqa: F401
from .passes import (Normalize, NotFoldable, bfloat16_graph, fold_merge_scales,  # noqa: F401
                     optimize_exported, pooling_for_deployment, rewrite_for_onednn)
from .write import export_bfloat16, export_model, save_symbol_model  # noqa: F401

_ON_FIRST_USE = {'quantize': 'int8', 'DEFAULT_CALIB_MODE': 'int8', 'DEFAULT_NUM_CALIB': 'int8',
                 'export_onnx': 'onnx'}


def __getattr__(name):
    if name in _ON_FIRST_USE:
        return getattr(importlib.import_module('.' + _ON_FIRST_USE[name], __name__), name)
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
