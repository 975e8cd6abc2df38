"""Which device the launchers will run on: Ascend if its adapter imports, else GPU if TF sees one, else CPU."""
import importlib.util


def detect():
    if importlib.util.find_spec("npu_bridge") or importlib.util.find_spec("npu_device"):
        return "Ascend"
    import tensorflow as tf

    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
