# The offline stand-in for redis:7: Debian bookworm's Redis 7.0, run as the redis user in
# /data (the volume) with protected mode off, as the official image (which compiles it off).
ARG DEBIAN_BASE=cxr-offline/debian:bookworm
FROM ${DEBIAN_BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 6379
CMD ["redis-server"]
