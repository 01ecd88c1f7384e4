# The offline stand-in for postgres:15: Debian bookworm's PostgreSQL 15 with an entry point
# keeping the official image's contract as the compose file uses it (POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB on first start, data in /var/lib/postgresql/data, pg_isready
# on the PATH, listening on every address with scram-sha-256 passwords, fast shutdown on stop).
ARG DEBIAN_BASE=cxr-offline/debian:bookworm
FROM ${DEBIAN_BASE}
# No cluster at install time: the entry point makes one in the volume on first start.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/offline.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/run/postgresql /var/lib/postgresql/data \
    && chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql \
    && chmod 2777 /var/run/postgresql
ENV LANG=C.UTF-8 \
    PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
