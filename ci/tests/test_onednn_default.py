"""Every entry script that runs TensorFlow turns oneDNN on before TensorFlow loads (zoo_precision.before_tensorflow),
unless the user chose otherwise: on an AVX2 CPU, where TensorFlow leaves it off, the models trained 2-3x
faster with it; and it keeps Keras from importing matplotlib as TensorFlow loads. Checked by importing each
script with a `tensorflow` that refuses to load."""
import glob
import os
import subprocess
import sys

import pytest

from ci.tests.conftest import REPO

MODELS = ("LeNet_ID0127_for_TensorFlow", "MNIST_ID2481_for_TensorFlow2.X", "AlexNet_ID0259_for_TensorFlow",
          "MobileNetV1_for_TensorFlow", "cosine_metric_learning")
WITHOUT_TENSORFLOW = {"AlexNet_ID0259_for_TensorFlow/data_preprocessor.py",  # PIL only
                      "LeNet_ID0127_for_TensorFlow/LeNet_preprocess.py"}  # numpy only


def entry_scripts():
    found = []
    for model in MODELS:
        for path in sorted(glob.glob(os.path.join(REPO, model, "*.py"))):
            with open(path) as handle:
                if 'if __name__ == "__main__"' in handle.read():
                    found.append(os.path.relpath(path, REPO))
    return found


def test_the_entry_scripts_are_the_known_ones():
    scripts = entry_scripts()
    assert len(scripts) == 14 and WITHOUT_TENSORFLOW <= set(scripts), scripts


@pytest.mark.parametrize("script", [s for s in entry_scripts() if s not in WITHOUT_TENSORFLOW])
def test_importing_an_entry_script_sets_onednn_without_loading_tensorflow(script, tmp_path):
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("raise ImportError('tensorflow loaded too early')\n")
    folder, name = os.path.split(script)
    code = (f"import os, sys, {name[:-3]}; "
            "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), sys.modules.get('matplotlib', 'absent'))")
    base = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    for chosen, expected in ((None, "1"), ("0", "0")):
        env = dict(base, PYTHONPATH=str(tmp_path), **({"TF_ENABLE_ONEDNN_OPTS": chosen} if chosen else {}))
        proc = subprocess.run([sys.executable, "-c", code], cwd=os.path.join(REPO, folder), env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stdout.split() == [expected, "None"], proc.stderr[-2000:]
