#!/bin/sh
# The one-shot `init` service of docker-compose.yml (runs as root, then exits). Idempotent:
# makes only what is missing, so `docker compose up` after the first time changes nothing.
#
#   /ca            volume `ca`, mounted only here: the cluster CA and its key
#   /nodes/node-I  volume `node-I-certs`: node I's certificate, key and the CA certificate,
#                  owned by the coffer user (uid 10001); node I mounts only its own
#   /secrets       bind mount of ./docker/secrets: the compose secrets the nodes read from
#                  /run/secrets (KMS root key, root credentials, admin token, and the
#                  token of the `vault` profile's OpenBao dev server)
#
# COFFER_NODES (default 4) nodes; node I's certificate names `node-I` and node id I.
set -eu
umask 077
NODES="${COFFER_NODES:-4}"
COFFER_UID=10001

[ -f /ca/ca.pem ] || coffer certs ca --out /ca >/dev/null
i=1
while [ "$i" -le "$NODES" ]; do
  out="/nodes/node-$i"
  mkdir -p "$out"
  if [ ! -f "$out/node-$i.key" ]; then
    coffer certs node --ca /ca --name "node-$i" --node-id "$i" --dns "node-$i" --out "$out" >/dev/null
  fi
  cp /ca/ca.pem "$out/ca.pem"
  chown -R "$COFFER_UID:$COFFER_UID" "$out"
  chmod 0400 "$out/node-$i.key"
  chmod 0444 "$out/node-$i.pem" "$out/ca.pem"
  i=$((i + 1))
done

# A secret: read by the coffer user inside the nodes; readable on the host by the group that
# owns ./docker/secrets (its owner's), nobody else.
group=$(stat -c %g /secrets)
secret() {
  name=$1
  shift
  if [ ! -s "/secrets/$name" ]; then
    "$@" >"/secrets/$name.tmp"
    mv "/secrets/$name.tmp" "/secrets/$name"
    echo "made secret $name"
  fi
  chown "$COFFER_UID:$group" "/secrets/$name"
  chmod 0640 "/secrets/$name"
}
secret kms-root-key sh -c 'head -c 32 /dev/urandom | base64'
secret root-user sh -c 'printf coffer; tr -dc A-Z0-9 </dev/urandom | head -c 12'
secret root-password sh -c "tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40"
secret admin-token sh -c "tr -dc 'A-Za-z0-9' </dev/urandom | head -c 48"
secret openbao-token sh -c "tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32"
echo "certificates for $NODES nodes and secrets in place"
