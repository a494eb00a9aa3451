#!/usr/bin/env bash
# Validates the deployment files under deploy/ (docs/deploy.md):
#  - every Kubernetes manifest parses; built-in kinds against the Kubernetes OpenAPI schemas
#    (kubernetes-validate, strict: unknown fields fail) for each of K8S_VERSIONS;
#  - KEDA's ScaledObject and TriggerAuthentication against a JSON Schema made from KEDA's
#    CRD models (PyPI cloudcoil-models-keda), every object closed to unknown fields;
#  - the RabbitmqCluster by a check of its fields and types in Python (no CRD schema is
#    reachable from here: GitHub is not, and no PyPI package ships it);
#  - the kustomization: every resource exists and parses, rendered by `kubectl kustomize`
#    when kubectl is installed;
#  - the files agree: config keys exist in config/genworker.yaml, GPUs = slots x
#    gpus_per_job, KEDA's targetValue = slots, grace periods above drain + grace, probe
#    ports, the KEDA URL names the API Service;
#  - the systemd units with `systemd-analyze verify`, on temporary copies whose genworker
#    path is /bin/true (the binary is not installed here);
#  - then mutates copies and expects each check to fail (the checks can fail).
# Exits non-zero on any failure. Installs its Python tools into .run/venv-deploy.
set -euo pipefail
script=$(realpath "${BASH_SOURCE[0]}")
cd "$(dirname "$script")/.."

venv=.run/venv-deploy
if ! "$venv/bin/python" -c 'import kubernetes_validate, cloudcoil.models.keda, yaml, jsonschema' 2>/dev/null; then
    echo "validate-deploy: installing kubernetes-validate and cloudcoil-models-keda into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0 cloudcoil-models-keda
fi

export K8S_VERSIONS=${K8S_VERSIONS:-"1.29.0 1.37.0"}
kustomize_out=$(mktemp)
units_dir=$(mktemp -d)
trap 'rm -rf "$kustomize_out" "$units_dir"' EXIT

status=0
if command -v kubectl >/dev/null && kubectl kustomize deploy/kubernetes >"$kustomize_out" 2>"$kustomize_out.err"; then
    export RENDERED="$kustomize_out"
    echo "ok   kubectl kustomize deploy/kubernetes renders ($(grep -c '^kind:' "$kustomize_out") objects)"
elif command -v kubectl >/dev/null; then
    echo "FAIL kubectl kustomize deploy/kubernetes: $(cat "$kustomize_out.err")"
    status=1
else
    echo "skip kubectl kustomize: kubectl not installed (resources are checked to exist and parse)"
fi
rm -f "$kustomize_out.err"

"$venv/bin/python" - <<'PY' || status=1
import copy, glob, json, os, re, sys
import yaml, jsonschema, kubernetes_validate
from cloudcoil.models.keda import v1alpha1 as keda

failures = []
def ok(msg): print(f"ok   {msg}")
def fail(msg): failures.append(msg); print(f"FAIL {msg}")

KDIR = "deploy/kubernetes"
SDIR = "deploy/systemd"
VERSIONS = os.environ["K8S_VERSIONS"].split()

# --- the known config keys: config/genworker.yaml holds every key with its default ----------
with open("config/genworker.yaml") as f:
    text = f.read()
# Commented-out keys (`  # name: ...`) are keys too: uncomment `# key: value` lines.
uncommented = re.sub(r"^(\s*)# ([a-z_]+: )", r"\1\2", text, flags=re.M)
DEFAULTS = yaml.safe_load(uncommented)

def unknown_keys(cfg, ref=DEFAULTS, path=""):
    bad = []
    if not isinstance(cfg, dict):
        return [f"{path or 'top'}: not a mapping"]
    for k, v in cfg.items():
        p = f"{path}.{k}" if path else k
        if k not in ref:
            bad.append(p)
        elif isinstance(ref[k], dict) and ref[k]:
            bad += unknown_keys(v, ref[k], p)
        elif isinstance(ref[k], dict) and not isinstance(v, dict):
            bad.append(f"{p} (a mapping expected)")
        elif isinstance(ref[k], bool) != isinstance(v, bool) or (
                isinstance(ref[k], int) and not isinstance(ref[k], bool) and not isinstance(v, int)):
            bad.append(f"{p} (type {type(v).__name__}, default is {type(ref[k]).__name__})")
    return bad

def get(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            node = DEFAULTS
            for p in dotted.split("."):
                node = node[p]
            return node
    return node

# --- load every manifest -------------------------------------------------------------------
def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]

def check_k8s(docs_by_file):
    """Returns the objects, after the per-object checks."""
    objects = []
    for path, docs in docs_by_file.items():
        for d in docs:
            name = f"{os.path.basename(path)}: {d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
            if not all(k in d for k in ("apiVersion", "kind", "metadata")) or "name" not in d["metadata"]:
                fail(f"{name}: apiVersion, kind and metadata.name are required"); continue
            objects.append((path, d))
            group = d["apiVersion"].split("/")[0] if "/" in d["apiVersion"] else ""
            if d["kind"] == "Kustomization":
                continue
            if group == "keda.sh":
                check_keda(name, d)
            elif group == "rabbitmq.com":
                check_rabbitmqcluster(name, d)
            else:
                for v in VERSIONS:
                    try:
                        kubernetes_validate.validate(d, v, strict=True)
                        ok(f"{name}: Kubernetes {v} schema (strict)")
                    except kubernetes_validate.ValidationError as e:
                        fail(f"{name}: Kubernetes {v}: {'.'.join(map(str, e.path))}: {e.message}")
                    except Exception as e:  # unknown kind or version
                        fail(f"{name}: Kubernetes {v}: {e}")
    return objects

# KEDA: JSON Schema of the CRD models, closed to unknown fields (the models themselves ignore extras).
def closed(schema):
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for v in schema.values():
            closed(v)
    elif isinstance(schema, list):
        for v in schema:
            closed(v)
    return schema

KEDA_SCHEMAS = {
    "ScaledObject": closed(keda.ScaledObject.model_json_schema(by_alias=True, mode="validation")),
    "TriggerAuthentication": closed(keda.TriggerAuthentication.model_json_schema(by_alias=True, mode="validation")),
}

def check_keda(name, d):
    schema = KEDA_SCHEMAS.get(d["kind"])
    if schema is None:
        fail(f"{name}: no KEDA schema for this kind"); return
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(d), key=lambda e: list(e.path))
    for e in errors:
        fail(f"{name}: KEDA CRD schema: {'.'.join(map(str, e.path))}: {e.message[:200]}")
    if d["apiVersion"] != "keda.sh/v1alpha1":
        fail(f"{name}: apiVersion must be keda.sh/v1alpha1")
    if not errors:
        ok(f"{name}: KEDA CRD schema (cloudcoil-models-keda, closed to unknown fields)")
    if d["kind"] == "ScaledObject":
        for t in d["spec"].get("triggers", []):
            md = t.get("metadata", {})
            if t.get("type") != "metrics-api":
                continue
            missing = [k for k in ("url", "valueLocation", "targetValue") if k not in md]
            if missing:
                fail(f"{name}: metrics-api trigger lacks {missing}")
            for k in ("targetValue", "activationTargetValue"):
                if k in md and not re.fullmatch(r"\d+(\.\d+)?", str(md[k])):
                    fail(f"{name}: {k} must be a number in a string, not {md[k]!r}")
            if md.get("authMode") not in (None, "bearer", "apiKey", "basic", "tls"):
                fail(f"{name}: authMode {md.get('authMode')!r} is not one the metrics-api scaler knows")

RMQ_SPEC = {"replicas": int, "image": str, "imagePullSecrets": list, "service": dict, "persistence": dict,
            "resources": dict, "affinity": dict, "tolerations": list, "rabbitmq": dict, "tls": dict,
            "override": dict, "skipPostDeploySteps": bool, "terminationGracePeriodSeconds": int,
            "secretBackend": dict, "delayStartSeconds": int}
def check_rabbitmqcluster(name, d):
    bad = []
    if d["apiVersion"] != "rabbitmq.com/v1beta1" or d["kind"] != "RabbitmqCluster":
        bad.append("apiVersion/kind must be rabbitmq.com/v1beta1 RabbitmqCluster")
    spec = d.get("spec") or {}
    for k, v in spec.items():
        if k not in RMQ_SPEC:
            bad.append(f"spec.{k}: unknown field")
        elif not isinstance(v, RMQ_SPEC[k]) or (RMQ_SPEC[k] is int and isinstance(v, bool)):
            bad.append(f"spec.{k}: {RMQ_SPEC[k].__name__} expected")
    if isinstance(spec.get("replicas"), int) and spec["replicas"] % 2 == 0:
        bad.append("spec.replicas: an odd number keeps a quorum")
    storage = (spec.get("persistence") or {}).get("storage")
    if storage is not None and not re.fullmatch(r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?", str(storage)):
        bad.append(f"spec.persistence.storage: {storage!r} is not a quantity")
    extra = set(spec.get("rabbitmq") or {}) - {"additionalConfig", "advancedConfig", "envConfig", "additionalPlugins", "erlangInetConfig"}
    if extra:
        bad.append(f"spec.rabbitmq: unknown fields {sorted(extra)}")
    conf = (spec.get("rabbitmq") or {}).get("additionalConfig", "")
    if "consumer_timeout" not in conf:
        bad.append("spec.rabbitmq.additionalConfig: lacks consumer_timeout (config/rabbitmq.conf)")
    with open("config/rabbitmq.conf") as f:
        want = {l.split("=")[0].strip(): l.split("=", 1)[1].strip() for l in f if "=" in l and not l.startswith("#")}
    have = {l.split("=")[0].strip(): l.split("=", 1)[1].strip() for l in conf.splitlines() if "=" in l}
    for k, v in want.items():
        if have.get(k) != v:
            bad.append(f"additionalConfig {k} = {have.get(k)} differs from config/rabbitmq.conf ({v})")
    for b in bad:
        fail(f"{name}: {b}")
    if not bad:
        ok(f"{name}: fields and types (Python check; no CRD schema available)")

def find(objects, kind, name=None):
    for _, d in objects:
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name):
            return d
    return None

def check_consistency(objects):
    cm = find(objects, "ConfigMap", "genworker-config")
    try:
        cfg = yaml.safe_load(cm["data"]["genworker.yaml"])
    except Exception as e:
        fail(f"ConfigMap genworker-config: genworker.yaml: {e}"); return
    bad = unknown_keys(cfg)
    fail(f"ConfigMap genworker.yaml: keys not in config/genworker.yaml: {bad}") if bad else ok("ConfigMap genworker.yaml: every key exists in config/genworker.yaml, types match the defaults")
    if "url" in (cfg.get("amqp") or {}) or "urls" in (cfg.get("amqp") or {}):
        fail("ConfigMap: amqp.url(s) must come from the Secret (GENWORKER_AMQP_URL), not the ConfigMap")
    slots, per_job = get(cfg, "worker.slots"), get(cfg, "wan.gpus_per_job")
    drain, grace = get(cfg, "shutdown.drain_timeout_s"), get(cfg, "supervisor.grace_s")
    mport, dport = get(cfg, "metrics.port"), get(cfg, "dashboard.port")

    w = find(objects, "Deployment", "genworker-worker")
    pod = w["spec"]["template"]
    c = next(x for x in pod["spec"]["containers"] if x["name"] == "worker")
    gpus = int(c["resources"]["limits"].get("nvidia.com/gpu", 0))
    fail(f"worker: nvidia.com/gpu {gpus} != worker.slots {slots} x wan.gpus_per_job {per_job}") if gpus != slots * per_job else ok(f"worker: nvidia.com/gpu {gpus} = worker.slots {slots} x wan.gpus_per_job {per_job}")
    tg = pod["spec"].get("terminationGracePeriodSeconds", 30)
    fail(f"worker: terminationGracePeriodSeconds {tg} <= drain {drain} + grace {grace}") if tg <= drain + grace else ok(f"worker: terminationGracePeriodSeconds {tg} > drain_timeout_s {drain} + grace_s {grace}")
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    fail("worker: pod annotation cluster-autoscaler.kubernetes.io/safe-to-evict must be \"false\"") if ann.get("cluster-autoscaler.kubernetes.io/safe-to-evict") != "false" else ok("worker: safe-to-evict \"false\"")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        h = (c.get(probe) or {}).get("httpGet") or {}
        port = ports.get(h.get("port"), h.get("port"))
        if h.get("path") != path or port != mport:
            fail(f"worker: {probe} must be GET {path} on metrics.port {mport}, is {h.get('path')} on {port}")
        else:
            ok(f"worker: {probe} GET {path} on metrics.port {mport}")
    if "preStop" not in (c.get("lifecycle") or {}):
        fail("worker: no preStop hook")
    env = {e["name"]: e for e in c.get("env", [])}
    if "secretKeyRef" not in (env.get("GENWORKER_AMQP_URL", {}).get("valueFrom") or {}):
        fail("worker: GENWORKER_AMQP_URL must come from a Secret")
    if (env.get("GENWORKER_WORKER_NAME", {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
        fail("worker: GENWORKER_WORKER_NAME must be the pod's name")
    else:
        ok("worker: broker URL from a Secret, worker.name = the pod's name")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    ck = get(cfg, "wan.checkpoints")
    m = mounts.get(ck)
    pvc_name = ((vols.get(m["name"]) or {}).get("persistentVolumeClaim") or {}).get("claimName") if m else None
    pvc = find(objects, "PersistentVolumeClaim", pvc_name) if pvc_name else None
    if not (m and m.get("readOnly") and pvc and pvc["spec"]["accessModes"] == ["ReadOnlyMany"]):
        fail(f"worker: wan.checkpoints {ck} must be a read-only mount of a ReadOnlyMany PVC")
    else:
        ok(f"worker: wan.checkpoints {ck} on PVC {pvc_name} (ReadOnlyMany, read-only mount)")
    for key in ("outputs.dir", "worker.lock_dir"):
        if get(cfg, key) not in mounts:
            fail(f"worker: {key} {get(cfg, key)} has no writable volume")
    if get(cfg, "outputs.store") == "s3" and not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env):
        fail("worker: outputs.store s3 without AWS_* credentials in the environment")
    if get(cfg, "metrics.address") == "127.0.0.1":
        fail("worker: metrics.address 127.0.0.1 is unreachable by the kubelet's probes")

    a = find(objects, "Deployment", "genworker-api")
    ac = a["spec"]["template"]["spec"]["containers"][0]
    if ac["args"][:1] != ["dashboard"]:
        fail("api: must run `genworker dashboard`")
    aports = {p["name"]: p["containerPort"] for p in ac.get("ports", [])}
    svc = find(objects, "Service", "genworker-api")
    sp = svc["spec"]["ports"][0]
    tport = aports.get(sp["targetPort"], sp["targetPort"])
    fail(f"api: Service targetPort {tport} != dashboard.port {dport}") if tport != dport else ok(f"api: Service genworker-api -> dashboard.port {dport}")
    if get(cfg, "dashboard.address") == "127.0.0.1":
        fail("api: dashboard.address 127.0.0.1 is unreachable through the Service")
    for probe in ("livenessProbe", "readinessProbe"):
        h = (ac.get(probe) or {}).get("httpGet") or {}
        if h.get("path") != "/healthz" or aports.get(h.get("port"), h.get("port")) != dport:
            fail(f"api: {probe} must be GET /healthz on dashboard.port")

    so = find(objects, "ScaledObject")
    if so:
        if so["spec"]["scaleTargetRef"]["name"] != w["metadata"]["name"]:
            fail("ScaledObject: scaleTargetRef is not the worker Deployment")
        t = next((t for t in so["spec"]["triggers"] if t["type"] == "metrics-api"), None)
        if not t:
            fail("ScaledObject: no metrics-api trigger"); return
        md = t["metadata"]
        ns = KUST.get("namespace", "default")
        want = f"http://{svc['metadata']['name']}.{ns}.svc:{sp['port']}/v1/demand"
        fail(f"ScaledObject: url {md['url']} != {want}") if md["url"] != want else ok(f"ScaledObject: url {want}")
        fail("ScaledObject: valueLocation must be demand") if md.get("valueLocation") != "demand" else None
        fail(f"ScaledObject: targetValue {md['targetValue']} != worker.slots {slots}") if float(md["targetValue"]) != slots else ok(f"ScaledObject: targetValue {md['targetValue']} = worker.slots")
        if t.get("metricType", "AverageValue") != "AverageValue":
            fail("ScaledObject: metricType must be AverageValue (replicas = demand / slots)")
        if so["spec"].get("minReplicaCount", 0) < 0:
            fail("ScaledObject: minReplicaCount < 0")
        sd = so["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior", {}).get("scaleDown")
        if not sd or sd.get("stabilizationWindowSeconds", 300) < 300:
            fail("ScaledObject: scaleDown behavior must be conservative (stabilization >= 300 s)")
        if "authenticationRef" in t:
            ta = find(ALL_OBJECTS, "TriggerAuthentication", t["authenticationRef"]["name"])
            fail("ScaledObject: authenticationRef names no TriggerAuthentication") if not ta else None
            if md.get("authMode") != "bearer":
                fail("ScaledObject: authenticationRef without authMode: bearer")

# --- kustomization ------------------------------------------------------------------------------
with open(f"{KDIR}/kustomization.yaml") as f:
    KUST = yaml.safe_load(f)
listed = {}
for r in KUST.get("resources", []):
    p = f"{KDIR}/{r}"
    if not os.path.isfile(p):
        fail(f"kustomization: resource {r} does not exist"); continue
    try:
        listed[p] = load_docs(p)
        ok(f"kustomization: {r} exists and parses ({len(listed[p])} object(s))")
    except yaml.YAMLError as e:
        fail(f"kustomization: {r}: {e}")
optional = {p: load_docs(p) for p in sorted(glob.glob(f"{KDIR}/*.yaml")) if p not in listed and not p.endswith("kustomization.yaml")}
for p in optional:
    print(f"info {os.path.basename(p)}: optional, not in the kustomization")

print("-- manifests")
objects = check_k8s(listed)
ALL_OBJECTS = objects + check_k8s(optional)
if os.environ.get("RENDERED"):
    rendered = load_docs(os.environ["RENDERED"])
    if len(rendered) != sum(len(v) for v in listed.values()):
        fail("kubectl kustomize rendered a different number of objects than the resources hold")
    for d in rendered:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != KUST.get("namespace"):
            fail(f"rendered {d['kind']}/{d['metadata']['name']}: namespace {d['metadata'].get('namespace')}")
    for d in rendered:
        for v in VERSIONS[:1]:
            if not d["apiVersion"].startswith("keda.sh"):
                try:
                    kubernetes_validate.validate(d, v, strict=True)
                except Exception as e:
                    fail(f"rendered {d['kind']}/{d['metadata']['name']}: {e}")
    ok(f"rendered kustomization: {len(rendered)} objects, all in namespace {KUST.get('namespace')}")
print("-- consistency")
check_consistency(objects)

# --- systemd instance configs --------------------------------------------------------------------
print("-- systemd configs")
names, mports = {}, {}
with open(f"{SDIR}/genworker@.service") as f:
    unit = f.read()
stop = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1))
for p in sorted(glob.glob(f"{SDIR}/*.yaml")):
    with open(p) as f:
        cfg = yaml.safe_load(f)
    bad = unknown_keys(cfg)
    fail(f"{p}: keys not in config/genworker.yaml: {bad}") if bad else ok(f"{os.path.basename(p)}: every key exists in config/genworker.yaml")
    if "worker" not in cfg:
        continue  # the dashboard's
    n, mp = get(cfg, "worker.name"), get(cfg, "metrics.port")
    if n in names: fail(f"{p}: worker.name {n} also in {names[n]}")
    if mp in mports: fail(f"{p}: metrics.port {mp} also in {mports[mp]}")
    names[n], mports[mp] = p, p
    g = get(cfg, "worker.gpus")
    if g and len(g) != get(cfg, "worker.slots") * get(cfg, "wan.gpus_per_job"):
        fail(f"{p}: {len(g)} worker.gpus != worker.slots x wan.gpus_per_job")
    if stop <= get(cfg, "shutdown.drain_timeout_s") + get(cfg, "supervisor.grace_s"):
        fail(f"{p}: TimeoutStopSec {stop} <= drain + grace")
    else:
        ok(f"{os.path.basename(p)}: unique name {n} and metrics.port {mp}; TimeoutStopSec {stop} > drain + grace")
for key, want in (("KillSignal", "SIGTERM"), ("Restart", "on-failure"), ("User", "genworker")):
    if not re.search(rf"^{key}={want}$", unit, re.M):
        fail(f"genworker@.service: {key}={want} missing")
if re.search(r"^PrivateDevices=(yes|true)", unit, re.M):
    fail("genworker@.service: PrivateDevices hides the GPUs")

if failures:
    print(f"validate-deploy: {len(failures)} failure(s)")
    sys.exit(1)
PY

echo "-- systemd-analyze verify"
if command -v systemd-analyze >/dev/null; then
    # Temporary copies: the genworker binary is not installed here, so ExecStart runs /bin/true;
    # EnvironmentFile paths need not exist for verify.
    for u in deploy/systemd/*.service; do
        sed 's#^ExecStart=/usr/local/bin/genworker .*#ExecStart=/bin/true#' "$u" >"$units_dir/$(basename "$u")"
    done
    cp "$units_dir/genworker@.service" "$units_dir/genworker@gpu0.service"
    for u in genworker@gpu0.service genworker-dashboard.service; do
        if out=$(cd "$units_dir" && systemd-analyze verify --man=no "./$u" 2>&1) && [ -z "$out" ]; then
            echo "ok   systemd-analyze verify $u (ExecStart replaced by /bin/true)"
        else
            echo "FAIL systemd-analyze verify $u:"; echo "$out" | sed 's/^/     /'
            status=1
        fi
    done
else
    echo "skip systemd-analyze: not installed"
fi

if [ "${VALIDATE_DEPLOY_NO_SELFTEST:-}" = "" ] && [ "$status" = 0 ]; then
    echo "-- self-test: each broken copy must fail"
    self=$(mktemp -d)
    trap 'rm -rf "$kustomize_out" "$units_dir" "$self"' EXIT
    mutate() {  # name, file, sed expression
        rm -rf "$self/w" && mkdir -p "$self/w/scripts" && cp -r deploy config "$self/w/" && cp "$script" "$self/w/scripts/"
        ln -s "$PWD/.run" "$self/w/.run"
        sed -i "$3" "$self/w/$2"
        if cmp -s "$2" "$self/w/$2"; then echo "FAIL self-test '$1': the mutation changed nothing"; status=1; return; fi
        if (cd "$self/w" && VALIDATE_DEPLOY_NO_SELFTEST=1 bash scripts/validate-deploy.sh >"$self/out" 2>&1); then
            echo "FAIL self-test '$1': passed"; status=1
        else
            echo "ok   self-test '$1' fails: $(grep -m1 '^FAIL' "$self/out" | cut -c1-150)"
        fi
    }
    mutate "unknown Deployment field" deploy/kubernetes/worker-deployment.yaml 's/terminationGracePeriodSeconds: 1900/terminationGracePeriodSecond: 1900/'
    mutate "grace period below the drain" deploy/kubernetes/worker-deployment.yaml 's/terminationGracePeriodSeconds: 1900/terminationGracePeriodSeconds: 600/'
    mutate "GPU limit != slots" deploy/kubernetes/worker-deployment.yaml 's/nvidia.com\/gpu: 1,/nvidia.com\/gpu: 2,/'
    mutate "unknown config key" deploy/kubernetes/configmap.yaml 's/drain_timeout_s: 1800/drain_timeout: 1800/'
    mutate "ScaledObject int where KEDA wants a string" deploy/kubernetes/scaledobject.yaml 's/targetValue: "1"/targetValue: 1/'
    mutate "unknown ScaledObject field" deploy/kubernetes/scaledobject.yaml 's/cooldownPeriod: 900/cooldownPeriods: 900/'
    mutate "RabbitmqCluster even replicas" deploy/kubernetes/rabbitmqcluster.example.yaml 's/replicas: 3/replicas: 2/'
    mutate "kustomization lists a missing file" deploy/kubernetes/kustomization.yaml 's/worker-pdb.yaml/worker-pdbs.yaml/'
    mutate "bad systemd directive" 'deploy/systemd/genworker@.service' 's/^KillMode=control-group/KillMode=everything/'
    mutate "duplicate metrics.port" deploy/systemd/gpu1.yaml 's/port: 9465/port: 9464/'
fi

if [ "$status" = 0 ]; then echo "validate-deploy: all checks passed"; else echo "validate-deploy: FAILED"; fi
exit "$status"
