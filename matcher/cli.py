"""The `matcher` command. Thin: parses arguments and calls the modules that do the work.

Every verb exits 0 on success, or non-zero with one line on standard error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from matcher import __version__
from matcher.config import load_settings
from matcher.errors import MatcherError


class _Context:
    def __init__(self, policy_path: str | None):
        self.settings = load_settings()
        self.policy_path = policy_path or self.settings.policy_path
        self._policy = None

    @property
    def policy(self):
        if self._policy is None:
            from matcher.policy import load_policy
            self._policy = load_policy(self.policy_path)
        return self._policy


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="matcher")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False), default=None,
              help="Policy TOML (default: MATCHER_POLICY, else the shipped policy).")
@click.pass_context
def cli(ctx, policy_path):
    """Job matching for employment poverty alleviation (Rizhao)."""
    ctx.obj = _Context(policy_path)


# -- world -------------------------------------------------------------------------------------

@cli.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write the world to.")
@click.option("--households", type=click.IntRange(min=1), default=None,
              help="Number of households (default: calibrated to Rizhao's 10,619 working-age poor people).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; same seed, same files.")
@click.pass_obj
def generate(obj, out_dir, households, seed):
    """Write a synthetic Rizhao world (households, workers, jobs, referrals) to OUT."""
    from matcher.generate import generate_world
    summary = generate_world(Path(out_dir), households=households, seed=seed, progress=True)
    for key, value in summary.items():
        click.echo(f"{key}: {value}")


# -- store -------------------------------------------------------------------------------------

@cli.group()
def db():
    """Create, fill and dump the database (MATCHER_DATABASE_URL, default SQLite under instance/)."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning domain errors into one line on stderr."""
    try:
        cli.main(args=argv, prog_name="matcher", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("matcher: aborted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"matcher: {exc.format_message()}", err=True)
        return exc.exit_code
    except MatcherError as exc:
        click.echo(f"matcher: {exc}", err=True)
        return 1
    except (OSError, MemoryError) as exc:
        click.echo(f"matcher: {type(exc).__name__}: {exc}", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
