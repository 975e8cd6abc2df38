"""The hosts fixture of the multi-host tests: namespaces that reach each other, only each other, and vanish."""
import subprocess
import sys

import pytest

from ci.canonical import netns_hosts

REASON = netns_hosts.unusable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no network namespaces here: {REASON}")

# Serves one connection on ADDRESS:7000 and echoes what it reads.
SERVER = """import socket, sys
s = socket.create_server((sys.argv[1], 7000))
print("ready", flush=True)
c, _ = s.accept()
c.sendall(c.recv(100))
"""
# Connects to ADDRESS:7000 and prints the echo (or the error).
CLIENT = """import socket, sys
try:
    c = socket.create_connection((sys.argv[1], 7000), timeout=3)
    c.sendall(b"hello")
    print(c.recv(100).decode())
except OSError as err:
    print(type(err).__name__)
"""


def echo(hosts, server, client):
    proc = subprocess.Popen(hosts.command(server, [sys.executable, "-c", SERVER, hosts.address(server)]),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        argv = [sys.executable, "-c", CLIENT, hosts.address(server)]
        return subprocess.run(hosts.command(client, argv) if client is not None else argv, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    finally:
        proc.kill()
        proc.wait()


def test_three_hosts_reach_each_other_and_the_machine_does_not_reach_them():
    with netns_hosts.Hosts(3) as hosts:
        assert echo(hosts, 0, 1) == "hello" and echo(hosts, 2, 0) == "hello" and echo(hosts, 1, 2) == "hello"
        assert echo(hosts, 0, None) in ("OSError", "TimeoutError", "ConnectionRefusedError")
        names = [*hosts.names, hosts.switch]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(name in listed for name in names)


def test_a_shaped_link_is_slower():
    with netns_hosts.Hosts(2) as hosts:
        hosts.shape(10)
        qdisc = subprocess.run(hosts.command(0, ["tc", "qdisc", "show", "dev", "eth0"]), capture_output=True,
                               text=True).stdout
        assert "tbf" in qdisc and "rate 10Mbit" in qdisc


def test_workers_are_namespaces_here_each_at_its_own_address():
    with netns_hosts.workers(2, port=7000) as (addresses, on_host):
        assert [a.rsplit(":", 1)[1] for a in addresses] == ["7000", "7000"] and addresses[0] != addresses[1]
        names = subprocess.run(on_host(1, ["ip", "-brief", "addr", "show", "eth0"]), capture_output=True,
                               text=True).stdout
        assert addresses[1].split(":")[0] in names
