# Steward's least-privilege policy for Vault and OpenBao.
#
# Steward reads metadata and revokes credentials by accessor. It never reads
# a KV value: it has no access to <kv2 mount>/data/* and only `list` on KV
# version 1 mounts. Bind this policy to the token, AppRole or Kubernetes role
# Steward logs in with, for example:
#
#   bao policy write steward deploy/vault/steward-policy.hcl
#   bao write auth/approle/role/steward token_policies=steward
#
# The mount paths below are the defaults: AppRole at auth/approle, KV version
# 2 at secret/ and KV version 1 at kv/. Copy the matching blocks for each
# further mount, or limit discovery with the connector's approle_mounts and
# kv_mounts options.

# Find AppRole and KV mounts (mount names and types only).
path "sys/auth" {
  capabilities = ["read"]
}

path "sys/mounts" {
  capabilities = ["read"]
}

# Read ACL policies to decide each credential's risk tier.
path "sys/policies/acl/*" {
  capabilities = ["read"]
}

# Tokens: list accessors (Vault requires sudo for this list), look them up
# and revoke them by accessor. Token ids are never requested.
path "auth/token/accessors" {
  capabilities = ["list", "sudo"]
}

path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}

path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}

# AppRole: read role settings, list secret-id accessors, look them up and
# destroy them by accessor. Role ids and secret-ids are never requested.
path "auth/approle/role" {
  capabilities = ["list"]
}

path "auth/approle/role/+" {
  capabilities = ["read"]
}

path "auth/approle/role/+/secret-id" {
  capabilities = ["list"]
}

path "auth/approle/role/+/secret-id-accessor/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/+/secret-id-accessor/destroy" {
  capabilities = ["update"]
}

# KV version 2 at secret/: metadata only (custom_metadata, versions, times).
path "secret/metadata/*" {
  capabilities = ["list", "read"]
}

# KV version 1 at kv/: paths only.
path "kv/*" {
  capabilities = ["list"]
}
