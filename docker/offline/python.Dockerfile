# The offline stand-in for python:3.11-slim-bookworm: Debian bookworm's Python 3.11 with venv
# and pip (built by docker/build-offline.sh; the app image makes its own venv at /opt/venv).
ARG DEBIAN_BASE=cxr-offline/debian:bookworm
FROM ${DEBIAN_BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3.11 python3.11-venv python3-venv python-is-python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ENV LANG=C.UTF-8
CMD ["python3"]
