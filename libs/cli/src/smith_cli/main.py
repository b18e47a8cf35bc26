"""`smith`: check and preview Bundles before they ship, and wait for them in scripts (`kubectl smith`
too). Every error is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

import click
import yaml
from rich.console import Console

from smith_cli.certs import authority, secrets
from smith_cli.follow import AccessError, first
from smith_cli.graph import GraphvizMissingError, dot, mermaid, render
from smith_cli.migrate import Finding, document_findings, live_findings, report_lines
from smith_cli.plan import UnreadableError, bundle_files, check, plan_lines, read
from smith_cli.preview import preview, preview_lines
from smith_cli.status import resource_lines, view, watch
from smith_cli.wait import WaitError, wait_for
from smith_engine.errors import InvalidBundleError
from smith_engine.validation import load_bundle
from smith_kube import ApiError, KubeClient, KubeConfig, TransportError

T = TypeVar("T")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Smith's command line: validate, plan and graph Bundle files; show and wait for Bundles."""


def _config(context: str | None) -> KubeConfig:
    try:
        return KubeConfig.auto(context=context)
    except Exception as e:
        raise click.ClickException(f"no usable kubeconfig: {e}") from None


NAMESPACE = click.option("-n", "--namespace", default=None, help="the namespace (default: the context's)")
CONTEXT = click.option("--context", default=None, help="the kubeconfig context to use")


def _run(config: KubeConfig, work: Callable[[KubeClient], Awaitable[T]]) -> T:
    """`work` with a client of `config`; the cluster's refusals and absence as one-line errors."""

    async def go() -> T:
        async with KubeClient(config) as kube:
            return await work(kube)

    try:
        return asyncio.run(go())
    except ApiError as e:
        raise click.ClickException(str(e)) from None
    except TransportError as e:
        raise click.ClickException(f"cannot reach the cluster at {config.server}: {e}") from None


def _until_stopped(work: Callable[[KubeClient], Awaitable[None]]) -> Callable[[KubeClient], Awaitable[None]]:
    """`work` ended early, cleanly, by Ctrl-C or SIGTERM. The loop handles both signals itself, so they
    stop it even where Smith was started with SIGINT ignored (a shell's background job)."""

    async def stoppable(kube: KubeClient) -> None:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await work(kube)

    return stoppable


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Validate Bundle files (or directories of them): every problem at once; exit 1 on any."""
    failed = False
    for checked in check(list(files)):
        if checked.problems or checked.bundle is None:
            failed = True
            for problem in checked.problems:
                click.echo(f"✗ {problem}", err=True)
        else:
            click.echo(
                f"✓ {checked.path}: bundle {checked.bundle.name!r}, {len(checked.bundle.resources)} resources"
            )
    sys.exit(1 if failed else 0)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--cluster", "live", is_flag=True, help="also what each resource would do in the cluster (a dry run)"
)
@click.option("-n", "--namespace", default=None, help="with --cluster: the namespace (default: the file's)")
@click.option("--context", default=None, help="with --cluster: the kubeconfig context to use")
def plan(files: tuple[Path, ...], live: bool, namespace: str | None, context: str | None) -> None:
    """How Smith would converge each Bundle file, wave by wave; with --cluster, what each resource would
    do against the live cluster (create, update with the fields that change, unchanged, blocked,
    refused), from server-side dry runs: nothing is written. Exit 1 on an invalid file or a refusal."""
    failed = False
    config = _config(context) if live else None
    for checked in check(list(files)):
        if checked.bundle is None:
            failed = True
            click.echo(f"✗ {checked.path}: invalid\n  " + "\n  ".join(checked.problems))
            continue
        failed |= bool(checked.problems)  # a resource refused alone: an error, shown in the plan
        mark, bundle = "✗" if checked.problems else "✓", checked.bundle
        click.echo(f"{mark} {checked.path}: bundle {bundle.name!r}, {len(bundle.resources)} resources")
        for line in plan_lines(checked.bundle):
            click.echo(line)
        if config is not None:
            document = read(checked.path)
            ns = namespace or document["metadata"].get("namespace") or config.namespace
            document["metadata"]["namespace"] = ns
            click.echo(f"  against {config.server}, namespace {ns}:")
            previews = _run(config, partial(preview, document=document))
            failed |= any(p.action == "refused" for p in previews)
            for line in preview_lines(previews):
                click.echo(line)
    sys.exit(1 if failed else 0)


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("-n", "--namespace", default=None, help="without files: one namespace (default: all)")
@CONTEXT
def migrate(files: tuple[Path, ...], namespace: str | None, context: str | None) -> None:
    """Before moving from Go Smith: what each Bundle will do differently here — Bundle FILES, or (with
    none) every Bundle in the cluster and the objects Go Smith made for it. Exit 1 unless cutover is
    safe (nothing refused, no text whose meaning changes)."""
    if files:
        results = [(str(path), _file_findings(path)) for path in bundle_files(list(files))]
    else:
        results = _run(_config(context), partial(_live_migration, namespace=namespace))
    for name, findings in results:
        for line in report_lines(name, findings):
            click.echo(line)
    unsafe = sum(any(f.blocks for f in findings) for _, findings in results)
    click.echo(
        f"cutover is not safe: {unsafe} of {len(results)} Bundles need a change first"
        if unsafe
        else f"cutover is safe: {len(results)} Bundles checked"
    )
    sys.exit(1 if unsafe else 0)


def _file_findings(path: Path) -> list[Finding]:
    try:
        return document_findings(read(path))
    except UnreadableError as e:
        return [Finding(str(e), blocks=True)]


async def _live_migration(kube: KubeClient, *, namespace: str | None) -> list[tuple[str, list[Finding]]]:
    listing = await kube.list("smith.atlassian.com/v1", "Bundle", namespace)
    results = []
    for document in listing["items"]:
        meta = document["metadata"]
        findings = document_findings(document) + await live_findings(kube, document)
        results.append((f"{meta['namespace']}/{meta['name']}", findings))
    return results


@cli.command()
@click.argument("source")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "svg", "png"]),
    default="mermaid",
    show_default=True,
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="write here, not stdout"
)
@NAMESPACE
@CONTEXT
def graph(source: str, fmt: str, output: Path | None, namespace: str | None, context: str | None) -> None:
    """The dependency graph of SOURCE: a Bundle file, or the name of a Bundle in the cluster (nodes
    coloured by each resource's live state). Mermaid and dot are text; svg and png need Graphviz."""
    states: dict[str, str] = {}
    if Path(source).is_file():
        (checked,) = check([Path(source)])
        if checked.bundle is None:
            raise click.ClickException("; ".join(checked.problems))
        bundle = checked.bundle
    else:
        config = _config(context)
        ns = namespace or config.namespace
        shown = _run(config, partial(first, namespace=ns, names=[source]))
        if shown.trouble:
            raise click.ClickException(f"cannot reach the cluster at {config.server}: {shown.trouble}")
        if (live := shown.bundles.get(source)) is None:
            raise click.ClickException(f"{source!r} is neither a file nor a bundle in namespace {ns!r}")
        try:
            bundle = load_bundle(live)
        except InvalidBundleError as e:
            raise click.ClickException(
                f"bundle {source!r} is invalid: {'; '.join(map(str, e.problems))}"
            ) from None
        states = {line.name: line.state for line in resource_lines(live)}
    text = mermaid(bundle, states) if fmt == "mermaid" else dot(bundle, states)
    try:
        drawn = text.encode() if fmt in ("mermaid", "dot") else render(text, fmt)
    except GraphvizMissingError as e:
        raise click.ClickException(str(e)) from None
    if output is not None:
        output.write_bytes(drawn)
    else:
        sys.stdout.buffer.write(drawn)


@cli.command()
@click.argument("name")
@NAMESPACE
@click.option("--for", "condition", type=click.Choice(["ready", "error"]), default="ready", show_default=True)
@click.option("--timeout", type=float, default=300.0, show_default=True, help="seconds")
@CONTEXT
def wait(name: str, namespace: str | None, condition: str, timeout: float, context: str | None) -> None:
    """Wait until a Bundle is Ready (or in Error), by watching it; exit 1 on timeout."""
    config = _config(context)
    try:
        message = asyncio.run(wait_for(config, name, namespace or config.namespace, condition, timeout))
    except WaitError as e:
        raise click.ClickException(str(e)) from None
    click.echo(message)


@cli.command()
@click.argument("names", nargs=-1)
@NAMESPACE
@click.option("-w", "--watch", "follow", is_flag=True, help="keep showing every change (Ctrl-C stops)")
@CONTEXT
def status(names: tuple[str, ...], namespace: str | None, follow: bool, context: str | None) -> None:
    """Bundles (NAMES, or all in the namespace) as trees of their resources: state, reason, message, age.
    With --watch, redrawn on every change; a lost connection shows as reconnecting until it is back."""
    config = _config(context)
    ns, wanted = namespace or config.namespace, list(names) or None
    console = Console(highlight=False)
    try:
        if follow:
            _run(config, _until_stopped(lambda kube: watch(kube, ns, wanted, console=console)))
            return
        shown = _run(config, lambda kube: first(kube, ns, wanted))
    except AccessError as e:
        raise click.ClickException(str(e)) from None
    if shown.trouble:
        raise click.ClickException(f"cannot reach the cluster at {config.server}: {shown.trouble}")
    missing = [n for n in names if n not in shown.bundles]
    if missing or not shown.bundles:
        what = f"bundle {', '.join(map(repr, missing))}" if missing else "no bundles"
        raise click.ClickException(f"{what} not found in namespace {ns!r}")
    console.print(view(shown, wanted, datetime.now(UTC)))


@cli.command()
@click.option(
    "--ca-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="where Smith's CA is kept (ca.crt, ca.key; made there the first time). Keep it out of the cluster",
)
@click.option("--new-ca", is_flag=True, help="start a CA rotation: every Secret trusts the next CA too")
@click.option("--drop-old", is_flag=True, help="end a CA rotation: trust only the CA that signs now")
@click.option("-n", "--namespace", default="smith-system", show_default=True, help="Smith's namespace")
@click.option("--days", type=int, default=90, show_default=True, help="how long each certificate is valid")
def certs(ca_dir: Path, new_ca: bool, drop_old: bool, namespace: str, days: int) -> None:
    """Print the Secrets of Smith's TLS (a serving certificate per service, Smith's CA bundle) as YAML:
    `smith certs --ca-dir ~/.smith-ca | kubectl apply -f -`. Run it again to renew the certificates; a
    CA rotation is `--new-ca`, then a plain run, then `--drop-old`, each applied and given a minute to
    reach the pods. The services read the new files without a restart (see docs/security.md)."""
    if new_ca and drop_old:
        raise click.UsageError("--new-ca starts a rotation, --drop-old ends one: one at a time")
    ca = authority(ca_dir, new_ca=new_ca, drop_old=drop_old)
    click.echo(yaml.safe_dump_all(secrets(ca, namespace, days=days), sort_keys=False), nl=False)
