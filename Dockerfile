# nudger: one image, the command picks the role:
#   docker run IMAGE worker      (arq worker: sends, processes, plans, groups, reports, polls IMAP)
#   docker run IMAGE listen      (inbound SMTP listener)
#   docker run IMAGE web         (one-click unsubscribe, pause/resume/join pages)
#   docker run IMAGE init        (write config if missing, migrate the database)
# Configuration: mount config.toml at /config/config.toml; secrets come from environment variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUDGER_CONFIG=/config/config.toml

WORKDIR /app
# The same install step as the README's "Install" section: pip install .
COPY pyproject.toml README.md config.example.toml ./
COPY nudger ./nudger
COPY templates ./templates
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin nudger \
    && mkdir -p /config /data && chown nudger /data

USER nudger
WORKDIR /data
EXPOSE 2525 8080
ENTRYPOINT ["nudger"]
CMD ["worker"]
