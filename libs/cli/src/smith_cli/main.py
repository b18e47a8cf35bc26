"""`smith`: check and preview Bundles before they ship, and wait for them in scripts (`kubectl smith`
too). Every error is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from smith_cli.graph import dot, mermaid
from smith_cli.plan import check, plan_lines
from smith_cli.wait import WaitError, wait_for
from smith_kube import KubeConfig


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Smith's command line: validate, plan and wait for Bundles."""


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Validate Bundle files (or directories of them): every problem at once; exit 1 on any."""
    failed = False
    for checked in check(list(files)):
        if checked.bundle is None:
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
def plan(files: tuple[Path, ...]) -> None:
    """How Smith would converge each Bundle file, wave by wave (no cluster needed)."""
    failed = False
    for checked in check(list(files)):
        if checked.bundle is None:
            failed = True
            click.echo(f"✗ {checked.path}: invalid\n  " + "\n  ".join(checked.problems))
            continue
        click.echo(
            f"✓ {checked.path}: bundle {checked.bundle.name!r}, {len(checked.bundle.resources)} resources"
        )
        for line in plan_lines(checked.bundle):
            click.echo(line)
    sys.exit(1 if failed else 0)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
def graph(file: Path, fmt: str) -> None:
    """A Bundle file's dependency graph, as Mermaid or Graphviz dot (`| dot -Tsvg` draws it)."""
    (checked,) = check([file])
    if checked.bundle is None:
        raise click.ClickException("; ".join(checked.problems))
    click.echo((mermaid if fmt == "mermaid" else dot)(checked.bundle), nl=False)


@cli.command()
@click.argument("name")
@click.option("-n", "--namespace", default=None, help="the Bundle's namespace (default: the context's)")
@click.option("--for", "condition", type=click.Choice(["ready", "error"]), default="ready", show_default=True)
@click.option("--timeout", type=float, default=300.0, show_default=True, help="seconds")
@click.option("--context", default=None, help="the kubeconfig context to use")
def wait(name: str, namespace: str | None, condition: str, timeout: float, context: str | None) -> None:
    """Wait until a Bundle is Ready (or in Error), by watching it; exit 1 on timeout."""
    try:
        config = KubeConfig.auto(context=context)
    except Exception as e:
        raise click.ClickException(f"no usable kubeconfig: {e}") from None
    try:
        message = asyncio.run(wait_for(config, name, namespace or config.namespace, condition, timeout))
    except WaitError as e:
        raise click.ClickException(str(e)) from None
    click.echo(message)
