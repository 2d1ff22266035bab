#!/usr/bin/env bash
# Make sure the PostgreSQL the database tests use is up on 127.0.0.1:5432.
# On this machine kind it is installed but may have stopped; start it with the
# same command the machine uses. Nothing here is needed for SQLite-only use.
set -u
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
  fi
fi
if pg_up; then echo "PostgreSQL: up on 127.0.0.1:5432" >&2; else echo "PostgreSQL: not available; its tests will fail" >&2; fi
