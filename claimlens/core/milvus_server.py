"""Launch a Milvus standalone server from the PyPI package ``milvus`` (2.3.x, "embedded Milvus").

Why not ``milvus.default_server.start()``: that object keeps the server as a child of the Python process
and kills it when the process exits (``__del__``). ``scripts/services`` and the tests need a server that
outlives its launcher, with a pidfile of the real server process. So this module asks the package to write
its config (ports on 127.0.0.1, base dir) and unpack its binaries, then ``exec``s the server binary with the
environment ``MilvusServer.start`` would give it: the pid of this process becomes the server's.

    python -m claimlens.core.milvus_server --base-dir var/services/milvus --port 19530

Everything lives under the base dir: ``configs/milvus.yaml``, ``bin/``, ``data/`` (embedded etcd, rocksmq,
segments, indexes), ``logs/``. The health endpoint is ``http://127.0.0.1:<metrics port>/healthz``; the
metrics port used is written to ``<base dir>/metrics.port``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

TIME_TICK_MS = 20


def prepare(base_dir: Path, port: int, metrics_port: int = 9091) -> tuple[list[str], dict[str, str], int]:
    """Write the config, unpack the binaries; returns (argv, env, metrics port actually free)."""
    import milvus  # the PyPI server package; imported here so the client side never needs it

    server = milvus.MilvusServer(wait_for_started=False)
    server.set_base_dir(str(base_dir))
    server.listen_port = port
    # the package resolves every other port (etcd, coordinators, nodes) to a free one from its defaults
    server.config.resolve()
    _own_etcd_ports(server, base_dir)
    milvus._initialize_data_files(server.config.base_data_dir)
    metrics, sock = server.config.resolve_port(metrics_port)
    sock.close()
    exe = server.get_milvus_executable_path()
    env = os.environ.copy()
    env.update({"DEPLOY_MODE": "STANDALONE", "METRICS_PORT": str(metrics),
                "MILVUS_RUN_DIR": str(Path(server.config.base_data_dir) / "run"),
                "LD_LIBRARY_PATH": ":".join([str(Path(exe).parent), env.get("LD_LIBRARY_PATH", "")])})
    return [exe, "run", "standalone"], env, metrics


def _own_etcd_ports(server, base_dir: Path) -> None:
    """Give the embedded etcd free client and peer ports on 127.0.0.1.

    The package's template sets only the client port; the embedded etcd then also listens on its default
    peer port 2380, so a second server on the machine (another checkout, a test's own server) crashes at
    start ("bind: address already in use"). An etcd config file (``etcd.config.path``) sets both."""
    client = int(server.config.get("etcd_port"))
    peer, sock = server.config.resolve_port(client + 1)
    sock.close()
    etcd_yaml = Path(base_dir) / "configs" / "etcd.yaml"
    etcd_yaml.write_text(
        "name: claimlens-milvus\n"
        f"listen-client-urls: http://127.0.0.1:{client}\n"
        f"advertise-client-urls: http://127.0.0.1:{client}\n"
        f"listen-peer-urls: http://127.0.0.1:{peer}\n"
        f"initial-advertise-peer-urls: http://127.0.0.1:{peer}\n"
        f"initial-cluster: claimlens-milvus=http://127.0.0.1:{peer}\n")
    cfg = Path(base_dir) / "configs" / "milvus.yaml"
    text = cfg.read_text()
    if "\netcd:\n" not in "\n" + text:
        raise RuntimeError(f"{cfg}: no top-level 'etcd:' section to configure")
    text = ("\n" + text).replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_yaml}\n", 1)[1:]
    # A Strong-consistency read waits for the next time tick of the proxy: 200 ms by default, measured as
    # 150-210 ms per search or query here. The claim phase needs Strong reads (codes written by photo tasks
    # in other processes moments before), so tick every 20 ms.
    tick = "  timeTickInterval: 200 #"
    if tick not in text:
        raise RuntimeError(f"{cfg}: proxy.timeTickInterval not found")
    text = text.replace(tick, f"  timeTickInterval: {TIME_TICK_MS} #", 1)
    cfg.write_text(text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-dir", required=True, type=Path)
    ap.add_argument("--port", type=int, default=19530)
    ap.add_argument("--metrics-port", type=int, default=9091)
    args = ap.parse_args(argv)
    base = args.base_dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    cmd, env, metrics = prepare(base, args.port, args.metrics_port)
    (base / "metrics.port").write_text(f"{metrics}\n")
    os.chdir(base)
    sys.stdout.flush()
    os.execve(cmd[0], cmd, env)


if __name__ == "__main__":
    main()
