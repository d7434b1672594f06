"""Alembic environment. init_db() hands us an open connection; the alembic command line does not."""

from __future__ import annotations

import logging.config

from alembic import context

from matcher.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kw) -> None:
    # Our SQLite engines emit BEGIN themselves, so DDL is transactional there too: a failed
    # migration rolls back whole on both backends.
    context.configure(target_metadata=target_metadata, compare_type=True, render_as_batch=True,
                      transactional_ddl=True, **kw)


def run_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url") or _default_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        _configure(connection=conn)
        with context.begin_transaction():
            context.run_migrations()
        return
    from matcher.store.db import make_engine, write_connection
    if config.config_file_name and config.attributes.get("configure_logger", True):
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    engine = make_engine(config.get_main_option("sqlalchemy.url") or _default_url())
    try:
        with write_connection(engine) as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def _default_url() -> str:
    from matcher.config import load_settings
    return load_settings().database_url


if context.is_offline_mode():
    run_offline()
else:
    run_online()
