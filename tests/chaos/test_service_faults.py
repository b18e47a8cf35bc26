"""Smith's own services failing: the planner, the status service and an executor killed mid-reconcile
and started again; the link between controller and executor black-holed past the deadlines; the links
from the controller to the planner and the status service slowed, reset, refused and black-holed; the
controller restarted while Bundles converge. Every Bundle converges, nothing is lost or created twice,
no status is lost (each Bundle's status is for its generation), no service logs a traceback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from faults import FULL, SCALE, Toxiproxy, chain, converged, ledger, nothing_lost_or_doubled, smith
from smith_controlplane.plane import ControlPlane, free_port, free_ports
from smith_kube import KubeClient


async def test_planner_status_and_executor_killed_mid_reconcile_and_restarted(
    kube: KubeClient, plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    names = [f"p{i}" for i in range(20 * SCALE)]
    with smith(plane.kubeconfig, tmp_path / "logs") as services:
        async with ledger(kube, namespace) as book:
            await asyncio.gather(*(kube.create(chain(n, namespace, length=5)) for n in names))
            for victim in ("smith_planner", "smith_status", "smith_executor_core"):
                await asyncio.sleep(0.3)
                services.kill(victim)  # SIGKILL, in the middle of whatever it was doing
                await asyncio.sleep(1.0)
                services.restart(victim)
            await converged(kube, namespace, names, within=240)
        nothing_lost_or_doubled(book, names, length=5)


async def test_the_link_to_an_executor_black_holed_past_every_deadline(
    kube: KubeClient, plane: ControlPlane, namespace: str, toxiproxy: Toxiproxy, tmp_path: Path
) -> None:
    listen = free_port()
    advertised = await toxiproxy.proxy("executor", f"127.0.0.1:{listen}")
    executor = {"SMITH_LISTEN": f"127.0.0.1:{listen}", "SMITH_ADVERTISE": advertised}
    names = [f"h{i}" for i in range(20 * SCALE)]
    with smith(plane.kubeconfig, tmp_path / "logs", service_env={"smith_executor_core": executor}):
        async with ledger(kube, namespace) as book:
            await asyncio.gather(*(kube.create(chain(n, namespace, length=4)) for n in names))
            await asyncio.sleep(0.5)
            # nothing gets through either way and nothing is closed: every call waits for its deadline
            await toxiproxy.toxic("executor", "hole", "timeout", timeout=0)
            await toxiproxy.toxic("executor", "hole-up", "timeout", stream="upstream", timeout=0)
            await asyncio.sleep(35 if FULL else 12)  # apply's deadline is 30 s, plan's and assess's 10 s
            await toxiproxy.clear("executor", "hole")
            await toxiproxy.clear("executor", "hole-up")
            await converged(kube, namespace, names, within=240)
        nothing_lost_or_doubled(book, names, length=4)


async def test_the_links_to_the_planner_and_the_status_service_slowed_reset_and_cut(
    kube: KubeClient, plane: ControlPlane, namespace: str, toxiproxy: Toxiproxy, tmp_path: Path
) -> None:
    planner, status = free_ports(2)
    controller = {
        "SMITH_PLANNER": await toxiproxy.proxy("planner", f"127.0.0.1:{planner}"),
        "SMITH_STATUS": await toxiproxy.proxy("status", f"127.0.0.1:{status}"),
    }
    service_env = {
        "smith_planner": {"SMITH_LISTEN": f"127.0.0.1:{planner}"},
        "smith_status": {"SMITH_LISTEN": f"127.0.0.1:{status}"},
        "smith_controller": controller,
    }
    names = [f"l{i}" for i in range(20 * SCALE)]
    hold = 20 if FULL else 6
    with smith(plane.kubeconfig, tmp_path / "logs", service_env=service_env):
        async with ledger(kube, namespace) as book:
            for link in ("planner", "status"):  # 200 ms each way, while every Bundle starts
                await toxiproxy.toxic(link, "slow", "latency", latency=200, jitter=50)
                await toxiproxy.toxic(link, "slow-up", "latency", stream="upstream", latency=200)
            await asyncio.gather(*(kube.create(chain(n, namespace, length=4)) for n in names))
            await asyncio.sleep(hold)
            for link in ("planner", "status"):  # every connection reset as it opens
                await toxiproxy.toxic(link, "reset", "reset_peer", timeout=0)
            await asyncio.sleep(3)
            for link in ("planner", "status"):
                await toxiproxy.clear(link, "reset")
            await toxiproxy.enabled("planner", False)  # refused
            await toxiproxy.toxic("status", "hole", "timeout", timeout=0)  # black hole past its deadline
            await toxiproxy.toxic("status", "hole-up", "timeout", stream="upstream", timeout=0)
            await asyncio.sleep(17)  # a report's deadline is 15 s
            await toxiproxy.enabled("planner", True)
            for link, toxic in (("status", "hole"), ("status", "hole-up")):
                await toxiproxy.clear(link, toxic)
            await converged(kube, namespace, names, within=240)  # with the latency still on
        nothing_lost_or_doubled(book, names, length=4)


@pytest.mark.parametrize("victim", ["smith_controller", "smith_all"])
async def test_the_controller_restarted_while_bundles_converge(
    kube: KubeClient, plane: ControlPlane, namespace: str, tmp_path: Path, victim: str
) -> None:
    """The controller's process (all of Smith's, when it runs in one) killed and started again."""
    names = [f"c{i}" for i in range(200 if FULL else 60)]
    with smith(plane.kubeconfig, tmp_path / "logs", all_in_one=victim == "smith_all") as services:
        async with ledger(kube, namespace) as book:
            await asyncio.gather(*(kube.create(chain(n, namespace)) for n in names))
            await asyncio.sleep(1.0)
            services.kill(victim)  # its lease stays until it runs out: the next one waits
            services.restart(victim)
            await converged(kube, namespace, names, within=300)
        nothing_lost_or_doubled(book, names)
