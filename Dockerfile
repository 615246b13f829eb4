# Coffer's image, built from source (needs a registry for the Rust and Debian images):
#
#   docker compose build          (or: docker build -t coffer:local .)
#
# Without a registry, build the same image from a local Debian base and a binary built on the
# host instead: scripts/docker-image.sh (docker/Dockerfile.prebuilt). Both images hold no key
# or secret: certificates and secrets are made at run time into volumes (docker-compose.yml).
ARG RUST_IMAGE=rust:1.95-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p coffer-node && cp target/release/coffer /coffer

FROM ${BASE_IMAGE}
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build /coffer /usr/local/bin/coffer
COPY docker/compose-init.sh /usr/local/bin/coffer-compose-init
# Owned by the unprivileged user, so named volumes mounted there start out writable by it.
RUN groupadd -r -g 10001 coffer \
  && useradd -r -u 10001 -g coffer -d /data -s /usr/sbin/nologin coffer \
  && mkdir -p /data /drives/1 /drives/2 /certs \
  && chown coffer:coffer /data /drives/1 /drives/2 \
  && chmod 0755 /usr/local/bin/coffer-compose-init
USER coffer
WORKDIR /data
ENV COFFER_DATA=/data
EXPOSE 9000 9001 9002/udp
ENTRYPOINT ["coffer"]
CMD ["server", "--data", "/data", "--s3-addr", "0.0.0.0:9000", "--admin-addr", "0.0.0.0:9001", "--insecure-http"]
