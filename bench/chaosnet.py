"""Network faults for bench/chaos.py: each worker runs in a network namespace of its own that
reaches the brokers only through socat relays over Unix sockets, so a partition is a few
iptables rules inside that namespace and touches nothing else on the machine.

    host:       socat UNIX-LISTEN:<dir>/nodeK.sock,fork TCP:127.0.0.1:<port K>     (one per node)
    namespace:  socat TCP-LISTEN:<port K>,bind=127.0.0.1,fork UNIX-CONNECT:<dir>/nodeK.sock

Inside the namespace the worker's amqp.urls are the brokers' usual 127.0.0.1:<port>. Only
loopback and our own namespaces are used: no addresses, no routes, no veth.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

# iptables rules per direction: "in" drops what the brokers send to the worker (their relay's
# source port), "out" what the worker sends to them. Packets are dropped, not rejected: a
# partition is silence, and TCP notices it only by its own timeouts.
RULES = {"in": [("INPUT", "--sport")], "out": [("OUTPUT", "--dport")],
         "both": [("INPUT", "--sport"), ("OUTPUT", "--dport")]}


def run(*argv, check=True):
    return subprocess.run(list(argv), check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Relays:
    """The host side (one Unix socket per broker node) and the namespaces, with cleanup."""

    def __init__(self, ports, sock_dir, tag):
        self.ports, self.dir, self.tag = ports, sock_dir, tag
        self.procs = []  # every socat we started (each leads its own process group: its forks die with it)
        self.namespaces = []
        self.partitioned = {}  # namespace -> direction
        os.makedirs(sock_dir, exist_ok=True)
        for k, port in enumerate(ports, 1):
            self._spawn(["socat", "UNIX-LISTEN:%s,fork,unlink-early" % self.sock(k), "TCP:127.0.0.1:%d" % port])
        for k in range(1, len(ports) + 1):
            self._wait(lambda: os.path.exists(self.sock(k)), "relay socket %s" % self.sock(k))

    def sock(self, k):
        return os.path.join(self.dir, "node%d.sock" % k)

    def _spawn(self, argv):
        self.procs.append(subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))

    @staticmethod
    def _wait(cond, what, timeout=10):
        deadline = time.time() + timeout
        while not cond():
            if time.time() > deadline:
                raise RuntimeError("chaosnet: no " + what)
            time.sleep(0.05)

    def namespace(self, n):
        """A new namespace with loopback up and a relay per broker port; returns its name."""
        ns = "%s%d" % (self.tag, n)
        run("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        for k, port in enumerate(self.ports, 1):
            self._spawn(["ip", "netns", "exec", ns, "socat",
                         "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr" % port, "UNIX-CONNECT:%s" % self.sock(k)])
        for port in self.ports:
            self._wait(lambda: self.probe(ns, port), "relay on %s:%d" % (ns, port))
        return ns

    def probe(self, ns, port, timeout=1.0):
        """Whether a TCP connection from inside `ns` to a broker port gets through (to the
        relay and on to the broker: it reads the AMQP server's answer to a protocol header)."""
        code = ("import socket,sys\ns=socket.create_connection(('127.0.0.1',%d),timeout=%s)\n"
                "s.sendall(b'AMQP\\x00\\x00\\x09\\x01')\nsys.exit(0 if s.recv(1) else 1)" % (port, timeout))
        try:
            return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=timeout + 5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def partition(self, ns, direction):
        for chain, match in RULES[direction]:
            for port in self.ports:
                run("ip", "netns", "exec", ns, "iptables", "-w", "-A", chain, "-p", "tcp", match, str(port), "-j", "DROP")
        self.partitioned[ns] = direction

    def heal(self, ns):
        direction = self.partitioned.pop(ns, None)
        if direction is None:
            return
        for chain, match in RULES[direction]:
            for port in self.ports:
                run("ip", "netns", "exec", ns, "iptables", "-w", "-D", chain, "-p", "tcp", match, str(port), "-j", "DROP",
                    check=False)

    def close(self):
        for ns in list(self.partitioned):
            self.heal(ns)
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        for ns in self.namespaces:
            run("ip", "netns", "del", ns, check=False)
        self.procs, self.namespaces = [], []
        shutil.rmtree(self.dir, ignore_errors=True)


def remove_stale(prefix):
    """Namespaces an earlier harness killed hard left behind (their names carry its pid)."""
    out = run("ip", "netns", "list", check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("w")[0]
        if pid.isdigit() and not os.path.exists("/proc/" + pid):
            run("ip", "netns", "del", name, check=False)
