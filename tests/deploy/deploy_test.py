#!/usr/bin/env python3
"""deploy/ checked as far as this machine allows (docs/OPERATIONS.md, "Packaging"): the systemd
unit with `systemd-analyze verify` and the settings the docs promise, the example config's flags
against `orderd --help`, the Dockerfile's stages, user, ports, copied files and run-time
libraries (against what the built orderd loads), the Kubernetes manifests with yamllint and a
structural check. No container engine, systemd instance or Kubernetes API runs here: nothing
starts the unit, builds the image or applies the manifests. Each check is also run on a
deliberately broken copy and must fail there.

Run: python3 tests/deploy/deploy_test.py --orderd build/nodes/orderd \
       --orderctl build/client/orderctl
"""

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "system"))

import deploy_checks as dc  # noqa: E402
import harness as h  # noqa: E402
import yaml_subset  # noqa: E402
from harness import check, eq, log  # noqa: E402

UNIT = dc.DEPLOY / "systemd" / "orderd.service"
CONFIG = dc.DEPLOY / "systemd" / "orderd.conf"
DOCKERFILE = dc.DEPLOY / "docker" / "Dockerfile"
MANIFESTS = sorted((dc.DEPLOY / "kubernetes").glob("*.yaml"))

_FLAGS = []


def known_flags():
    if _FLAGS:
        return _FLAGS[0]
    flags = dc.orderd_flags(h.ARGS.orderd)
    check("node-id" in flags and "drain" in flags,
          f"could not read the flags from orderd --help: {sorted(flags)}")
    _FLAGS.append(flags)
    return flags


def broken(text, old, new):
    """`text` with `old` replaced: a deliberately broken copy (old must be there)."""
    check(old in text, f"the broken copy needs '{old}' in the original")
    return text.replace(old, new, 1)


def test_systemd_unit_verifies():
    with tempfile.TemporaryDirectory() as d:
        copy = Path(d) / "orderd.service"
        copy.write_text(UNIT.read_text())
        eq(dc.systemd_verify(copy, h.ARGS.orderd), [], "systemd-analyze verify")


def test_systemd_verify_catches_a_broken_unit():
    original = UNIT.read_text()
    # (what, the broken copy, a word the complaint must name)
    cases = [
        ("a misspelled key", broken(original, "\nNoNewPrivileges=", "\nNoNewPrivilege="),
         "NoNewPrivilege"),
        ("a bad value", broken(original, "\nRestart=on-failure", "\nRestart=on-failur"),
         "on-failur"),
        ("an unknown section", broken(original, "\n[Install]", "\n[Instal]"), "Instal"),
    ]
    with tempfile.TemporaryDirectory() as d:
        for what, text, word in cases:
            copy = Path(d) / "orderd.service"
            copy.write_text(text)
            problems = [p for p in dc.systemd_verify(copy, h.ARGS.orderd) if word in p]
            check(problems, f"systemd-analyze verify did not name {word} in {what}")
            log(f"{what}: {problems[0]}")
        # a binary that does not exist (verify checks ExecStart's path)
        copy = Path(d) / "orderd.service"
        copy.write_text(original)
        check(dc.systemd_verify(copy, Path(d) / "no-such-orderd"),
              "systemd-analyze verify accepted a missing ExecStart binary")


def test_systemd_unit_settings():
    original = UNIT.read_text()
    eq(dc.unit_policy(original), [], "the unit's settings")
    for old, new in (("TimeoutStopSec=60", "TimeoutStopSec=30"), ("User=ordermesh", "User=root"),
                     ("ProtectSystem=strict", "ProtectSystem=full"),
                     ("LimitNOFILE=65536", "LimitNOFILE=1024")):
        # at the start of a line: the comments mention some of these settings too
        check(dc.unit_policy(broken(original, "\n" + old, "\n" + new)),
              f"the settings check accepted {new}")


def test_example_config():
    config = dc.parse_config(CONFIG.read_text())
    eq(dc.config_policy(config), [], "the example config")
    eq(dc.unknown_flags(config, known_flags()), [], "flags orderd does not take")
    check(dc.unknown_flags(dict(config, **{"drian": "true"}), known_flags()),
          "a misspelled flag passed")
    check(dc.config_policy(dc.parse_config(broken(CONFIG.read_text(), "drain = true",
                                                  "drain = false"))),
          "a config without drain passed")
    env_file = (dc.DEPLOY / "systemd" / "orderd.env").read_text()
    for line in env_file.splitlines():
        check(not line.strip() or line.lstrip().startswith("#") or "TOKEN" not in line,
              f"the env file sets a token: {line}")


def test_dockerfile():
    text = DOCKERFILE.read_text()
    eq(dc.dockerfile_policy(text), [], "the Dockerfile")
    eq(dc.unknown_flags(dc.dockerfile_cmd_flags(text), known_flags()), [],
       "CMD flags orderd does not take")
    # Every library the built orderd and orderctl load comes with the run stage's packages.
    installed = dc.dockerfile_packages(text)
    for binary in (h.ARGS.orderd, h.ARGS.orderctl):
        needed, problems = dc.library_packages(binary)
        eq(problems, [], f"libraries of {binary}")
        check(needed, f"ldd found no library of {binary}")
        eq(sorted(needed - installed - dc.BASE_PACKAGES), [],
           f"packages {Path(binary).name} needs that the run stage does not install")
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split()
    for entry in ("build", "var", "**/*.key"):
        check(entry in ignore, f"the build context does not leave out {entry}")
    for old, new in (("COPY . /src", "COPY no-such-dir /src"),
                     ("USER ordermesh:ordermesh", "USER root"),
                     ("EXPOSE 7400 7500 7600", "EXPOSE 7400"),
                     ("FROM debian:12-slim AS run", "FROM ubuntu:24.04 AS run"),
                     ("scripts/setup.sh --no-build", "make")):
        check(dc.dockerfile_policy(broken(text, old, new)), f"the check accepted '{new}'")
    without_lib = broken(text, "libsodium23 ", "")
    check("libsodium23" not in dc.dockerfile_packages(without_lib), "libsodium23 still listed")


def test_kubernetes_manifests():
    names = [p.name for p in MANIFESTS]
    eq(names, ["etcd.yaml", "orderd.yaml", "secret.example.yaml"], "manifests")
    eq(dc.yamllint(MANIFESTS), [], "yamllint")
    docs = dc.load_manifests(MANIFESTS)
    eq(sorted(d["kind"] for d in docs),
       ["PodDisruptionBudget", "PodDisruptionBudget", "Secret", "Secret", "Service", "Service",
        "Service", "StatefulSet", "StatefulSet"], "kinds")
    eq(dc.kubernetes_policy(docs), [], "the manifests' structure")
    eq(dc.unknown_flags(dc.flags_in_args(dc.orderd_args(docs)), known_flags()),
       [], "orderd args orderd does not take")


BUDGET_SELECTOR = "maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: "


def test_kubernetes_checks_catch_broken_manifests():
    orderd = (dc.DEPLOY / "kubernetes" / "orderd.yaml").read_text()
    others = [p for p in MANIFESTS if p.name != "orderd.yaml"]
    cases = [("path: /readyz", "path: /healthz"), ("port: admin\n", "port: adm\n"),
             ("key: admin-token", "key: admin_token"), ("secretName: ordermesh-tls",
                                                         "secretName: ordermesh-certs"),
             ("terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 30"),
             ("            - --drain\n", ""), ("replicas: 3", "replicas: 2"),
             (BUDGET_SELECTOR + "orderd", BUDGET_SELECTOR + "etcd")]
    with tempfile.TemporaryDirectory() as d:
        for old, new in cases:
            copy = Path(d) / "orderd.yaml"
            copy.write_text(broken(orderd, old, new))
            problems = dc.kubernetes_policy(dc.load_manifests(others + [copy]))
            check(problems, f"the structure check accepted {new.strip()!r}")
            log(f"{new.strip()!r}: {problems[0]}")
        copy = Path(d) / "orderd.yaml"
        copy.write_text(broken(orderd, "  replicas: 3", "  replicas: 3\n   minReadySeconds: 1"))
        check(dc.yamllint([copy]), "yamllint accepted a wrong indentation")


def test_yaml_subset_reader():
    eq(yaml_subset.load_all("a: 1\nb:\n  - x\n  - k: v\n    j: 'w'\nc: [\"p\", q]\n---\nd: 0440\n"),
       [{"a": 1, "b": ["x", {"k": "v", "j": "w"}], "c": ["p", "q"]}, {"d": 0o440}], "parsed")
    eq(yaml_subset.load_all("a:\n- 1\n- 2\nb: true # note\n"), [{"a": [1, 2], "b": True}],
       "a sequence at its key's indent")
    for bad in ("a: |\n  text\n", "a: &x 1\n", "a: 1\na: 2\n", "a:\n\tb: 1\n", "a: {b: 1}\n",
                "a: 1\n  b: 2\n"):
        try:
            yaml_subset.load_all(bad)
        except yaml_subset.YamlSubsetError as e:
            log(f"{bad!r}: {e}")
            continue
        raise AssertionError(f"the reader accepted {bad!r}")


if __name__ == "__main__":
    os.chdir(h.REPO)
    h.main([test_systemd_unit_verifies, test_systemd_verify_catches_a_broken_unit,
            test_systemd_unit_settings, test_example_config, test_dockerfile,
            test_kubernetes_manifests, test_kubernetes_checks_catch_broken_manifests,
            test_yaml_subset_reader], __doc__)
