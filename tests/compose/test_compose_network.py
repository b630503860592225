"""The compose networks mirror NAT: each cart reaches the bridges (BRIDGE_URLS: it fails over between them) and
mongo, and nothing else; no cart reaches another.

Containers do not route between their networks (the file sets net.ipv4.ip_forward=0 on every
multi-homed service), so what a container can reach is exactly the services it shares a network
with. The same checks run on the file as read here and, in test_compose_cli.py, on the model the
real `docker compose config` resolves when a Compose binary is at hand.
"""

from __future__ import annotations

import copy

import composefile as cf
import pytest

MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"


def check_nat_layout(model: dict) -> None:
    """Assert the NAT-like layout on a compose model (parsed file or `docker compose config` output)."""
    services = model["services"]
    carts = {name for name, s in services.items() if cf.command(s)[:1] == ["node"]}
    bridges = {name for name, s in services.items() if cf.command(s)[:1] == ["bridge"]}
    assert len(carts) >= 3 and len(bridges) == 2, (carts, bridges)
    nets = cf.members(model)
    declared = model.get("networks") or {}

    def neighbours(name: str) -> set[str]:
        return set().union(*(nets[n] for n in cf.networks_of(services[name]))) - {name}

    for cart in sorted(carts):
        own = cf.networks_of(services[cart])
        mine = {cf.url_host_port(url)[0] for url in cf.environment(services[cart])["BRIDGE_URLS"].split(",")}
        assert mine == bridges, f"{cart} must be given every bridge to fail over to, has {mine}"
        uplinks = [n for n in own if cf.is_internal(model, n) and nets[n] & bridges]
        assert len(uplinks) == 1, f"{cart} must sit on exactly one internal network with the bridges, has {uplinks}"
        assert nets[uplinks[0]] == {cart, *mine}, (
            f"{cart}'s uplink {uplinks[0]} must hold only {cart} and {sorted(mine)}: {nets[uplinks[0]]}"
        )
        for net in own:
            others = nets[net] - {cart}
            assert not others & carts, f"{cart} shares {net} with another cart: {others & carts}"
            if cf.is_internal(model, net):
                assert others <= {*mine, "mongo"}, f"{cart}'s internal network {net} also holds {others - mine}"
            else:
                # Only there so the UI port can be published (Docker publishes nothing on internal-only containers).
                assert not others, f"{cart}'s non-internal network {net} is shared with {others}"
                opts = (declared.get(net) or {}).get("driver_opts") or {}
                assert str(opts.get(MASQUERADE)).lower() == "false", (
                    f"{cart}'s published network {net} must not masquerade (no way out)"
                )
        assert neighbours(cart) == {*mine, "mongo"}, (
            f"{cart} can reach {neighbours(cart)}, not just the bridges and mongo"
        )

    for bridge in bridges:
        assert not neighbours(bridge) & {"mongo", "seed"}, f"{bridge} can reach the database"
    public = [n for n, group in nets.items() if group == bridges]
    assert public and all(not cf.is_internal(model, n) for n in public), (
        f"the bridges need a shared (public) network of their own: {public}"
    )
    for net, group in nets.items():
        if group & bridges and group & carts:
            assert cf.is_internal(model, net) and len(group & carts) == 1, (
                f"{net} holds bridges and carts {sorted(group & carts)}: only one cart's internal uplink may"
            )
    assert not any(len(group & carts) > 1 for group in nets.values()), "two carts share a network"

    for name in {"mongo", "seed"}:
        assert all(cf.is_internal(model, n) for n in cf.networks_of(services[name])), (
            f"{name} must sit on internal networks only"
        )
    for name, service in services.items():
        if cf.role(service) in {"authority", "enrol"}:
            assert service.get("network_mode") == "none" and not cf.networks_of(service), (
                f"{name} handles the swarm authority's key: it must have no network"
            )
    for name, service in services.items():
        if len(cf.networks_of(service)) > 1:
            sysctls = service.get("sysctls") or {}
            sysctls = dict(s.split("=", 1) for s in sysctls) if isinstance(sysctls, list) else sysctls
            assert str(sysctls.get("net.ipv4.ip_forward")) == "0", (
                f"{name} joins several networks: it must not forward between them"
            )


def test_each_cart_reaches_only_the_bridges_and_mongo():
    check_nat_layout(cf.resolved())


def test_the_layout_check_catches_a_cart_on_a_shared_network():
    """Mutations the check must reject: cart-1 joins cart-0's uplink; cart-2's uplink stops being internal."""
    broken = copy.deepcopy(cf.resolved())
    broken["services"]["cart-1"]["networks"] = [*broken["services"]["cart-1"]["networks"], "cart-0-uplink"]
    with pytest.raises(AssertionError):
        check_nat_layout(broken)
    broken = copy.deepcopy(cf.resolved())
    broken["networks"]["cart-2-uplink"] = {}
    with pytest.raises(AssertionError, match="cart-2"):
        check_nat_layout(broken)
