"""A small internet in network namespaces: a public segment with the bridges, each cart behind its own NAT router.

Layout (every address exists only inside the namespaces made here)::

    <prefix>-pub    the public segment: br0 10.231.0.1/24 (gateway); ip_forward=0, no route to any LAN
       |  veth bx<j> / up<i> (enslaved to br0)
    <prefix>-b<j>   bridge j: eth0 10.231.0.<2+j>/24
    <prefix>-r<i>   cart i's router: wan 10.231.0.<10+i>/24, lan 10.231.<100+i>.1/24
                    ip_forward=1; MASQUERADE out of wan; FORWARD: lan->wan allowed,
                    wan->lan only for ESTABLISHED,RELATED; policy DROP (a home router)
       |  veth lan <-> eth0
    <prefix>-c<i>   cart i: eth0 10.231.<100+i>.2/24, default route via its router

So a cart reaches the bridges and nothing behind another router. Names given in
`hosts` (e.g. the compose service names bridge-0, bridge-1) resolve inside the
bridge and cart namespaces through /etc/netns/<namespace>/hosts, which
`ip netns exec` mounts over /etc/hosts. Nothing is changed in the root network
namespace: deleting the namespaces (and those hosts files) removes every link,
address and rule made here.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PUBLIC_SUBNET = "10.231.0"
GATEWAY = f"{PUBLIC_SUBNET}.1"
PR_SET_PDEATHSIG = 1
NETNS_ETC = Path("/etc/netns")


def bridge_address(i: int) -> str:
    return f"{PUBLIC_SUBNET}.{2 + i}"


def router_address(i: int) -> str:
    return f"{PUBLIC_SUBNET}.{10 + i}"


def cart_address(i: int) -> str:
    return f"10.231.{100 + i}.2"


def lan_gateway(i: int) -> str:
    return f"10.231.{100 + i}.1"


class LabError(RuntimeError):
    """A setup command failed; the message holds the command and its stderr."""


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL if the test process dies, so nothing outlives a crashed run."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def firewall_tool() -> str | None:
    """'iptables' or 'nft', whichever is installed (iptables first; FEDCART_NAT_FIREWALL=nft picks nft)."""
    wanted = os.environ.get("FEDCART_NAT_FIREWALL", "")
    for tool in (wanted,) if wanted else ("iptables", "nft"):
        if shutil.which(tool):
            return tool
    return None


def router_rules(tool: str) -> list[list[str]]:
    """NAT and a stateful forward filter for one router namespace, as commands for `tool`."""
    if tool == "iptables":
        return [
            ["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"],
            ["iptables", "-P", "FORWARD", "DROP"],
            ["iptables", "-A", "FORWARD", "-i", "lan", "-o", "wan", "-j", "ACCEPT"],
            [
                "iptables",
                "-A",
                "FORWARD",
                "-i",
                "wan",
                "-o",
                "lan",
                "-m",
                "conntrack",
                "--ctstate",
                "ESTABLISHED,RELATED",
                "-j",
                "ACCEPT",
            ],
        ]
    return [
        ["nft", "add", "table", "ip", "nat"],
        ["nft", "add", "chain", "ip", "nat", "masq", "{ type nat hook postrouting priority 100 ; }"],
        ["nft", "add", "rule", "ip", "nat", "masq", "oifname", "wan", "counter", "masquerade"],
        ["nft", "add", "table", "ip", "filter"],
        ["nft", "add", "chain", "ip", "filter", "guard", "{ type filter hook forward priority 0 ; policy drop ; }"],
        ["nft", "add", "rule", "ip", "filter", "guard", "iifname", "lan", "oifname", "wan", "accept"],
        [
            "nft",
            "add",
            "rule",
            "ip",
            "filter",
            "guard",
            "iifname",
            "wan",
            "oifname",
            "lan",
            "ct",
            "state",
            "established,related",
            "accept",
        ],
    ]


def unavailable_reason() -> str | None:
    """Why this machine cannot run the lab (None = it can): root, `ip netns`, a NAT-capable firewall tool."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if not shutil.which("ip"):
        return "`ip` (iproute2) is not installed"
    tool = firewall_tool()
    if tool is None:
        return "neither iptables nor nft is installed"
    probe = f"fcnprobe{os.getpid()}"
    try:
        made = run("ip", "netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"`ip netns add` does not work here: {made.stderr.strip()}"
        for command in router_rules(tool)[: 1 if tool == "iptables" else 3]:
            tried = run("ip", "netns", "exec", probe, *command, check=False)
            if tried.returncode != 0:
                return f"{tool} cannot NAT inside a namespace: {tried.stderr.strip()}"
        return None
    finally:
        run("ip", "netns", "del", probe, check=False)


def sweep_stale() -> None:
    """Delete lab namespaces left by a test process that no longer exists (it was killed before its cleanup)."""
    listed = run("ip", "netns", "list", check=False).stdout.split("\n")
    for line in listed:
        name = line.split(" ")[0]
        if not name.startswith("fcn") or "-" not in name:
            continue
        owner = name[3:].split("-")[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
                os.kill(int(pid), signal.SIGKILL)
            run("ip", "netns", "del", name, check=False)
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)


@dataclass
class NatLab:
    """The namespaces for `bridges` bridges and `carts` NATed carts; `build()` makes them, `destroy()` removes them."""

    bridges: int
    carts: int
    hosts: dict[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"fcn{os.getpid()}")
    made: list[str] = field(default_factory=list)
    made_netns_etc: bool = False

    @property
    def public(self) -> str:
        return f"{self.prefix}-pub"

    def bridge(self, j: int) -> str:
        return f"{self.prefix}-b{j}"

    def router(self, i: int) -> str:
        return f"{self.prefix}-r{i}"

    def cart(self, i: int) -> str:
        return f"{self.prefix}-c{i}"

    def exec_prefix(self, namespace: str) -> list[str]:
        return ["ip", "netns", "exec", namespace]

    def _ns(self, name: str, hosts: bool = False) -> None:
        run("ip", "netns", "add", name)
        self.made.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        if hosts:
            if not NETNS_ETC.exists():
                NETNS_ETC.mkdir()
                self.made_netns_etc = True
            folder = NETNS_ETC / name
            folder.mkdir()
            lines = ["127.0.0.1 localhost", *(f"{address} {host}" for host, address in self.hosts.items())]
            (folder / "hosts").write_text("\n".join(lines) + "\n")

    def build(self) -> None:
        tool = firewall_tool()
        assert tool, "no firewall tool"
        pub = self.public
        self._ns(pub)
        run("ip", "netns", "exec", pub, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        run("ip", "-n", pub, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", pub, "addr", "add", f"{GATEWAY}/24", "dev", "br0")
        run("ip", "-n", pub, "link", "set", "br0", "up")
        for j in range(self.bridges):
            bridge = self.bridge(j)
            self._ns(bridge, hosts=True)
            run("ip", "-n", bridge, "link", "add", "eth0", "type", "veth", "peer", "name", f"bx{j}", "netns", pub)
            run("ip", "-n", pub, "link", "set", f"bx{j}", "master", "br0")
            run("ip", "-n", pub, "link", "set", f"bx{j}", "up")
            run("ip", "-n", bridge, "addr", "add", f"{bridge_address(j)}/24", "dev", "eth0")
            run("ip", "-n", bridge, "link", "set", "eth0", "up")
        for i in range(self.carts):
            router, cart = self.router(i), self.cart(i)
            self._ns(router)
            self._ns(cart, hosts=True)
            run("ip", "-n", router, "link", "add", "wan", "type", "veth", "peer", "name", f"up{i}", "netns", pub)
            run("ip", "-n", pub, "link", "set", f"up{i}", "master", "br0")
            run("ip", "-n", pub, "link", "set", f"up{i}", "up")
            run("ip", "-n", router, "addr", "add", f"{router_address(i)}/24", "dev", "wan")
            run("ip", "-n", router, "link", "set", "wan", "up")
            run("ip", "-n", router, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", cart)
            run("ip", "-n", router, "addr", "add", f"{lan_gateway(i)}/24", "dev", "lan")
            run("ip", "-n", router, "link", "set", "lan", "up")
            run("ip", "-n", router, "route", "add", "default", "via", GATEWAY)
            run("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            for command in router_rules(tool):
                run("ip", "netns", "exec", router, *command)
            run("ip", "-n", cart, "addr", "add", f"{cart_address(i)}/24", "dev", "eth0")
            run("ip", "-n", cart, "link", "set", "eth0", "up")
            run("ip", "-n", cart, "route", "add", "default", "via", lan_gateway(i))

    def masqueraded_packets(self, i: int) -> int:
        """Packets (connections, as NAT rules see only the first packet of each) router i has masqueraded."""
        router = self.router(i)
        if firewall_tool() == "iptables":
            listing = run(
                "ip", "netns", "exec", router, "iptables", "-t", "nat", "-L", "POSTROUTING", "-v", "-x", "-n"
            ).stdout
            return sum(int(line.split()[0]) for line in listing.splitlines() if "MASQUERADE" in line)
        listing = run("ip", "netns", "exec", router, "nft", "list", "chain", "ip", "nat", "masq").stdout
        words = listing.split()
        return sum(int(words[k + 1]) for k, word in enumerate(words) if word == "packets")

    def leftover_pids(self) -> list[int]:
        """Processes still running inside any of the lab's namespaces."""
        pids: list[int] = []
        for name in self.made:
            pids += [int(p) for p in run("ip", "netns", "pids", name, check=False).stdout.split()]
        return pids

    def destroy(self) -> list[str]:
        """Kill whatever still runs inside the lab and delete its namespaces; returns the errors met, if any."""
        errors = []
        for pid in self.leftover_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for name in reversed(self.made):
            result = run("ip", "netns", "del", name, check=False)
            if result.returncode != 0:
                errors.append(f"ip netns del {name}: {result.stderr.strip()}")
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
        self.made.clear()
        if self.made_netns_etc:
            with contextlib.suppress(OSError):  # only when empty: a folder someone else put there meanwhile stays
                NETNS_ETC.rmdir()
        return errors
