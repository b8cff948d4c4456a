"""Developer tasks: nox -s tests | lint | typecheck | bench | chaos."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PACKAGES = ["actors", "transports"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (starts private redis-server processes; REDIS_URL overrides)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def chaos(session: nox.Session) -> None:
    """Run only the fault-injection suite: kills, pauses and restarts of Redis and runtimes."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "chaos", "-v", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over both packages."""
    session.install("-e", ".[test]", "mypy>=1.11")
    session.run("mypy", "--strict", *PACKAGES)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: our Redis client vs redis.asyncio, and the runtime vs FastStream."""
    session.install("-e", ".[metrics,otel]", "faststream[redis]")
    session.run("python", "benchmarks/bench_client.py", *session.posargs)
    session.run("python", "benchmarks/bench_runtime.py", *session.posargs)
    session.run("python", "benchmarks/bench_workers.py")
    session.run("python", "benchmarks/bench_cluster.py")
    session.run("python", "benchmarks/bench_poison.py")
    session.run("python", "benchmarks/bench_observe.py")
