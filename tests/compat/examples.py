#!/usr/bin/env python3
"""Reads examples/Dockerfile and examples/k8s-pod.yaml for the container test (test_compat.sh).

  examples.py dockerfile DOCKERFILE
      prints bash assignments: FROM, COPY_SRC=(...), COPY_DST=(...), ENV_KV=(...), CMD=(...).
      Only FROM, COPY (src dst), ENV (k=v ...), CMD (JSON form) and comments are understood;
      anything else is an error, so the test never silently does less than the Dockerfile says.
  examples.py k8s DOCKERFILE YAML POLICY
      checks that the Kubernetes snippet does what the Dockerfile does: the ConfigMap's policy has the
      same rules as POLICY, the app container has the same LD_PRELOAD/TLSSHIM_POLICY and command, and
      the files the Dockerfile copies appear at the same paths through the volumes. Prints "ok" or
      one line per difference (exit 1).
"""
import json
import shlex
import sys


def parse_dockerfile(path):
    lines, cur = [], ""
    for raw in open(path):
        s = raw.rstrip("\n")
        if not cur and (not s.strip() or s.lstrip().startswith("#")):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        lines.append(cur + s)
        cur = ""
    d = {"from": None, "copy": [], "env": [], "cmd": None}
    for ln in lines:
        instr, _, rest = ln.strip().partition(" ")
        instr = instr.upper()
        rest = rest.strip()
        if instr == "FROM":
            d["from"] = rest
        elif instr == "COPY":
            a = shlex.split(rest)
            if len(a) != 2 or a[0].startswith("--"):
                raise SystemExit("COPY with other than SRC DST: " + ln)
            d["copy"].append((a[0], a[1]))
        elif instr == "ENV":
            for kv in shlex.split(rest):
                if "=" not in kv:
                    raise SystemExit("ENV without '=': " + ln)
                d["env"].append(kv)
        elif instr == "CMD":
            d["cmd"] = json.loads(rest)
        else:
            raise SystemExit("instruction the container test does not carry out: " + ln)
    if not d["cmd"]:
        raise SystemExit("no CMD")
    return d


def rules(text):
    return [ln.split("#", 1)[0].split() for ln in text.splitlines() if ln.split("#", 1)[0].strip()]


def check_k8s(dockerfile, yml, policy):
    import yaml

    d = parse_dockerfile(dockerfile)
    docs = [x for x in yaml.safe_load_all(open(yml)) if x]
    errs = []
    cms = {x["metadata"]["name"]: x for x in docs if x.get("kind") == "ConfigMap"}
    pods = [x for x in docs if x.get("kind") == "Pod"]
    if len(pods) != 1:
        return ["want exactly one Pod, found %d" % len(pods)]
    spec = pods[0]["spec"]
    app = spec["containers"][0]
    env = {e["name"]: e.get("value") for e in app.get("env", [])}
    for kv in d["env"]:
        k, v = kv.split("=", 1)
        if env.get(k) != v:
            errs.append("env %s: Dockerfile says %r, the pod says %r" % (k, v, env.get(k)))
    extra = set(env) - {kv.split("=", 1)[0] for kv in d["env"]}
    if extra:
        errs.append("the pod sets more variables than the Dockerfile: %s" % sorted(extra))
    cmd = app.get("command", []) + app.get("args", [])
    if cmd != d["cmd"]:
        errs.append("command differs: Dockerfile %r, pod %r" % (d["cmd"], cmd))
    # Which file lands where: mount path + item path, per volume.
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    provided = {}
    for m in app.get("volumeMounts", []):
        v = vols.get(m["name"], {})
        base = m["mountPath"].rstrip("/")
        if "emptyDir" in v:
            for ic in spec.get("initContainers", []):
                for im in ic.get("volumeMounts", []):
                    if im["name"] == m["name"]:
                        c = ic.get("command", [])
                        if c and c[0] == "cp" and c[-1].startswith(im["mountPath"]):
                            name = c[-1][len(im["mountPath"]):].lstrip("/")
                            provided[base + "/" + name] = ("init", c[1])
        for src in v.get("projected", {}).get("sources", []) + ([{"configMap": v["configMap"]}] if "configMap" in v else []):
            cm = src.get("configMap")
            if not cm:
                continue
            for it in cm.get("items", []):
                provided[base + "/" + it["path"]] = ("configmap", cm["name"], it["key"])
    for src, dst in d["copy"]:
        if dst not in provided:
            errs.append("the Dockerfile copies %s to %s; nothing in the pod provides that path" % (src, dst))
            continue
        p = provided[dst]
        if src.endswith("examples/policy") or dst.endswith("/policy"):
            if p[0] != "configmap" or p[1] not in cms:
                errs.append("%s should come from a ConfigMap in the file, comes from %r" % (dst, p))
            elif rules(cms[p[1]]["data"][p[2]]) != rules(open(policy).read()):
                errs.append("ConfigMap %s/%s has other rules than %s" % (p[1], p[2], policy))
        if p[0] == "init" and p[1] != dst:
            errs.append("the init container copies %s, the Dockerfile puts the file at %s" % (p[1], dst))
    return errs


def main():
    if sys.argv[1] == "dockerfile":
        d = parse_dockerfile(sys.argv[2])
        q = shlex.quote
        print("FROM=%s" % q(d["from"] or ""))
        print("COPY_SRC=(%s)" % " ".join(q(s) for s, _ in d["copy"]))
        print("COPY_DST=(%s)" % " ".join(q(t) for _, t in d["copy"]))
        print("ENV_KV=(%s)" % " ".join(q(kv) for kv in d["env"]))
        print("CMD=(%s)" % " ".join(q(c) for c in d["cmd"]))
    elif sys.argv[1] == "k8s":
        errs = check_k8s(*sys.argv[2:5])
        print("\n".join(errs) if errs else "ok")
        sys.exit(1 if errs else 0)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
