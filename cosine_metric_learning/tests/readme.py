"""The `python train_*.py` commands of the README's ```bash blocks, as argument lists for train_app.main, and
its `tensorboard --logdir` folders."""
import os
import re
import shlex

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def bash_blocks(path=README):
    with open(path) as handle:
        return re.findall(r"^```bash\n(.*?)^```", handle.read(), re.M | re.S)


def command_lines(path=README):
    """The words of each command line, continuations joined, `VAR=value` prefixes and comments dropped."""
    for block in bash_blocks(path):
        for line in block.replace("\\\n", " ").splitlines():
            words = [w for w in shlex.split(line, comments=True) if not re.match(r"^[A-Z_]+=", w)]
            if words:
                assert words[0] in ("python", "tensorboard"), line
                yield words


def commands(path=README):
    """(script, argv) of each `python` command."""
    return [(words[1], words[2:]) for words in command_lines(path) if words[0] == "python"]


def tensorboard_logdirs(path=README):
    return [words[words.index("--logdir") + 1] for words in command_lines(path) if words[0] == "tensorboard"]


def command(script, mode, replace=(), path=README):
    """The first command of script in mode, each word with the (old, new) pairs of replace substituted."""
    for name, argv in commands(path):
        if name == script and (f"--mode={mode}" in argv or (mode == "train" and not any(
                a.startswith("--mode=") for a in argv))):
            for old, new in replace:
                argv = [word.replace(old, str(new)) for word in argv]
            return argv
    raise AssertionError(f"no {script} --mode={mode} command in {path}")
