"""INT8 post-training quantization with MXNet's oneDNN tooling (CPU only in MXNet 1.9). Loaded
only by what quantizes (tools/quantize.py, the benchmark): the networks never import it."""
import mxnet as mx

# INT8 calibration: 'naive' (min/max of the layer outputs) kept the test error within noise of
# fp32 on the digits and calibrates in seconds; 'entropy' is offered too.
DEFAULT_CALIB_MODE = 'naive'
DEFAULT_NUM_CALIB = 512


def quantize(sym, arg_params, aux_params, calib_data, calib_mode=DEFAULT_CALIB_MODE,
             num_calib_examples=DEFAULT_NUM_CALIB, quantized_dtype='auto', exclude=None,
             ctx=None):
    """Fuse for oneDNN, quantize to INT8 and calibrate. Returns (qsym, qarg_params, aux_params).

    `exclude`: symbol names kept in fp32. By default nothing is excluded; the first convolution
    takes the raw image (signed), which quantized_dtype='auto' handles as int8.
    """
    from mxnet.contrib.quantization import quantize_model_mkldnn
    ctx = ctx or mx.cpu()
    if ctx.device_type != 'cpu':
        raise ValueError('INT8 quantization runs on CPU (oneDNN) only in MXNet 1.9; got %s' % ctx)
    # No logger: given any, even a silenced one, MXNet sets MXNET_QUANTIZATION_VERBOSE for the
    # rest of the process and its C++ graph passes print 50-75 lines a model on stderr.
    return quantize_model_mkldnn(sym, arg_params, aux_params, data_names=('data',),
                                 label_names=(), ctx=ctx, excluded_sym_names=exclude or [],
                                 calib_mode=calib_mode, calib_data=calib_data,
                                 num_calib_examples=num_calib_examples,
                                 quantized_dtype=quantized_dtype, quantize_mode='full',
                                 logger=None)
