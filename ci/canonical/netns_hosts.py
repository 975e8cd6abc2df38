"""Several hosts on one machine for the tests: Linux network namespaces joined by veth pairs.

Canonical copy: ci/canonical/netns_hosts.py; the 8p models' tests/netns_hosts.py are byte-identical copies
(ci/vendored.toml). Each host is a namespace with its own loopback and one address 10.213.<net>.<i+1>/24 on a
veth whose peer sits on a bridge in a switch namespace, so the hosts reach each other and nothing else: the
traffic never leaves the namespaces. Everything is removed on exit, also when the test fails.

    with Hosts(2) as hosts:
        subprocess.run(hosts.command(0, ["python3", "server.py", hosts.address(0)]))

    with workers(2) as (addresses, on_host):   # namespaces where they can be made, else localhost
        subprocess.run(on_host(1, ["python3", "worker.py", ",".join(addresses)]))
"""
import contextlib
import os
import shutil
import socket
import subprocess


def unusable_reason():
    """Why namespaces cannot be made here (for pytest.skip), or None when they can."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CAP_SYS_ADMIN)"
    # What Hosts needs, tried once: a namespace holding a bridge and a veth pair (a kernel or container may
    # allow namespaces but not these devices).
    probe = f"zoo-probe-{os.getpid()}"
    steps = [["ip", "netns", "add", probe],
             ["ip", "-n", probe, "link", "add", "br0", "type", "bridge"],
             ["ip", "-n", probe, "link", "add", "a0", "type", "veth", "peer", "name", "b0"]]
    try:
        for step in steps:
            made = subprocess.run(step, capture_output=True, text=True)
            if made.returncode != 0:
                return f"`{' '.join(step)}` failed: {made.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args, netns=None):
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True, text=True)


class Hosts:
    """count hosts; names and the subnet derive from this process's id, so parallel test runs do not clash."""

    def __init__(self, count):
        self.count = count
        tag = os.getpid() % 100000
        self.net = tag % 250 + 1
        self.switch = f"zoo{tag}sw"
        self.names = [f"zoo{tag}h{i}" for i in range(count)]

    def address(self, i):
        return f"10.213.{self.net}.{i + 1}"

    def command(self, i, argv):
        """argv run inside host i's namespace."""
        return ["ip", "netns", "exec", self.names[i], *argv]

    def shape(self, mbit):
        """Limits every host's link to mbit Mbit/s each way (token bucket on both ends of its veth). The bucket
        holds 10 ms of traffic (at least 1 Mbit): a bucket smaller than what the rate sends per kernel tick
        (1 to 4 ms) caps the rate far below the one asked for at Gbit/s rates."""
        burst = max(1, mbit // 100)
        for i, name in enumerate(self.names):
            for netns, dev in ((name, "eth0"), (self.switch, f"p{i}")):
                _ip("link", "show", dev, netns=netns)  # fails early with the device's name if it is missing
                subprocess.run(["ip", "netns", "exec", netns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
                                "rate", f"{mbit}mbit", "burst", f"{burst}mbit", "latency", "50ms"],
                               check=True, capture_output=True, text=True)

    def __enter__(self):
        try:
            _ip("netns", "add", self.switch)
            _ip("link", "add", "br0", "type", "bridge", netns=self.switch)
            _ip("link", "set", "br0", "up", netns=self.switch)
            for i, name in enumerate(self.names):
                _ip("netns", "add", name)
                _ip("link", "set", "lo", "up", netns=name)
                _ip("link", "add", "eth0", "type", "veth", "peer", "name", f"p{i}", "netns", self.switch,
                    netns=name)
                _ip("addr", "add", f"{self.address(i)}/24", "dev", "eth0", netns=name)
                _ip("link", "set", "eth0", "up", netns=name)
                _ip("link", "set", f"p{i}", "master", "br0", netns=self.switch)
                _ip("link", "set", f"p{i}", "up", netns=self.switch)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        # Deleting a namespace deletes the veth ends inside it, and with them their peers.
        for name in [*self.names, self.switch]:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@contextlib.contextmanager
def workers(count, port=2222):
    """(['host:port' of each worker], on_host(i, argv) -> argv run on worker i's host): one namespace per
    worker when namespaces can be made (every worker at `port` of its own address), else every worker on
    localhost at a free port (the single-machine fallback, without crossing a network interface)."""
    if unusable_reason() is None:
        with Hosts(count) as hosts:
            yield [f"{hosts.address(i)}:{port}" for i in range(count)], hosts.command
        return
    probes = [socket.socket() for _ in range(count)]
    for probe in probes:
        probe.bind(("127.0.0.1", 0))
    addresses = [f"localhost:{probe.getsockname()[1]}" for probe in probes]
    for probe in probes:
        probe.close()
    yield addresses, lambda index, argv: list(argv)
