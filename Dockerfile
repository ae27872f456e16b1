# syntax=docker/dockerfile:1
# Shelter as a small image: built with the Rust toolchain, run on Debian slim as a
# non-root user. .dockerignore keeps build output, local databases and secrets out.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin shelter \
    && cp target/release/shelter /usr/local/bin/shelter

FROM debian:bookworm-slim
# The base image is pinned; its packages take Debian's security updates when rebuilt.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/shelter --create-home shelter
COPY --from=build /usr/local/bin/shelter /usr/local/bin/shelter
USER 10001:10001
WORKDIR /var/lib/shelter
ENV SHELTER_HOST=0.0.0.0 \
    SHELTER_PORT=8000 \
    SHELTER_LOG_FORMAT=json
EXPOSE 8000
# Ready means the database (and Redis, when configured) answer. The first start migrates
# the database, hence the start period.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["shelter", "healthcheck"]
ENTRYPOINT ["shelter"]
CMD ["serve"]
