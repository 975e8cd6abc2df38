"""The two ways real clusters start the 8p launchers: Slurm (test/slurm_8p.sh derives --worker_hosts and
--task_index from the job's environment) and a Kubeflow TFJob (the operator sets TF_CONFIG in each pod, which
the launcher reads). Run on the toy model of test_launcher_common, whose workers log their TF_CONFIG."""
import json
import os
import re
import shutil

import pytest

from ci.tests.conftest import REPO
from ci.tests.test_launcher_common import CANONICAL, launcher, run, toy  # noqa: F401 (toy is a fixture)

MODELS_8P = ["MNIST_ID2481_for_TensorFlow2.X", "AlexNet_ID0259_for_TensorFlow", "MobileNetV1_for_TensorFlow"]

# Runs its command once per node, as srun --ntasks-per-node=1 would, each with its own SLURM_PROCID.
FAKE_SRUN = """#!/bin/bash
while [[ $1 == --* ]]; do shift; done
for ((i = 0; i < FAKE_NODES; i++)); do SLURM_PROCID=$i "$@" || exit $?; done
"""


def logged_tf_config(model, rank):
    log = (model / "test" / "output" / str(rank) / f"train_{rank}.log").read_text()
    return json.loads(re.search(r"tf_config (\{.*\})", log).group(1))


@pytest.fixture
def slurm(toy, tmp_path):  # noqa: F811 (pytest fixture argument)
    shutil.copy(os.path.join(CANONICAL, "slurm_8p.sh"), toy / "test" / "slurm_8p.sh")
    launcher(toy, name="train_full_8p.sh", lib="workers_lib.sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(FAKE_SRUN)
    (bin_dir / "srun").chmod(0o755)
    return toy, bin_dir


@pytest.mark.parametrize("nodelist, hosts", [
    ("node[07-08],login3", ["node07", "node08", "login3"]),
    ("gpu[9-10]", ["gpu9", "gpu10"]),
])
def test_slurm_task_i_gets_every_node_and_index_i(slurm, tmp_path, nodelist, hosts):
    model, bin_dir = slurm
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.path.dirname(shutil.which('python3'))}{os.pathsep}/usr/bin:/bin",
           "SLURM_JOB_NODELIST": nodelist, "SLURM_JOB_ID": "77", "FAKE_NODES": str(len(hosts)),
           "WORKER_PORT": "2345", "WORK_SECONDS": "0"}
    proc = run(model, "test/train_full_8p.sh", f"--data_path={tmp_path / 'data'}", name="slurm_8p.sh", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"slurm_8p.sh: job 77: --worker_hosts={','.join(h + ':2345' for h in hosts)}" in proc.stdout
    for rank in range(len(hosts)):
        assert logged_tf_config(model, rank) == {
            "cluster": {"worker": [f"{h}:2345" for h in hosts]}, "task": {"type": "worker", "index": rank}}


def test_slurm_without_a_launcher_or_outside_a_job_is_one_line(slurm, tmp_path):
    model, _ = slurm
    proc = run(model, "test/nothing.sh", name="slurm_8p.sh")
    assert proc.returncode == 1 and proc.stdout.startswith("[Error] slurm_8p.sh: the first argument must be")
    proc = run(model, "test/train_full_8p.sh", name="slurm_8p.sh")
    assert proc.returncode == 1 and "SLURM_JOB_NODELIST is not set" in proc.stderr


def test_a_tf_config_set_by_the_cluster_manager_is_the_cluster(toy, tmp_path):  # noqa: F811
    launcher(toy, name="train_full_8p.sh", lib="workers_lib.sh")
    config = {"cluster": {"worker": ["job-worker-0.ns.svc:2222", "job-worker-1.ns.svc:2222"]},
              "task": {"type": "worker", "index": 1}}
    proc = run(toy, f"--data_path={tmp_path / 'data'}", name="train_full_8p.sh",
               env={"TF_CONFIG": json.dumps(config), "WORK_SECONDS": "0"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TF_CONFIG from the environment: worker 1 of job-worker-0.ns.svc:2222,job-worker-1.ns.svc:2222" in proc.stdout
    assert logged_tf_config(toy, 1) == config and not (toy / "test" / "output" / "0").exists()
    proc = run(toy, f"--data_path={tmp_path / 'data'}", name="train_full_8p.sh",
               env={"TF_CONFIG": json.dumps({**config, "task": {"type": "ps", "index": 0}})})
    assert proc.returncode == 1
    assert proc.stdout == "[Error] train_full_8p.sh: TF_CONFIG: task type 'ps': only worker tasks train here\n"


@pytest.mark.parametrize("model", MODELS_8P)
def test_the_tfjob_manifest_names_the_launcher_image_and_port_consistently(model):
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(REPO, model, "docs", "tfjob.yaml")) as handle:
        job = yaml.safe_load(handle)
    assert job["apiVersion"] == "kubeflow.org/v1" and job["kind"] == "TFJob"
    workers = job["spec"]["tfReplicaSpecs"]["Worker"]
    assert workers["replicas"] >= 2 and set(job["spec"]["tfReplicaSpecs"]) == {"Worker"}
    (container,) = workers["template"]["spec"]["containers"]
    assert container["name"] == "tensorflow"  # the operator finds the training container by this name
    assert container["workingDir"].endswith("/" + model)
    command = container["command"]
    assert command[0] == "bash" and re.fullmatch(r"test/train_\w+_8p\w*\.sh", command[1])
    assert os.path.isfile(os.path.join(REPO, model, command[1]))
    assert any(arg.startswith("--data_path=/") for arg in command)
    assert container["ports"] == [{"name": "tfjob-port", "containerPort": 2222}]
    images = {container["image"]}
    for other in MODELS_8P:
        with open(os.path.join(REPO, other, "docs", "tfjob.yaml")) as handle:
            images.add(yaml.safe_load(handle)["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["image"])
    assert len(images) == 1
