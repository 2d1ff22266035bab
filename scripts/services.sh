#!/usr/bin/env bash
# Make sure the PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) the tests use are up.
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

# Redis on 127.0.0.1:6379, for the tests of what several processes share.
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
if ! redis_up && command -v redis-server >/dev/null 2>&1; then
  echo "starting Redis" >&2
  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >/dev/null || true
  for _ in $(seq 1 30); do redis_up && break; sleep 0.2; done
fi
if redis_up; then echo "Redis: up on 127.0.0.1:6379" >&2; else echo "Redis: not available; its tests will fail" >&2; fi
