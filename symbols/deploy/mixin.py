"""The networks' export: what the model classes (symbols/network.py, symbols/rir.py) take from
deployment. Kept to the file format and the pooling pass, so that building a network never
imports INT8 quantization or ONNX (tests/test_deploy.py holds it to that)."""
from .files import export_file
from .passes import pooling_for_deployment


class DeployableExport:
    """Mixin for the networks' top-level blocks: `net.export(path, epoch)`, Gluon's standard
    call (and what GluonCV's `export_block` makes), writes the deployment graph, the same as
    `export_model`: without it the file would hold the training-time spatial mean, which
    `mx.onnx.export_model` rejects and oneDNN's inference fusion does not know."""

    def export(self, path, epoch=0, remove_amp_cast=True):
        out = super().export(path, epoch=epoch, remove_amp_cast=remove_amp_cast)
        pooling_for_deployment(export_file(path, 'symbol'))
        return out
