"""The `matcher` command. Thin: parses arguments and calls the modules that do the work.

Every verb exits 0 on success, or non-zero with one line on standard error.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
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


# -- model -------------------------------------------------------------------------------------

def _load_world(path, obj=None):
    """The world in folder ``path``, or with no folder the store's (MATCHER_DATABASE_URL): its live data."""
    from matcher.schema import load_world
    if path is not None:
        return load_world(path)
    from matcher.store import read_world
    with _store(obj) as engine:
        world = read_world(engine)
    if not len(world.workers) and not len(world.jobs):
        raise click.ClickException("the store holds no world yet: pass a world folder, or `matcher db import DIR` "
                                   "first")
    return world


def _world_today(path):
    """The day a world's failed market referrals are counted back from (policy fallback.failed_referrals): a
    world written by ``matcher generate`` has its own today (its history ends the day before), any other
    folder and the store are counted back from today (None)."""
    if path is None:
        return None
    from matcher.generate import GENERATOR_FILE, TODAY
    return TODAY if (Path(path) / GENERATOR_FILE).is_file() else None


def _iso_date(ctx, param, value):
    """A --cut given as YYYY-MM-DD, else a usage error naming the option (one line, no traceback)."""
    import datetime as dt
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"expected a date YYYY-MM-DD, got {value!r}") from None


_WORLD_ARG = dict(required=False, default=None, type=click.Path(exists=True, file_okay=False))


def _resolve_model(obj, model_path):
    """--model, else MATCHER_MODEL, else the production model in models/ (the prior when none)."""
    from matcher import model as m
    path = model_path or obj.settings.model_path or m.production_path(obj.settings.models_dir)
    if path is None:
        click.echo("matcher: no trained model found; using the documented prior scorer", err=True)
        return m.prior_model()
    return m.load(path)[0]


@cli.command()
@click.argument("world_dir", **_WORLD_ARG)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the artifact and its manifest (default: models/).")
@click.option("--cut", default=None, callback=_iso_date, help="Train on referrals before this date (YYYY-MM-DD), measure on the rest "
              "(default: the policy's latest share).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--track-record/--no-track-record", default=False, show_default=True,
              help="Also learn each worker's, job's, employer's and place's track record (matcher/history.py); "
                   "off by default: it did not improve the ranking on the measured worlds (bench/quality.md).")
@click.pass_obj
def train(obj, world_dir, out_dir, cut, seed, track_record):
    """Fit the model on WORLD_DIR's referrals (without WORLD_DIR: the store's); write
    MODEL_DIR/<version>.joblib and its manifest."""
    import json
    from matcher import model as m
    world = _load_world(world_dir, obj)
    with _spinner("training"):
        fitted, metrics = m.fit(world, obj.policy, cut=cut, random_state=seed, track_record=track_record)
    path = m.save(fitted, out_dir or obj.settings.models_dir, metrics=metrics, data_sha256=m.data_hash(world))
    if fitted.kind == "prior":
        click.echo(f"no usable referral history ({metrics['data'].get('why_prior')}): saved the prior scorer")
    click.echo(json.dumps(metrics, indent=2, ensure_ascii=False))
    click.echo(str(path))


class _spinner:
    """A progress bar for work that reports no steps of its own."""

    def __init__(self, desc):
        self.desc = desc

    def __enter__(self):
        from tqdm import tqdm
        self.bar = tqdm(total=1, desc=self.desc, file=sys.stderr, leave=False)
        return self

    def __exit__(self, *exc):
        self.bar.update(1)
        self.bar.close()


def _scheduler_options(f):
    """--scheduler and --partition-size (SPEC section 9): the per-pair work on a Dask cluster."""
    f = click.option("--partition-size", type=click.IntRange(min=1), default=None,
                     help="With --scheduler: job seekers per partition (default 1,000).")(f)
    return click.option("--scheduler", "scheduler", default=None, metavar="ADDRESS",
                        help="Dask scheduler (tcp://HOST:PORT), or local:N for N local worker processes "
                             "(default: MATCHER_DASK_SCHEDULER; without either, one process).")(f)


def _cluster(obj, scheduler, partition_size=None):
    """The Dask client for --scheduler (else MATCHER_DASK_SCHEDULER), or None for one process."""
    address = scheduler or obj.settings.dask_scheduler
    if not address:
        if partition_size is not None:
            raise click.UsageError("--partition-size needs --scheduler (or MATCHER_DASK_SCHEDULER)")
        return None
    from matcher.distributed import connect, local_workers
    local_workers(address)          # a malformed address fails now, before the world is read
    return connect(address)


@cli.command()
@click.argument("world_dir", **_WORLD_ARG)
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Artifact or manifest (default: MATCHER_MODEL, else the production model).")
@click.option("--k", type=click.IntRange(min=1, max=1000), default=10, show_default=True)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False))
@_scheduler_options
@click.pass_obj
def recommend(obj, world_dir, model_path, k, out_path, scheduler, partition_size):
    """Top-k eligible jobs for every worker of WORLD_DIR (without WORLD_DIR: the store's), as CSV."""
    from matcher.model import _atomic_write
    from matcher.ranking import Engine
    cluster = _cluster(obj, scheduler, partition_size)
    world = _load_world(world_dir, obj)
    engine = Engine.build(world, _resolve_model(obj, model_path), obj.policy, today=_world_today(world_dir))
    if cluster is not None:
        from matcher import distributed
        with cluster as client:
            done = distributed.recommend(client, engine.W, engine.J, engine.model, engine.policy, out_path, k=k,
                                         size=partition_size or distributed.PARTITION_SIZE, progress=True)
        click.echo(f"{done['rows']} recommendations for {done['workers']} workers -> {out_path}")
        return
    recs = engine.recommend(k=k, progress=True)
    _atomic_write(Path(out_path), recs.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    click.echo(f"{len(recs)} recommendations for {recs['worker_id'].nunique()} workers -> {out_path}")


@cli.command("allocate")
@click.argument("world_dir", **_WORLD_ARG)
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Artifact or manifest (default: MATCHER_MODEL, else the production model).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="plan.csv: household_id, worker_id, job_id, score, tier, subsidy_yuan.")
@_scheduler_options
@click.pass_obj
def allocate_cmd(obj, world_dir, model_path, out_path, scheduler, partition_size):
    """One city-wide plan for WORLD_DIR (without WORLD_DIR: the store's): graduates first, then the
    most households with a member in work, then the most expected hires; prints its summary."""
    from matcher.allocation import PLAN_COLUMNS, allocate, format_summary
    from matcher.model import _atomic_write
    from matcher.ranking import Engine
    cluster = _cluster(obj, scheduler, partition_size)
    world = _load_world(world_dir, obj)
    engine = Engine.build(world, _resolve_model(obj, model_path), obj.policy)
    if cluster is not None:
        from matcher import distributed
        with cluster as client:
            plan = distributed.allocate(client, engine, size=partition_size or distributed.PARTITION_SIZE,
                                        reasons=False, progress=True)
    else:
        plan = allocate(engine, reasons=False, progress=True)
    _atomic_write(Path(out_path), plan.rows[PLAN_COLUMNS].to_csv(index=False, lineterminator="\n").encode("utf-8"))
    click.echo(format_summary(plan.summary))
    click.echo(f"{len(plan.rows)} placements -> {out_path}")


# -- evaluation --------------------------------------------------------------------------------

@cli.command("sites")
@click.argument("world_dir", **_WORLD_ARG)
@click.option("--kind", required=True, type=click.Choice(["workshop_factory", "workshop_home", "enterprise",
                                                         "public_welfare"]), help="The kind of the new jobs.")
@click.option("--slots", required=True, type=click.IntRange(min=1, max=10_000), help="Slots of each new job.")
@click.option("--n", "n", required=True, type=click.IntRange(min=1, max=1_000), help="How many sites.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="sites.csv: rank, village_code, town_code, county_code, lat, lon, households_covered, "
                   "workers_placed.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Artifact or manifest (default: MATCHER_MODEL, else the production model).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Also write sites.html and sites.png (the sites and the uncovered households) here.")
@click.pass_obj
def sites_cmd(obj, world_dir, kind, slots, n, out_path, model_path, report_dir):
    """Where N new workshops (or welfare posts) of S slots would let the city-wide plan cover the most
    households it leaves uncovered (WORLD_DIR, or the store's world); prints the summary as JSON."""
    import json

    from matcher import sites
    from matcher.model import _atomic_write
    from matcher.ranking import Engine
    world = _load_world(world_dir, obj)
    engine = Engine.build(world, _resolve_model(obj, model_path), obj.policy)
    rows, summary = sites.suggest(engine, world, kind, slots, n, progress=True)
    _atomic_write(Path(out_path), rows.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    if report_dir:
        from matcher.allocation import allocate
        from matcher.capacity_report import write_sites
        uncovered = allocate(engine, reasons=False).uncovered["household_id"]
        write_sites(world, rows, summary, uncovered, report_dir)
    click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    click.echo(f"{len(rows)} sites -> {out_path}")


@cli.command("simulate")
@click.argument("world_dir", **_WORLD_ARG)
@click.option("--days", required=True, type=click.IntRange(min=1, max=3650), help="Days to replay.")
@click.option("--policy", required=True, type=click.Choice(["greedy", "plan", "dual"]),
              help="greedy: each worker's best job now; plan: the plan re-solved as jobs arrive; "
                   "dual: by score - contention.")
@click.option("--seed", type=int, default=0, show_default=True, help="Draws the households' visit days.")
@click.option("--cycle", type=click.IntRange(min=1, max=365), default=30, show_default=True,
              help="Days between two visits of a household.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Artifact or manifest (default: MATCHER_MODEL, else the production model).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Also write simulate.html and simulate.png (households covered over the days) here.")
@click.pass_obj
def simulate_cmd(obj, world_dir, days, policy, seed, cycle, model_path, report_dir):
    """Replay DAYS days of jobs arriving (on their posted_on day) and volunteers placing people under
    POLICY; prints JSON with households covered and expected hires against the hindsight optimum."""
    import json

    from matcher import simulate
    from matcher.ranking import Engine
    world = _load_world(world_dir, obj)
    engine = Engine.build(world, _resolve_model(obj, model_path), obj.policy)
    out = simulate.simulate(engine, world, days, policy, truth=simulate.truth_of(world_dir), seed=seed,
                            cycle=cycle, progress=True)
    if report_dir:
        from matcher.capacity_report import write_simulation
        write_simulation([out], report_dir)
    click.echo(json.dumps(out, ensure_ascii=False))


def _model_and_manifest(obj, model_path):
    """--model, else MATCHER_MODEL, else the production model; (None, None) when there is none."""
    from matcher import model as m
    path = model_path or obj.settings.model_path or m.production_path(obj.settings.models_dir)
    if path is None:
        return None, None
    return m.load(path)


@cli.command()
@click.argument("world_dir", **_WORLD_ARG)
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Artifact or manifest (default: MATCHER_MODEL, else the production model; with none, a model "
                   "is fitted on the referrals before the cut).")
@click.option("--cut", default=None, callback=_iso_date, help="Test on referrals on or after this date, YYYY-MM-DD (default: the "
              "model's training cut, else the policy's latest share). A cut inside the model's training data is refused.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Also write report.html, its PNGs and metrics.json to this folder.")
@click.option("--k", type=click.IntRange(min=1, max=100), default=5, show_default=True,
              help="Cut of each job's list for precision@k and NDCG@k.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=20, max=10000), default=200, show_default=True,
              help="Bootstrap resamples for the intervals.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap (and of a fitted model).")
@click.pass_obj
def evaluate(obj, world_dir, model_path, cut, report_dir, k, n_boot, seed):
    """Measure a model on WORLD_DIR's later referrals (without WORLD_DIR: the store's) beside the
    baselines; metrics JSON on stdout."""
    import json
    from matcher import evaluation as ev
    world = _load_world(world_dir, obj)
    model, manifest = _model_and_manifest(obj, model_path)
    if model is None:
        click.echo("matcher: no trained model found; fitting one on the referrals before the cut", err=True)
    with _spinner("evaluating"):
        result = ev.evaluate(world, obj.policy, model, manifest, cut=cut, k=k, n_boot=n_boot, seed=seed)
    for warning in result.metrics["warnings"]:
        click.echo(f"matcher: warning: {warning}", err=True)
    if report_dir:
        with _spinner("report"):
            path = ev.write_report(result, report_dir)
        click.echo(f"report -> {path}", err=True)
    click.echo(json.dumps(result.metrics, indent=2, ensure_ascii=False))


@cli.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--world", "world_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="A world folder whose later referrals both models are tested on (default: the store's, "
                   "MATCHER_DATABASE_URL).")
@click.option("--models-dir", type=click.Path(file_okay=False), default=None,
              help="Folder holding the production pointer (default: MATCHER_MODELS_DIR, else models/).")
@click.pass_obj
def promote(obj, model_path, world_dir, models_dir):
    """Make MODEL_PATH the production model if it passes the policy's quality gate, tested with the
    production model on the store's later referrals (or --world DIR's).

    Refused when it is worse than production beyond [gate] auc_tolerance or
    precision_at_5_tolerance, or when a group's calibration error exceeds max_group_ece;
    with no production model yet, when it does not beat every baseline on AUC.
    """
    import json
    from matcher import evaluation as ev
    world = _load_world(world_dir, obj)
    with _spinner("gate"):
        result, target = ev.promote(world, obj.policy, model_path, models_dir or obj.settings.models_dir)
    for warning in result.checks.get("warnings", []):
        click.echo(f"matcher: warning: {warning}", err=True)
    click.echo(json.dumps(result.checks, indent=2, ensure_ascii=False))
    if not result.ok:
        raise click.ClickException(f"refused {Path(model_path).name}: {result.message}")
    click.echo(f"promoted {target.stem}: production -> {target}")


# -- store -------------------------------------------------------------------------------------

@cli.group()
def db():
    """Create, fill and dump the database (MATCHER_DATABASE_URL, default SQLite under instance/)."""


def _store_engine(obj):
    from matcher.store import make_engine
    return make_engine(obj.settings.database_url)


@contextmanager
def _store(obj):
    """The store's engine, its schema checked (one line when it is not ready), disposed afterwards."""
    from matcher.store import check_schema
    engine = _store_engine(obj)
    try:
        check_schema(engine)
        yield engine
    finally:
        engine.dispose()


@db.command("init")
@click.pass_obj
def db_init(obj):
    """Create the tables, or upgrade them to this version's schema. Harmless to repeat."""
    from matcher.store import init_db, safe_url
    engine = _store_engine(obj)
    try:
        revision = init_db(engine)
    finally:
        engine.dispose()
    click.echo(f"database {safe_url(obj.settings.database_url)} is at schema revision {revision}")


@db.command("import")
@click.argument("world_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--keep-stored", is_flag=True,
              help="Keep rows already stored with other values as they are (the service changed them since: "
                   "hires, closed jobs) instead of refusing the import; new rows are still added.")
@click.pass_obj
def db_import(obj, world_dir, keep_stored):
    """Validate WORLD_DIR and add it to the database in one transaction (creating the tables if needed).

    Rows already stored with the same values are skipped; a stored id with other values is refused,
    or with --keep-stored left as stored.
    """
    from matcher.schema import load_world
    from matcher.store import import_world, init_db
    world = load_world(world_dir)
    engine = _store_engine(obj)
    try:
        init_db(engine)
        result = import_world(engine, world, progress=True, keep_stored=keep_stored)
    finally:
        engine.dispose()
    for name, n in result.as_dict().items():
        kept = f", {n['kept']} kept as stored" if n["kept"] else ""
        click.echo(f"{name}: {n['inserted']} inserted, {n['unchanged']} unchanged{kept}")


@db.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--pseudonymise", is_flag=True, help="Leave out names and phone numbers: people by id only.")
@click.pass_obj
def db_export(obj, out_dir, pseudonymise):
    """Write the stored world to OUT_DIR as the four CSV files of the data contract."""
    from matcher.store import export_world
    with _store(obj) as engine:
        written = export_world(engine, out_dir, pseudonymise=pseudonymise)
    for name, n in written.items():
        click.echo(f"{name}: {n} rows")
    click.echo(f"-> {out_dir}")


# -- access ------------------------------------------------------------------------------------

@cli.group()
def token():
    """Create and revoke API tokens (the database keeps only their SHA-256)."""


@token.command("create")
@click.option("--role", required=True, type=click.Choice(["volunteer", "recruiter", "evaluator", "admin"]))
@click.option("--name", required=True, help="Who holds the token; recruiters' jobs are owned by this name.")
@click.option("--county", default=None, help="6-digit county code; required for volunteers.")
@click.option("--expires-days", type=click.IntRange(min=1), default=None, help="Expire after N days (default: never).")
@click.pass_obj
def token_create(obj, role, name, county, expires_days):
    """Create a token and print it, alone on the last line; it is not shown again."""
    import datetime as dt
    from matcher.store import create_token
    expires = None
    if expires_days is not None:
        expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=expires_days)
    with _store(obj) as engine:
        secret = create_token(engine, role, name, county=county, expires_at=expires)
    scope = f", county {county}" if county else ""
    until = f", expires {expires:%Y-%m-%d %H:%M} UTC" if expires else ""
    click.echo(f"token for {name} ({role}{scope}{until}); store it now, it is not shown again:")
    click.echo(secret)


@token.command("revoke")
@click.argument("name")
@click.option("--id", "by_id", is_flag=True, help="NAME is a token id, not a name.")
@click.pass_obj
def token_revoke(obj, name, by_id):
    """Revoke every live token named NAME (or, with --id, the token with that id)."""
    from matcher.store import revoke_token
    if by_id and not name.isdigit():
        raise click.BadParameter(f"expected a numeric id, got {name!r}", param_hint="NAME")
    with _store(obj) as engine:
        n = revoke_token(engine, int(name) if by_id else name)
    click.echo(f"revoked {n} token(s)")


@cli.group()
def user():
    """Accounts for people who sign in to the pages (the store keeps only argon2 hashes of passwords)."""


@user.command("create")
@click.option("--role", required=True, type=click.Choice(["volunteer", "recruiter", "evaluator", "admin"]))
@click.option("--login", required=True, help="What the person types to sign in (lower-case letters, digits, _ . @ -).")
@click.option("--display-name", default=None, help="The name the pages greet (default: the login).")
@click.option("--county", default=None, help="6-digit county code; required for volunteers.")
@click.option("--villages", default=None, help="Village codes separated by ';' narrowing a volunteer's county.")
@click.option("--generate", is_flag=True, help="Make a random password and print it alone on the last line.")
@click.pass_obj
def user_create(obj, role, login, display_name, county, villages, generate):
    """Create an account. The password is read from standard input (its first line), unless --generate."""
    import secrets
    from matcher.store.users import create_user
    if generate:
        password = secrets.token_urlsafe(12)
    else:
        stdin = click.get_text_stream("stdin")
        if stdin.isatty():
            password = click.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
        else:
            password = stdin.readline().rstrip("\r\n")
    with _store(obj) as engine:
        info = create_user(engine, role=role, login=login, password=password, display_name=display_name,
                           county=county, villages=villages or ())
    scope = f", county {info.county_code}" if info.county_code else ""
    scope += f", villages {';'.join(info.villages)}" if info.villages else ""
    click.echo(f"user {info.login} ({info.role}{scope}) created")
    if generate:
        click.echo("password (store it now, it is not shown again):")
        click.echo(password)


@user.command("disable")
@click.argument("login")
@click.pass_obj
def user_disable(obj, login):
    """Disable LOGIN's account and end its sessions at once, in every service process."""
    from matcher.store.users import disable_user
    with _store(obj) as engine:
        info = disable_user(engine, login)
    click.echo(f"user {info.login} disabled; its sessions are ended")


@user.command("list")
@click.pass_obj
def user_list(obj):
    """Every account: login, role, county, villages, state, display name (tab-separated)."""
    from matcher.store.users import list_users
    with _store(obj) as engine:
        rows = list_users(engine)
    click.echo("login\trole\tcounty\tvillages\tstate\tdisplay_name")
    for u in rows:
        click.echo("\t".join([u.login, u.role, u.county_code or "", ";".join(u.villages),
                              "disabled" if u.disabled else "active", u.display_name]))


# -- service -----------------------------------------------------------------------------------

@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: the number of CPUs, 2 to 8).")
@click.pass_obj
def serve(obj, host, port, workers):
    """Serve the HTTP API, its docs (/docs) and the web pages under gunicorn."""
    from matcher.api.serve import run
    run(host=host, port=port, workers=workers, instance_dir=obj.settings.instance_dir)


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
