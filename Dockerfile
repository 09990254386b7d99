# The Modelplane operator image: `modelplane run ...` (the Helm chart passes the arguments).
#   docker build -t ghcr.io/modelplane/modelplane:0.1.0 .
# Two stages: the first installs the package and its dependencies into a virtual
# environment; the second copies only that environment onto a clean base, so no build
# tools or sources end up in the image.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/modelplane
WORKDIR /src
# Only what `pip install .` reads (see .dockerignore).
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/modelplane/bin/pip install .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="modelplane" \
      org.opencontainers.image.description="Kubernetes operator that sizes, places and scales language-model serving" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed, unprivileged user: the chart's securityContext runs as 65532 with
# runAsNonRoot, and a read-only root filesystem (the chart mounts an emptyDir on /tmp).
RUN groupadd --gid 65532 modelplane \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin modelplane
COPY --from=build /opt/modelplane /opt/modelplane
ENV PATH=/opt/modelplane/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
# kopf's liveness endpoint (/healthz) and the Prometheus metrics, as the chart configures them.
EXPOSE 8080 9090
ENTRYPOINT ["modelplane"]
CMD ["run", "--liveness=http://0.0.0.0:8080/healthz", "--metrics-port=9090", "--metrics-address=0.0.0.0"]
