#!/usr/bin/env bash
# Renders the Kubernetes manifests (deploy/k8s/base and every overlay under
# deploy/k8s/overlays) with kustomize and validates them offline:
#   - every built-in object strictly against the Kubernetes ${K8S_VERSION} OpenAPI schemas with
#     kubernetes-validate (unknown fields and unknown kinds are failures);
#   - custom resources, which have no schema there (the Prometheus Operator's ServiceMonitor),
#     only by name against an explicit list, plus a structural check of what they select;
#   - cross references kustomize does not check: envFrom ConfigMaps exist, $(VAR) references
#     in env name a variable defined before them, probes and Services name container ports
#     that exist, Service, PodDisruptionBudget and ServiceMonitor selectors match something,
#     each StatefulSet's serviceName is a headless Service, volume mounts have a volume;
#   - the replica counts each overlay promises (dev: one of each; prod: 3 etcd, 2 controllers,
#     3 brokers, 2 coordinators).
# Prints one line per directory and exits non-zero on any failure.
#
# Needs kubectl (with kustomize v4.1+ built in, i.e. kubectl 1.22+; a standalone `kustomize`
# is used when kubectl's is older) and python3. kubernetes-validate comes from PyPI into a venv
# under ${XDG_CACHE_HOME:-$HOME/.cache}/strom/k8s-venv on first use; after that no network is
# needed, since its schemas ship in the package.
#
# Environment: K8S_VERSION (default 1.30.0), KUBERNETES_VALIDATE_VERSION (default 1.37.0),
# KUBECTL (default: kubectl on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

k8s_version="${K8S_VERSION:-1.30.0}"
kv_version="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/strom/k8s-venv"
root=deploy/k8s

die() {
    echo "k8s-validate: $*" >&2
    exit 1
}

# --- kustomize -----------------------------------------------------------------------------
kubectl="${KUBECTL:-$(command -v kubectl || true)}"
[[ -n "$kubectl" && -x "$kubectl" ]] ||
    die "kubectl not found; install it (Debian: apt-get install kubernetes-client, which must be 1.22 or newer) or set KUBECTL"

# The kustomize built into kubectl, as major*100+minor (v5.5.0 -> 505); 0 when unknown.
kustomize_level() {
    sed -nE 's/.*[Kk]ustomize[^v]*v([0-9]+)\.([0-9]+).*/\1 \2/p' | head -n1 |
        awk '{ print $1 * 100 + $2 } END { if (NR == 0) print 0 }'
}
level=$("$kubectl" version --client 2>/dev/null | kustomize_level || true)
render=("$kubectl" kustomize)
if ((level < 401)); then
    if command -v kustomize >/dev/null 2>&1 &&
        (($(kustomize version 2>/dev/null | kustomize_level) >= 401)); then
        render=(kustomize build)
    else
        die "$kubectl has kustomize older than v4.1 (the manifests use its labels field); use kubectl 1.22 or newer, or put kustomize v4.1+ on PATH"
    fi
fi

# --- kubernetes-validate -------------------------------------------------------------------
py=""
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import kubernetes_validate' 2>/dev/null; then
    py="$venv/bin/python"
elif python3 -c 'import kubernetes_validate' 2>/dev/null; then
    py=python3
else
    command -v python3 >/dev/null 2>&1 || die "python3 not found (Debian: apt-get install python3 python3-venv)"
    echo "k8s-validate: installing kubernetes-validate $kv_version into $venv" >&2
    if python3 -m venv "$venv" >/dev/null 2>&1; then
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "kubernetes-validate==$kv_version" ||
            die "pip could not install kubernetes-validate into $venv (it needs PyPI once)"
        py="$venv/bin/python"
    else
        rm -rf "$venv"
        echo "k8s-validate: python3 -m venv failed; trying pip install --user" >&2
        python3 -m pip install --quiet --user --disable-pip-version-check \
            "kubernetes-validate==$kv_version" ||
            die "could not install kubernetes-validate: apt-get install python3-venv (or python3-pip), then run this again"
        py=python3
    fi
fi
installed=$("$py" -m kubernetes_validate --version)

# --- render and check ----------------------------------------------------------------------
# Replicas each overlay must have, by StatefulSet name.
declare -A expect=(
    [overlays/dev]="strom-etcd=1 strom-controller=1 strom-broker=1 strom-coordinator=1"
    [overlays/prod]="strom-etcd=3 strom-controller=2 strom-broker=3 strom-coordinator=2"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Splits a rendered stream into built-in objects (for kubernetes-validate) and custom
# resources, checks the cross references and replicas, and prints a summary on success.
cat >"$work/check.py" <<'PY'
import re
import sys

import yaml

rendered, core_out, expected = sys.argv[1], sys.argv[2], sys.argv[3]

# Custom resources that are expected here; their schemas are not in kubernetes-validate.
CUSTOM = {("monitoring.coreos.com", "ServiceMonitor")}
# API groups whose kinds kubernetes-validate knows.
BUILTIN_SUFFIX = ".k8s.io"
BUILTIN_GROUPS = {"", "apps", "batch", "policy", "autoscaling"}

with open(rendered) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]

errors = []
core, custom = [], []
for d in docs:
    group = d.get("apiVersion", "").rpartition("/")[0]
    name = "%s/%s" % (d.get("kind"), d.get("metadata", {}).get("name"))
    if (group, d.get("kind")) in CUSTOM:
        custom.append(d)
    elif group in BUILTIN_GROUPS or group.endswith(BUILTIN_SUFFIX):
        core.append(d)
    else:
        errors.append("%s: custom resource %s is not in the expected list" % (name, d.get("apiVersion")))

with open(core_out, "w") as f:
    yaml.safe_dump_all(core, f, sort_keys=False)


def of_kind(kind):
    return [d for d in docs if d.get("kind") == kind]


def label(d):
    return "%s/%s" % (d["kind"], d["metadata"]["name"])


def matches(selector, labels):
    ok = all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())
    for e in selector.get("matchExpressions") or []:
        v, vals = labels.get(e["key"]), e.get("values") or []
        op = e["operator"]
        ok = ok and {
            "In": v in vals,
            "NotIn": v not in vals,
            "Exists": e["key"] in labels,
            "DoesNotExist": e["key"] not in labels,
        }[op]
    return ok


workloads = [d for d in docs if d.get("kind") in ("StatefulSet", "Deployment", "DaemonSet")]
configmaps = {d["metadata"]["name"]: d.get("data") or {} for d in of_kind("ConfigMap")}
services = of_kind("Service")
var_ref = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def pod_labels(w):
    return w["spec"]["template"]["metadata"].get("labels") or {}


def container_ports(w):
    spec = w["spec"]["template"]["spec"]
    return {
        p.get("name"): p["containerPort"]
        for c in spec.get("containers", []) + spec.get("initContainers", [])
        for p in c.get("ports") or []
    }


for w in workloads:
    where = label(w)
    spec = w["spec"]["template"]["spec"]
    if not matches(w["spec"]["selector"], pod_labels(w)):
        errors.append("%s: selector does not match its pod template" % where)
    volumes = {v["name"] for v in spec.get("volumes") or []}
    volumes |= {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates") or []}
    ports = container_ports(w)
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        cw = "%s container %s" % (where, c["name"])
        defined = set()
        for src in c.get("envFrom") or []:
            ref = src.get("configMapRef")
            if ref:
                if ref["name"] not in configmaps:
                    errors.append("%s: envFrom ConfigMap %s is not rendered" % (cw, ref["name"]))
                else:
                    defined |= set(configmaps[ref["name"]])
        for e in c.get("env") or []:
            for ref in var_ref.findall(e.get("value") or ""):
                if ref not in defined:
                    errors.append("%s: env %s refers to $(%s) before it is defined" % (cw, e["name"], ref))
            defined.add(e["name"])
        for field in ("command", "args"):
            for arg in c.get(field) or []:
                for ref in var_ref.findall(arg):
                    if ref not in defined:
                        errors.append("%s: %s refers to undefined $(%s)" % (cw, field, ref))
        for m in c.get("volumeMounts") or []:
            if m["name"] not in volumes:
                errors.append("%s: mounts unknown volume %s" % (cw, m["name"]))
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            p = c.get(probe) or {}
            for handler in ("httpGet", "tcpSocket", "grpc"):
                port = (p.get(handler) or {}).get("port")
                if isinstance(port, str) and port not in ports:
                    errors.append("%s: %s names unknown port %s" % (cw, probe, port))
                if isinstance(port, int) and port not in ports.values():
                    errors.append("%s: %s uses port %d, which no container declares" % (cw, probe, port))
    if w["kind"] == "StatefulSet":
        svc = [s for s in services if s["metadata"]["name"] == w["spec"].get("serviceName")]
        if not svc or svc[0]["spec"].get("clusterIP") != "None":
            errors.append("%s: serviceName %s is not a headless Service" % (where, w["spec"].get("serviceName")))

for s in services:
    sel = s["spec"].get("selector") or {}
    targets = [w for w in workloads if matches({"matchLabels": sel}, pod_labels(w))]
    if not targets:
        errors.append("%s: selector matches no pod template" % label(s))
    for p in s["spec"].get("ports") or []:
        tp = p.get("targetPort", p["port"])
        for w in targets:
            ports = container_ports(w)
            if (isinstance(tp, str) and tp not in ports) or (isinstance(tp, int) and tp not in ports.values()):
                errors.append("%s: port %s targets %s, which %s does not declare" % (label(s), p.get("name"), tp, label(w)))

for pdb in of_kind("PodDisruptionBudget"):
    if not any(matches(pdb["spec"]["selector"], pod_labels(w)) for w in workloads):
        errors.append("%s: selector matches no pod template" % label(pdb))

for sm in custom:
    if sm["kind"] != "ServiceMonitor":
        continue
    spec = sm.get("spec") or {}
    sel = spec.get("selector")
    eps = spec.get("endpoints") or []
    if not sel or not eps:
        errors.append("%s: needs spec.selector and spec.endpoints" % label(sm))
        continue
    selected = [s for s in services if matches(sel, s["metadata"].get("labels") or {})]
    for ep in eps:
        unknown = set(ep) - {"port", "path", "interval", "scrapeTimeout", "scheme", "honorLabels", "relabelings", "metricRelabelings"}
        if unknown:
            errors.append("%s: endpoint has unexpected fields %s" % (label(sm), sorted(unknown)))
        with_port = [s for s in selected if any(p.get("name") == ep.get("port") for p in s["spec"].get("ports") or [])]
        if not with_port:
            errors.append("%s: no selected Service has a port named %s" % (label(sm), ep.get("port")))

replicas = {w["metadata"]["name"]: w["spec"].get("replicas", 1) for w in workloads}
for item in expected.split():
    name, want = item.split("=")
    if replicas.get(name) != int(want):
        errors.append("%s has %s replicas, expected %s" % (name, replicas.get(name), want))

for e in errors:
    print("  " + e, file=sys.stderr)
if errors:
    sys.exit(1)
print("%d %d %s" % (len(docs), len(core), ",".join(label(d) for d in custom) or "-"))
PY

dirs=("$root/base")
for d in "$root"/overlays/*/; do
    [[ -f "$d/kustomization.yaml" ]] && dirs+=("${d%/}")
done
((${#dirs[@]} > 1)) || die "no overlays under $root/overlays"

echo "kustomize: ${render[*]}; kubernetes-validate $installed --strict -k $k8s_version"
failed=0
for dir in "${dirs[@]}"; do
    rel=${dir#"$root"/}
    out="$work/${rel//\//_}"
    if ! "${render[@]}" "$dir" >"$out.yaml" 2>"$out.err"; then
        echo "$rel: FAILED to render" >&2
        sed 's/^/  /' "$out.err" >&2
        failed=1
        continue
    fi
    if ! summary=$("$py" "$work/check.py" "$out.yaml" "$out.core.yaml" "${expect[$rel]:-}"); then
        echo "$rel: FAILED cross-reference checks (above)" >&2
        failed=1
        continue
    fi
    read -r total ncore customs <<<"$summary"
    # kubernetes-validate only warns about a kind it has no schema for; here that is a failure.
    if ! report=$("$py" -m kubernetes_validate --strict --quiet -k "$k8s_version" "$out.core.yaml" 2>&1) ||
        grep -qE '^(WARN|ERROR|FATAL)' <<<"$report"; then
        echo "$rel: FAILED schema validation against Kubernetes $k8s_version" >&2
        sed 's/^/  /' <<<"$report" >&2
        failed=1
        continue
    fi
    note=""
    [[ "$customs" != "-" ]] && note=" (no schema for custom resources, checked structurally: $customs)"
    echo "$rel: rendered $total objects, valid ($ncore strictly against Kubernetes $k8s_version)$note"
done
exit "$failed"
