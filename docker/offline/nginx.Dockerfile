# The offline stand-in for nginx:1.27-alpine: Debian bookworm's nginx (1.22) with the official
# image's layout as the Dockerfile's proxy stage uses it: server blocks in /etc/nginx/conf.d/,
# logs on the container's output, "nginx -g 'daemon off;'", graceful stop on SIGQUIT.
ARG DEBIAN_BASE=cxr-offline/debian:bookworm
FROM ${DEBIAN_BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* \
    && rm -f /etc/nginx/sites-enabled/default \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
