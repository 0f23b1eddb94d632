"""Checks of deploy/ (Python 3 stdlib only), each a function that returns the problems it found
as a list of sentences (empty: fine). deploy_test.py runs them on the real files and on broken
copies, which shows each check can fail.

What can be checked on a machine without systemd as PID 1, a container engine or a Kubernetes
API server: the unit with `systemd-analyze verify` plus the settings docs/OPERATIONS.md promises;
the Dockerfile's stages, user, ports, copied files and run-time libraries (against `ldd orderd`);
the manifests' YAML (yamllint) and their structure (names that refer to each other, probes,
volumes, the disruption budget). None of it starts a unit, an image or a pod.
"""

import json
import re
import shlex
import subprocess
from pathlib import Path

import yaml_subset

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

# orderd's worst-case stop after SIGTERM with --drain (nodes/orderd_main.cpp): the leadership
# handoff bound, --request-timeout (10 s) + 1 s for requests in flight, the shutdown bound.
DRAIN_BOUND_S = 20
STOP_WORST_CASE_S = DRAIN_BOUND_S + 11 + 15

# Libraries every Debian 12 image has (Essential or required by apt itself).
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}


# ---- orderd's flags -----------------------------------------------------------------------

def orderd_flags(orderd):
    """The long flags `orderd --help` lists."""
    out = subprocess.run([str(orderd), "--help"], capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL)
    return set(re.findall(r"^\s+(?:-\w \[ )?--([a-z][a-z0-9-]*)", out.stdout, re.M))


def unknown_flags(used, known):
    """Flags in `used` that orderd does not take."""
    return sorted(f for f in set(used) if f not in known)


def flags_in_args(words):
    """--flag and --flag=value words -> flag names."""
    return [w[2:].split("=", 1)[0] for w in words if w.startswith("--")]


# ---- systemd ------------------------------------------------------------------------------

def parse_unit(text):
    """{section: {key: [values]}} of a systemd unit (keys may repeat)."""
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif "=" in line and current is not None:
            key, value = line.split("=", 1)
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def systemd_verify(unit_path, orderd):
    """`systemd-analyze verify` on a copy of the unit whose ExecStart runs `orderd` (verify needs
    the binary to exist). It exits 0 on unknown keys and bad values, printing them: every line
    it prints about the unit counts as a problem."""
    unit_path = Path(unit_path)
    workdir = unit_path.parent / "verify"
    workdir.mkdir(exist_ok=True)
    copy = workdir / "orderd.service"
    copy.write_text(unit_path.read_text().replace("/usr/local/bin/orderd",
                                                  str(Path(orderd).resolve())))
    p = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    problems = [f"systemd-analyze verify: {line}" for line in (p.stdout + p.stderr).splitlines()
                if "orderd.service" in line]
    if p.returncode != 0:
        problems.append(f"systemd-analyze verify exited {p.returncode}: {p.stderr.strip()}")
    return problems


def unit_policy(unit_text):
    """The settings docs/OPERATIONS.md ("Packaging") promises of the unit."""
    s = parse_unit(unit_text).get("Service", {})
    problems = []

    def one(key):
        return (s.get(key) or [None])[-1]

    want = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
            "ProtectHome": "yes", "Restart": "on-failure", "KillSignal": "SIGTERM",
            "StateDirectory": "ordermesh", "StateDirectoryMode": "0700"}
    for key, value in want.items():
        if one(key) != value:
            problems.append(f"{key}={one(key)}, expected {value}")
    if one("User") in (None, "", "root", "0"):
        problems.append(f"User={one('User')}: the node must run as its own user")
    try:
        stop = int(re.fullmatch(r"(\d+)s?", one("TimeoutStopSec") or "").group(1))
        if stop <= STOP_WORST_CASE_S:
            problems.append(f"TimeoutStopSec={stop} s: SIGTERM with --drain may take "
                            f"{STOP_WORST_CASE_S} s")
    except AttributeError:
        problems.append(f"TimeoutStopSec={one('TimeoutStopSec')}: expected seconds")
    try:
        if int(one("LimitNOFILE") or "0") < 4096:
            problems.append(f"LimitNOFILE={one('LimitNOFILE')}: below 4096")
    except ValueError:
        problems.append(f"LimitNOFILE={one('LimitNOFILE')}: not a number")
    exec_start = shlex.split(one("ExecStart") or "")
    if not exec_start or not exec_start[0].endswith("/orderd") or "--config" not in exec_start:
        problems.append(f"ExecStart={one('ExecStart')}: expected orderd --config FILE")
    return problems


def parse_config(text):
    """{flag: value} of a Boost.program_options config file (`flag = value`, # comments)."""
    out = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise ValueError(f"line {lineno}: expected 'flag = value', got '{line}'")
        key, value = (p.strip() for p in line.split("=", 1))
        out[key] = value
    return out


def config_policy(config):
    """The example config is a cluster node that drains on SIGTERM and keeps its secrets in
    files."""
    problems = []
    for flag in ("node-id", "data-dir", "etcd", "tls-cert", "tls-key", "tls-ca",
                 "admin-token-file"):
        if not config.get(flag):
            problems.append(f"the example config sets no {flag}")
    if config.get("drain") != "true":
        problems.append("the example config does not drain on SIGTERM (drain = true)")
    if "admin-token" in config:
        problems.append("the example config holds the admin token itself")
    return problems


# ---- Dockerfile ---------------------------------------------------------------------------

def dockerfile_instructions(text):
    """[(INSTRUCTION, arguments)] with line continuations joined and comments dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        word, _, args = full.partition(" ")
        out.append((word.upper(), args.strip()))
    return out


def dockerfile_policy(text, repo=REPO):
    """Two stages on Debian 12 (a build with scripts/setup.sh, a slim run stage), a non-root
    user, the three ports, COPY sources that exist, an exec-form ENTRYPOINT."""
    problems = []
    stages = []  # [(name, base, [(instr, args)])]
    for instr, args in dockerfile_instructions(text):
        if instr == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            stages.append((m.group(2) if m else None, m.group(1) if m else args, []))
        elif stages:
            stages[-1][2].append((instr, args))
        else:
            problems.append(f"{instr} before the first FROM")
    if len(stages) < 2:
        return problems + [f"{len(stages)} stage(s): expected a build and a run stage"]
    names = [s[0] for s in stages]
    for name, base, body in stages:
        if not base.startswith("debian:12"):
            problems.append(f"stage {name} is FROM {base}, not Debian 12")
    build, run = stages[0], stages[-1]
    if not any(i == "RUN" and "scripts/setup.sh" in a for i, a in build[2]):
        problems.append("the build stage does not run scripts/setup.sh")
    if not run[1].startswith("debian:12-slim"):
        problems.append(f"the run stage is FROM {run[1]}, expected debian:12-slim")
    users = [a for i, a in run[2] if i == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append(f"the run stage's USER is {users[-1] if users else 'root (none set)'}")
    ports = {p.split("/")[0] for i, a in run[2] if i == "EXPOSE" for p in a.split()}
    for port in ("7400", "7500", "7600"):
        if port not in ports:
            problems.append(f"port {port} is not EXPOSEd")
    for name, _, body in stages:
        for instr, args in body:
            if instr not in ("COPY", "ADD"):
                continue
            words = shlex.split(args)
            from_stage = [w.split("=", 1)[1] for w in words if w.startswith("--from=")]
            paths = [w for w in words if not w.startswith("--")]
            if from_stage:
                if from_stage[0] not in names:
                    problems.append(f"COPY --from={from_stage[0]}: no such stage")
                continue
            for src in paths[:-1]:
                if not (repo / src).exists():
                    problems.append(f"COPY {src}: not in the repository")
    entry = [a for i, a in run[2] if i == "ENTRYPOINT"]
    try:
        if not entry or not json.loads(entry[-1])[0].endswith("/orderd"):
            problems.append(f"ENTRYPOINT {entry}: expected [\".../orderd\"]")
    except ValueError:
        problems.append(f"ENTRYPOINT {entry[-1]}: not the exec (JSON) form")
    return problems


def dockerfile_cmd_flags(text):
    for instr, args in reversed(dockerfile_instructions(text)):
        if instr == "CMD":
            return flags_in_args(json.loads(args))
    return []


def dockerfile_packages(text):
    """Packages the run stage installs with apt-get install."""
    run_stage = text.split("\nFROM ")[-1]
    packages = set()
    for instr, args in dockerfile_instructions(run_stage):
        if instr == "RUN" and "apt-get" in args:
            for part in args.split("&&"):
                words = part.split()
                if "install" in words:
                    packages |= {w for w in words[words.index("install") + 1:]
                                 if not w.startswith("-")}
    return packages


def library_packages(binary):
    """The Debian packages of the shared libraries `binary` loads (ldd, then one dpkg -S)."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=30)
    libraries = {}  # path ldd names -> the names dpkg may know it by
    for line in out.stdout.splitlines():
        m = re.search(r"=> (/\S+)", line)
        if not m:
            continue
        path = Path(m.group(1))
        # merged /usr: dpkg knows a file under the name its package shipped it with
        names = {str(path), str(path.resolve())}
        names |= {n.replace("/usr/lib/", "/lib/", 1) for n in list(names)}
        names |= {n.replace("/lib/", "/usr/lib/", 1) for n in list(names)
                  if not n.startswith("/usr/")}
        libraries[str(path)] = names
    everything = sorted(set().union(*libraries.values())) if libraries else []
    owners = {}
    if everything:
        p = subprocess.run(["dpkg", "-S"] + everything, capture_output=True, text=True,
                           timeout=60)  # exits 1 when some name is unknown: expected
        for line in p.stdout.splitlines():
            package, _, path = line.partition(": ")
            owners[path.strip()] = package.split(":")[0].strip()
    packages, problems = set(), []
    for path, names in libraries.items():
        found = [owners[n] for n in names if n in owners]
        if found:
            packages.add(found[0])
        else:
            problems.append(f"{path}: no Debian package owns it")
    return packages, problems


# ---- Kubernetes ---------------------------------------------------------------------------

def yamllint(paths):
    p = subprocess.run(["yamllint", "-f", "parsable", "-d",
                        "{extends: default, rules: {line-length: {max: 120}, "
                        "document-start: disable}}"] + [str(x) for x in paths],
                       capture_output=True, text=True, timeout=60)
    problems = [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]
    if p.returncode != 0 and not problems:
        problems.append(f"yamllint exited {p.returncode}")
    return problems


def _get(doc, path, default=None):
    at = doc
    for part in path.split("."):
        if not isinstance(at, dict) or part not in at:
            return default
        at = at[part]
    return at


def _matches(selector, labels):
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


def _probe_problems(where, container, probe, path):
    p = container.get(probe)
    if not isinstance(p, dict):
        return [f"{where}: no {probe}"]
    problems = []
    get = p.get("httpGet") or {}
    if get.get("path") != path:
        problems.append(f"{where}: {probe} on {get.get('path')}, expected {path}")
    port = get.get("port")
    names = {x.get("name") for x in container.get("ports") or []}
    numbers = {x.get("containerPort") for x in container.get("ports") or []}
    if port not in names and port not in numbers:
        problems.append(f"{where}: {probe} port {port} is not a port of the container")
    return problems


def kubernetes_policy(docs):
    """Structure of the manifests (all files' documents together)."""
    problems = []
    for d in docs:
        for key in ("apiVersion", "kind", "metadata"):
            if key not in d:
                problems.append(f"a document without {key}: {str(d)[:80]}")
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    services = {_get(s, "metadata.name"): s for s in by_kind.get("Service", [])}
    secrets = {_get(s, "metadata.name"): s for s in by_kind.get("Secret", [])}
    sets = {_get(s, "metadata.name"): s for s in by_kind.get("StatefulSet", [])}
    for name in ("orderd", "etcd"):
        if name not in sets:
            problems.append(f"no StatefulSet {name}")
            continue
        sts = sets[name]
        where = f"StatefulSet {name}"
        if _get(sts, "spec.replicas") != 3:
            problems.append(f"{where}: replicas {_get(sts, 'spec.replicas')}, expected 3")
        svc = services.get(_get(sts, "spec.serviceName"))
        if svc is None or _get(svc, "spec.clusterIP") != "None":
            problems.append(f"{where}: serviceName {_get(sts, 'spec.serviceName')} is not a "
                            "headless Service of these files")
        labels = _get(sts, "spec.template.metadata.labels")
        if not _matches(_get(sts, "spec.selector.matchLabels"), labels):
            problems.append(f"{where}: the selector does not match the pod template's labels")
        if svc is not None and not _matches(_get(svc, "spec.selector"), labels):
            problems.append(f"{where}: its Service selects other pods")
        if not any(_matches(_get(p, "spec.selector.matchLabels"), labels)
                   for p in by_kind.get("PodDisruptionBudget", [])):
            problems.append(f"{where}: no PodDisruptionBudget selects its pods")
        pod = _get(sts, "spec.template.spec") or {}
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        claims = {_get(c, "metadata.name") for c in _get(sts, "spec.volumeClaimTemplates", [])}
        if not claims:
            problems.append(f"{where}: no volumeClaimTemplates (data on the pod's own disk)")
        for v in volumes.values():
            secret = _get(v, "secret.secretName")
            if secret is not None and secret not in secrets:
                problems.append(f"{where}: volume {v.get('name')} uses Secret {secret}, "
                                "which these files do not define")
        for c in pod.get("containers") or []:
            cwhere = f"{where} container {c.get('name')}"
            for m in c.get("volumeMounts") or []:
                if m.get("name") not in volumes and m.get("name") not in claims:
                    problems.append(f"{cwhere}: mount {m.get('name')} has no volume")
            for e in c.get("env") or []:
                ref = _get(e, "valueFrom.secretKeyRef")
                if ref is None:
                    continue
                secret = secrets.get(ref.get("name"))
                if secret is None or ref.get("key") not in (secret.get("stringData") or {}):
                    problems.append(f"{cwhere}: env {e.get('name')} wants key {ref.get('key')} "
                                    f"of Secret {ref.get('name')}, which these files lack")
        if name == "orderd":
            containers = pod.get("containers") or []
            if not containers:
                problems.append(f"{where}: no container")
                continue
            c = containers[0]
            problems += _probe_problems(where, c, "livenessProbe", "/livez")
            problems += _probe_problems(where, c, "readinessProbe", "/readyz")
            if "startupProbe" in c:
                problems += _probe_problems(where, c, "startupProbe", "/livez")
            grace = pod.get("terminationGracePeriodSeconds") or 30
            if grace <= STOP_WORST_CASE_S:
                problems.append(f"{where}: terminationGracePeriodSeconds {grace} is shorter than "
                                f"a drained stop ({STOP_WORST_CASE_S} s)")
            args = [str(a) for a in c.get("args") or []]
            if "--drain" not in args:
                problems.append(f"{where}: orderd runs without --drain")
            for flag in ("--tls-cert", "--tls-key", "--tls-ca", "--etcd", "--admin-port"):
                if not any(a.startswith(flag + "=") for a in args):
                    problems.append(f"{where}: orderd runs without {flag}")
            tls_files = [a.split("=", 1)[1] for a in args
                         if a.split("=", 1)[0] in ("--tls-cert", "--tls-key", "--tls-ca")]
            tls_mount = [m.get("mountPath") for m in c.get("volumeMounts") or []
                         if _get(volumes.get(m.get("name"), {}), "secret.secretName")]
            for f in tls_files:
                if not any(f.startswith(str(mp) + "/") for mp in tls_mount):
                    problems.append(f"{where}: {f} is not on a mounted Secret")
            if not _get(c, "securityContext.readOnlyRootFilesystem") or \
                    not _get(pod, "securityContext.runAsNonRoot"):
                problems.append(f"{where}: not read-only and non-root")
    return problems


def orderd_args(docs):
    for d in docs:
        if d.get("kind") == "StatefulSet" and _get(d, "metadata.name") == "orderd":
            return [str(a) for a in _get(d, "spec.template.spec.containers")[0].get("args", [])]
    return []


def load_manifests(paths):
    docs = []
    for p in paths:
        docs += yaml_subset.load_all(Path(p).read_text())
    return docs
