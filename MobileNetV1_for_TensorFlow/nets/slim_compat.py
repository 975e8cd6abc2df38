"""tf-slim 1.1.0 on TensorFlow 2.x: put back the names it imports from tensorflow.python.* before importing it.

TensorFlow 2.x moved these out of the modules tf_slim reads them from (`ops.Tensor`, `control_flow_ops.cond`,
...), so every layer that goes through `tf_slim.layers.utils` - batch_norm included - fails with
"module ... has no attribute". Only missing attributes are added; nothing that exists is replaced.
Import `slim` from here, never `tf_slim` directly.
"""
import tensorflow as tf
from tensorflow.python.framework import ops
from tensorflow.python.ops import array_ops, control_flow_ops, variable_scope

_MISSING = (
    (ops, "Tensor", tf.Tensor),
    (ops, "IndexedSlices", tf.IndexedSlices),
    (control_flow_ops, "cond", tf.compat.v1.cond),
    (control_flow_ops, "case", tf.compat.v1.case),
    (control_flow_ops, "while_loop", tf.compat.v1.while_loop),
    (control_flow_ops, "Assert", tf.debugging.Assert),
    (array_ops, "stack", tf.stack),
    (array_ops, "unstack", tf.unstack),
    (variable_scope, "variable", tf.compat.v1.Variable),
)
for _module, _name, _value in _MISSING:
    if not hasattr(_module, _name):
        setattr(_module, _name, _value)

import tf_slim as slim  # noqa: E402  (after the names are restored)

# Passing the UPDATE_OPS key inside a list keeps slim.batch_norm on its fused tf.nn path: the default
# (the bare key) routes to a Keras-2 layer that does not exist without tf-keras. The moving-average
# update ops still land in UPDATE_OPS, so training code runs them as usual. See README "Batch norm".
BATCH_NORM_UPDATES = [tf.compat.v1.GraphKeys.UPDATE_OPS]

__all__ = ["slim", "BATCH_NORM_UPDATES"]
