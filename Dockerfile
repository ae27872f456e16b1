# Shelter as a small image: build with the Rust toolchain, run on Debian slim.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin shelter

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/shelter shelter \
    && mkdir -p /var/lib/shelter && chown shelter /var/lib/shelter
COPY --from=build /src/target/release/shelter /usr/local/bin/shelter
USER shelter
WORKDIR /var/lib/shelter
ENV SHELTER_HOST=0.0.0.0 SHELTER_PORT=8000
EXPOSE 8000
ENTRYPOINT ["shelter"]
CMD ["serve"]
