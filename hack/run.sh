#!/usr/bin/env bash
# The main job on an embedded default. Until the webhook lands this runs the
# offline CLI on the shipped samples: validate as given, as admitted, and
# the mutation podguard would inject.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/podguard
echo "== podguard validate --mutate -f config/samples/workloads (judged as the cluster admits them)"
"$bin" validate --mutate -f config/samples/workloads || true
echo
echo "== podguard mutate --diff -f config/samples/workloads/pod-missing-security.yaml"
"$bin" mutate --diff -f config/samples/workloads/pod-missing-security.yaml
