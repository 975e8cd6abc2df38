"""Every entry script parses its flags before it loads TensorFlow: with a `tensorflow` that cannot be imported,
--help still prints the usage and a bad flag is still one line."""
import pytest

from conftest import run_script

pytestmark = pytest.mark.slow

ENTRY_SCRIPTS = ["train.py", "eval_image_classifier_mobilenet.py", "export_inference_graph.py"]


@pytest.fixture(scope="module")
def no_tensorflow(tmp_path_factory):
    folder = tmp_path_factory.mktemp("no_tensorflow")
    (folder / "tensorflow").mkdir()
    (folder / "tensorflow" / "__init__.py").write_text('raise ImportError("TensorFlow loaded before the flags")\n')
    return str(folder)


@pytest.mark.parametrize("script", ENTRY_SCRIPTS)
def test_help_and_a_bad_flag_answer_without_tensorflow(script, no_tensorflow):
    helped = run_script(script, "--help", timeout=60, PYTHONPATH=no_tensorflow)
    assert helped.returncode == 0 and helped.stdout.startswith(f"usage: {script}"), helped.stderr[-2000:]
    assert "--model_name" in helped.stdout
    bad = run_script(script, "--model_name=resnet", timeout=60, PYTHONPATH=no_tensorflow)
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.splitlines() == [bad.stderr.strip()] and bad.stderr.startswith(f"[Error] {script}: "), bad.stderr
    assert "invalid choice: 'resnet'" in bad.stderr
