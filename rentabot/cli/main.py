"""``rentabot``: start the service; rentabot 1.0.0's options keep working.

Each service option is also read from an environment variable ``RENTABOT_<OPTION>``
(``--persist`` from ``RENTABOT_PERSIST``, and so on). The command passes the settings
to the application through those variables, so ``uvicorn rentabot.main:app`` with
the same variables starts the same service.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from rentabot import __version__
from rentabot.cli import state
from rentabot.config.auth import AuthConfigError, load_auth_config
from rentabot.config.descriptor import DescriptorError, load_descriptor
from rentabot.config.settings import DESCRIPTOR_ENV, Settings, SettingsError
from rentabot.storage.factory import StoreURLError, check_store_url

LOG_LEVELS = ["critical", "error", "warning", "info", "debug"]


def find_descriptor(explicit: str | None) -> Path | None:
    """Find the descriptor: --config, ./.rentabot.yaml, ./rentabot.yaml,
    ~/.rentabot/config.yaml, then RENTABOT_RESOURCE_DESCRIPTOR (rentabot 1.0.0's order)."""
    if explicit:
        return Path(explicit)
    for candidate in (Path.cwd() / ".rentabot.yaml", Path.cwd() / "rentabot.yaml"):
        if candidate.exists():
            return candidate
    home = Path.home() / ".rentabot" / "config.yaml"
    if home.exists():
        return home
    from_env = os.environ.get(DESCRIPTOR_ENV)
    if from_env:
        return Path(from_env)
    return None


def option_env(name: str) -> str:
    return "RENTABOT_" + name.upper().replace("-", "_")


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rentabot")
@click.option("--config", "-c", metavar="FILE", help="Resource descriptor (YAML).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar=option_env("host"),
    help="Address to listen on.",
)
@click.option(
    "--port",
    "-p",
    default=8000,
    show_default=True,
    type=int,
    envvar=option_env("port"),
    help="TCP port to listen on.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    envvar=option_env("log-level"),
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Log verbosity.",
)
@click.option("--reload", is_flag=True, help="Restart when the code changes (development).")
@click.option(
    "--persist",
    metavar="URL",
    envvar=option_env("persist"),
    help="Keep state in a database: sqlite:///path/rentabot.db or "
    "postgresql://user@host:5432/db. Default: in memory, lost on restart.",
)
@click.option(
    "--claim-window",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    envvar=option_env("claim-window"),
    help="Seconds a fulfilled reservation waits for its claim.  [default: 60]",
)
@click.option(
    "--queue-policy",
    type=click.Choice(["strict", "backfill"]),
    envvar=option_env("queue-policy"),
    help="strict: never serve a reservation ahead of an older one that could use "
    "the same resources; backfill: serve whatever fits.  [default: strict]",
)
@click.option(
    "--auth-config",
    metavar="FILE",
    envvar=option_env("auth-config"),
    help="Tokens file that turns authentication on (admin and user tokens).",
)
@click.option(
    "--forwarded-allow-ips",
    metavar="LIST",
    envvar=option_env("forwarded-allow-ips"),
    help="Comma-separated proxy addresses or networks whose X-Forwarded-For header "
    "is trusted for the client IP. Default: none.",
)
@click.option(
    "--max-ttl",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    envvar=option_env("max-ttl"),
    help="Maximum lock length of any request, in seconds.  [default: 2592000]",
)
@click.option(
    "--max-wait-time",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    envvar=option_env("max-wait-time"),
    help="Maximum max_wait_time of a reservation, in seconds.  [default: 604800]",
)
@click.option(
    "--max-quantity",
    type=click.IntRange(min=1),
    envvar=option_env("max-quantity"),
    help="Maximum number of resources in one reservation.  [default: 1000]",
)
@click.option(
    "--min-priority",
    type=int,
    envvar=option_env("min-priority"),
    help="Minimum reservation priority.  [default: -100]",
)
@click.option(
    "--max-priority",
    type=int,
    envvar=option_env("max-priority"),
    help="Maximum reservation priority.  [default: 100]",
)
@click.pass_context
def main(
    ctx: click.Context,
    /,
    config: str | None,
    host: str,
    port: int,
    log_level: str,
    reload: bool,
    **service_options: object,
) -> None:
    """Start the rentabot service: exclusive, time-limited locks on shared resources."""
    if ctx.invoked_subcommand is not None:
        return

    descriptor = find_descriptor(config)
    for name, value in service_options.items():
        if value is not None:
            os.environ[option_env(name)] = str(value)
    os.environ[option_env("log-level")] = log_level
    if descriptor is not None:
        os.environ[DESCRIPTOR_ENV] = str(descriptor)

    settings = check_settings(descriptor)
    announce(descriptor, settings, host, port)

    import uvicorn

    from rentabot.api.server import GRACEFUL_SHUTDOWN_SECONDS, KEEP_ALIVE_SECONDS, serve

    # Proxy headers are handled by the application, trusting only --forwarded-allow-ips.
    options = {
        "host": host,
        "port": port,
        "log_level": log_level.lower(),
        "proxy_headers": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }
    if reload:
        # The reloading supervisor runs uvicorn's own server in a child process.
        uvicorn.run("rentabot.main:app", reload=True, **options)  # type: ignore[arg-type]
        return
    serve(uvicorn.Config("rentabot.main:app", **options))  # type: ignore[arg-type]


def check_settings(descriptor: Path | None) -> Settings:
    """Read the settings and the descriptor now, so mistakes stop the command cleanly."""
    try:
        settings = Settings.from_env()
        check_store_url(settings.persist)
        load_auth_config(settings.auth_config)
        if descriptor is not None:
            load_descriptor(
                descriptor,
                default_max_lock_duration=settings.limits.default_max_lock_duration,
                max_ttl=settings.limits.max_ttl,
            )
    except (SettingsError, DescriptorError, StoreURLError, AuthConfigError) as error:
        click.echo(f"rentabot: {error}", err=True)
        sys.exit(2)
    return settings


def announce(descriptor: Path | None, settings: Settings, host: str, port: int) -> None:
    if descriptor is not None:
        click.echo(f"Using config file: {descriptor}")
    else:
        click.echo("No config file found, starting with the resources already in the store")
    click.echo(f"Starting rentabot v{__version__}")
    click.echo(f"Store: {settings.persist or 'memory (state is lost on restart)'}")
    click.echo(f"Server: http://{host}:{port}")
    click.echo(f"API Docs: http://{host}:{port}/docs")


main.add_command(state.db)
main.add_command(state.export_command)
main.add_command(state.import_command)
main.add_command(state.backup_command)
main.add_command(state.restore_command)
main.add_command(state.audit_command)


if __name__ == "__main__":
    main()
