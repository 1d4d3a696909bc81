# The LEAD portal image: `portal db upgrade` then `portal serve` under a non-root user.
#
# An editable install on purpose: templates/, migrations/ and policies/ live at the top of the
# repository next to the `portal` package and are found relative to it, so the source tree is
# the installed tree (/app). See deploy/README.md for the whole stack.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORTAL_DATA_DIR=/app/var

# A fixed uid/gid so host-side file permissions (deploy/secrets) can be granted to it.
RUN groupadd --system --gid 10001 portal \
 && useradd --system --uid 10001 --gid portal --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin portal

WORKDIR /app
# .dockerignore keeps .venv, node_modules, var, .git, caches and deploy/secrets out of the image.
COPY . /app
# psycopg[binary] ships its own libpq, so no system packages are needed.
RUN pip install --no-cache-dir -e . \
 && mkdir -p /app/var /app/audit-export /app/tls/ca /app/tls/keycloak \
 && chown portal:portal /app/var /app/audit-export /app/tls/ca /app/tls/keycloak

# The code stays root-owned and read-only to the service; only var/ (and audit-export/ and
# tls/, volumes in docker-compose.yml: the exported checkpoints, the stack's local CA) is
# writable.
USER portal:portal

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# Migrations run before the server accepts traffic; `exec` makes uvicorn PID 1's direct
# replacement so `docker stop` (SIGTERM) reaches it and workers drain cleanly.
CMD ["sh", "-c", "portal db upgrade && exec portal serve --host 0.0.0.0 --port 8000 --workers 4"]
